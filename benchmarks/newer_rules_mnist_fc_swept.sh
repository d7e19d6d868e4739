#!/bin/sh
# The newer rules on mnist_fc, 100 epochs, seed 0, with the best trial of each rule's 20-epoch search
# (results/newer_rules/sweeps/<rule>/sweep_mnist_fc_20ep/sweep.md) and every other setting as in
# newer_rules_mnist_fc.sh (full training set, no held-out split). Two lanes, one thread per run.
# Outputs: results/newer_rules/mnist_fc_100ep_swept/. Resumable: finished runs are skipped. Run from the repository root.
set -eu
OUT=results/newer_rules/mnist_fc_100ep_swept
mkdir -p $OUT
run() {  # run NAME RULE [tokens]
  name=$1; shift
  if ls $OUT/*-$name/summary.json >/dev/null 2>&1 && grep -q '"status": "completed"' $OUT/*-$name/summary.json; then return; fi
  bioscale train "$@" data=mnist data.root=../shared/data model=mnist_fc trainer.epochs=100 seed=0 \
    trainer.checkpoint=false trainer.threads=1 trainer.progress=false observers.console.enabled=false \
    observers.tensorboard.enabled=false output_dir=$OUT name=$name > $OUT/$name.log 2>&1
}
lane_a() {
  run ldrl rule=ldrl rules.ldrl.optimizer.lr=0.0002413543361097302 rules.ldrl.optimizer.beta2=0.99 \
    rules.ldrl.optimizer.eps=0.0001 rules.ldrl.inverse_optimizer.lr=0.0001329614690412514 \
    rules.ldrl.inverse_optimizer.beta2=0.99 rules.ldrl.inverse_optimizer.eps=1e-06 \
    rules.ldrl.sigma=0.1352366739535558 rules.ldrl.beta=0.1048900142085984
  run kp rule=kp rules.kp.optimizer.lr=0.00026756035006831046 rules.kp.optimizer.beta2=0.999 rules.kp.optimizer.eps=1e-08
}
lane_b() {
  run signsym-usf rule=signsym rules.signsym.optimizer.lr=0.0002974753632136435 rules.signsym.optimizer.beta2=0.99 \
    rules.signsym.optimizer.eps=0.0001
  run ddtp rule=ddtp rules.ddtp.optimizer.lr=0.00012188713823489388 rules.ddtp.optimizer.beta2=0.99 \
    rules.ddtp.optimizer.eps=1e-06 rules.ddtp.inverse_optimizer.lr=0.00010636565873435121 \
    rules.ddtp.inverse_optimizer.beta2=0.999 rules.ddtp.inverse_optimizer.eps=0.0001 \
    rules.ddtp.sigma=0.1899044331803904 rules.ddtp.beta=0.048332392876247986
  run wm rule=wm rules.wm.optimizer.lr=0.00018493854405484333 rules.wm.optimizer.beta2=0.999 rules.wm.optimizer.eps=1e-08
}
lane_a & lane_b & wait
