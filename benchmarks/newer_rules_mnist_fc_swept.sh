#!/bin/sh
# The newer rules on mnist_fc, 100 epochs, seeds 0-2, with the best trial of each rule's 20-epoch search
# (results/newer_rules/sweeps/<rule>/sweep_mnist_fc_20ep/sweep.md) and every other setting as in
# newer_rules_mnist_fc.sh (full training set, no held-out split). Two lanes, one thread per run.
# Outputs: results/newer_rules/mnist_fc_100ep_swept/. Resumable: finished runs are skipped. Run from the repository root.
set -eu
OUT=results/newer_rules/mnist_fc_100ep_swept
mkdir -p $OUT
run() {  # run SEED NAME RULE [tokens]
  seed=$1; name=$2; shift 2
  if ls $OUT/*-s$seed-$name/summary.json >/dev/null 2>&1 && grep -q '"status": "completed"' $OUT/*-s$seed-$name/summary.json; then
    return
  fi
  bioscale train "$@" data=mnist data.root=../shared/data model=mnist_fc trainer.epochs=100 seed=$seed \
    trainer.checkpoint=false trainer.threads=1 trainer.progress=false observers.console.enabled=false \
    observers.tensorboard.enabled=false output_dir=$OUT name=$name > $OUT/$name-s$seed.log 2>&1
}
ldrl() {
  run $1 ldrl rule=ldrl rules.ldrl.optimizer.lr=0.0002413543361097302 rules.ldrl.optimizer.beta2=0.99 \
    rules.ldrl.optimizer.eps=0.0001 rules.ldrl.inverse_optimizer.lr=0.0001329614690412514 \
    rules.ldrl.inverse_optimizer.beta2=0.99 rules.ldrl.inverse_optimizer.eps=1e-06 \
    rules.ldrl.sigma=0.1352366739535558 rules.ldrl.beta=0.1048900142085984
}
kp() {
  run $1 kp rule=kp rules.kp.optimizer.lr=0.00026756035006831046 rules.kp.optimizer.beta2=0.999 rules.kp.optimizer.eps=1e-08
}
usf() {
  run $1 signsym_usf rule=signsym rules.signsym.optimizer.lr=0.0002974753632136435 rules.signsym.optimizer.beta2=0.99 \
    rules.signsym.optimizer.eps=0.0001
}
ddtp() {
  run $1 ddtp rule=ddtp rules.ddtp.optimizer.lr=0.00012188713823489388 rules.ddtp.optimizer.beta2=0.99 \
    rules.ddtp.optimizer.eps=1e-06 rules.ddtp.inverse_optimizer.lr=0.00010636565873435121 \
    rules.ddtp.inverse_optimizer.beta2=0.999 rules.ddtp.inverse_optimizer.eps=0.0001 \
    rules.ddtp.sigma=0.1899044331803904 rules.ddtp.beta=0.048332392876247986
}
wm() {
  run $1 wm rule=wm rules.wm.optimizer.lr=0.00018493854405484333 rules.wm.optimizer.beta2=0.999 rules.wm.optimizer.eps=1e-08
}
lane_a() { ldrl 0; kp 0; ldrl 1; ldrl 2; }
lane_b() { usf 0; ddtp 0; wm 0; for s in 1 2; do usf $s; kp $s; ddtp $s; wm $s; done; }
lane_a & lane_b & wait
