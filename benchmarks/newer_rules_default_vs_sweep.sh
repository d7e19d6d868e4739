#!/bin/sh
# Each newer rule's default (forward Adam lr 3e-4, as in newer_rules_mnist_fc.sh) at its sweep's budget (20 epochs,
# 6,000 held-out training examples as the validation split, one thread), two runs at a time, so that the sweep's
# best can be compared with the default it would replace. Skips a rule whose run has finished.
# Outputs: results/newer_rules/sweeps/<rule>/default_vs_sweep/. Run from the repository root.
set -eu
run() {  # run FOLDER RULE [extra tokens]
  folder=results/newer_rules/sweeps/$1/default_vs_sweep; shift
  if ls $folder/*/summary.json >/dev/null 2>&1 && grep -q '"status": "completed"' $folder/*/summary.json; then
    echo "done: $folder"; return
  fi
  bioscale train "$@" data=mnist data.root=../shared/data model=mnist_fc trainer.epochs=20 \
    trainer.checkpoint=false observers.console.enabled=false observers.tensorboard.enabled=false \
    trainer.threads=1 trainer.progress=false data.validation=6000 output_dir=$folder name=default
}
run ldrl rule=ldrl rules.ldrl.optimizer.lr=3e-4 & run wm rule=wm rules.wm.optimizer.lr=3e-4 & wait
run signsym_usf rule=signsym rules.signsym.optimizer.lr=3e-4 & run kp rule=kp rules.kp.optimizer.lr=3e-4 & wait
run ddtp rule=ddtp rules.ddtp.optimizer.lr=3e-4
