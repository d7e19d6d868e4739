#!/bin/sh
# Table 1(b)'s FC rows (cifar_fc, flips and crops) with each rule's recipe at a 30-epoch budget,
# one cell after another on this machine's two threads. Resumable over sittings: finished cells
# are cached in results/table1b_cifar_fc/reproduce/table1b/cells.json and skipped, an unfinished
# one resumes from its checkpoint. Run from the repository root; stop with SIGTERM.
set -eu
exec bioscale reproduce table1b nets=[fc] data.root=../shared/data data.augment=true trainer.epochs=30 \
  trainer.progress=false observers.tensorboard.enabled=false output_dir=results/table1b_cifar_fc
