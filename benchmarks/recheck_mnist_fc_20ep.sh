#!/bin/sh
# Table 1(a) rows already under their targets in the 20-epoch proxy searches (SDTP and
# AO-SDTP parallel, DFA), rerun with the plain commands on the current code: every setting
# comes from the rules' recipes, 20 epochs, batch 128, seed 0. Run from benchmarks/.
set -eu
BASE="data=mnist data.root=../shared/data model=mnist_fc trainer.epochs=20 trainer.batch_size=128 seed=0"
python sweep.py table1a_mnist_fc/final_mnist_fc_20ep --base "$BASE" --jobs 2 \
  --trial "rule=sdtp rules.sdtp.schedule=parallel" --trial "rule=aosdtp rules.aosdtp.schedule=parallel" --trial "rule=dfa"
