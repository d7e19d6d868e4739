#!/bin/sh
# Issue 4 runs on this machine (2 CPU cores, no GPU): every rule on the paper's LC nets and
# on CIFAR-10, two single-threaded runs at a time, each with the exact `bioscale train`
# command recorded in results/<sweep>/sweep.md. Budgets (what this machine allows):
#   mnist_lc: BP and FA 50 epochs, DTP alternating 30 epochs;
#   cifar_fc: BP 40 epochs, every other rule 20 epochs;
#   cifar_lc and cifar_conv: 2 epochs per rule.
# Hyperparameters are the mnist_fc recipes carried over (no search on these nets).
# Run from benchmarks/.
set -eu
MNIST="data=mnist data.root=../shared/data trainer.batch_size=128 seed=0"
CIFAR="data=cifar10 data.root=../shared/data data.augment=true trainer.batch_size=128 seed=0"
python sweep.py mnist_lc --base "$MNIST model=mnist_lc" --jobs 2 \
  --trial "rule=bp trainer.epochs=50" --trial "rule=fa trainer.epochs=50" \
  --trial "rule=dtp rules.dtp.schedule=alternating trainer.epochs=30"
python sweep.py cifar_fc --base "$CIFAR model=cifar_fc" --jobs 2 \
  --trial "rule=bp trainer.epochs=40" --trial "rule=fa trainer.epochs=20" --trial "rule=dfa trainer.epochs=20" \
  --trial "rule=dtp rules.dtp.schedule=parallel trainer.epochs=20" --trial "rule=dtp rules.dtp.schedule=alternating trainer.epochs=20" \
  --trial "rule=sdtp rules.sdtp.schedule=parallel trainer.epochs=20" --trial "rule=sdtp rules.sdtp.schedule=alternating trainer.epochs=20" \
  --trial "rule=aosdtp rules.aosdtp.schedule=parallel trainer.epochs=20" --trial "rule=aosdtp rules.aosdtp.schedule=alternating trainer.epochs=20"
python sweep.py cifar_lc --base "$CIFAR trainer.epochs=2" --jobs 2 \
  --trial "rule=bp model=cifar_lc" --trial "rule=bp model=cifar_conv" --trial "rule=fa model=cifar_lc" --trial "rule=dfa model=cifar_lc" \
  --trial "rule=dtp rules.dtp.schedule=parallel model=cifar_lc" --trial "rule=dtp rules.dtp.schedule=alternating model=cifar_lc" \
  --trial "rule=sdtp rules.sdtp.schedule=parallel model=cifar_lc" --trial "rule=sdtp rules.sdtp.schedule=alternating model=cifar_lc" \
  --trial "rule=aosdtp rules.aosdtp.schedule=parallel model=cifar_lc" --trial "rule=aosdtp rules.aosdtp.schedule=alternating model=cifar_lc"
