#!/bin/sh
# The newer rules on cifar_fc at the CIFAR table's budget: 30 epochs, random crops and flips, seed 0, forward Adam
# lr 3e-4 (BP's recipe lr; no sweep), one run at a time on two threads. Resumable: a finished run is skipped, an
# unfinished one is started again. Outputs: results/newer_rules/cifar_fc_30ep/. Run from the repository root.
set -eu
OUT=results/newer_rules/cifar_fc_30ep
mkdir -p $OUT
run() {  # run NAME RULE [tokens]
  name=$1; shift
  if grep -qs '"status": "completed"' $OUT/*-$name/summary.json; then return; fi
  rm -rf $OUT/*-$name
  bioscale train "$@" data=cifar10 data.root=../shared/data data.augment=true model=cifar_fc trainer.epochs=30 seed=0 \
    trainer.checkpoint=false trainer.threads=2 trainer.progress=false observers.console.enabled=false \
    observers.tensorboard.enabled=false output_dir=$OUT name=$name > $OUT/$name.log 2>&1
}
run wm rule=wm rules.wm.optimizer.lr=3e-4
run signsym_usf rule=signsym rules.signsym.optimizer.lr=3e-4
run kp rule=kp rules.kp.optimizer.lr=3e-4
run signsym_frsf rule=signsym rules.signsym.variant=frsf rules.signsym.optimizer.lr=3e-4
run signsym_brsf rule=signsym rules.signsym.variant=brsf rules.signsym.optimizer.lr=3e-4
run ddtp rule=ddtp rules.ddtp.optimizer.lr=3e-4
run ldrl rule=ldrl rules.ldrl.optimizer.lr=3e-4
