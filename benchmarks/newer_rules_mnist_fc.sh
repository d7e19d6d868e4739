#!/bin/sh
# The newer rules on mnist_fc, 100 epochs, seed 0, Adam lr 3e-4 (BP's and FA's recipe lr; no sweep yet),
# two runs at a time on one thread each. Outputs: results/newer_rules/mnist_fc_100ep/. Run from the repository root.
set -eu
OUT=results/newer_rules/mnist_fc_100ep
mkdir -p $OUT
run() {  # run NAME RULE [tokens]
  name=$1; shift
  if ls $OUT/*-$name/summary.json >/dev/null 2>&1 && grep -q '"status": "completed"' $OUT/*-$name/summary.json; then return; fi
  bioscale train "$@" data=mnist data.root=../shared/data model=mnist_fc trainer.epochs=100 seed=0 \
    trainer.checkpoint=false trainer.threads=1 trainer.progress=false observers.console.enabled=false \
    observers.tensorboard.enabled=false output_dir=$OUT name=$name > $OUT/$name.log 2>&1
}
run signsym-usf rule=signsym rules.signsym.optimizer.lr=3e-4 & run kp rule=kp rules.kp.optimizer.lr=3e-4 & wait
run wm rule=wm rules.wm.optimizer.lr=3e-4 & run signsym-frsf rule=signsym rules.signsym.variant=frsf rules.signsym.optimizer.lr=3e-4 & wait
run signsym-brsf rule=signsym rules.signsym.variant=brsf rules.signsym.optimizer.lr=3e-4
