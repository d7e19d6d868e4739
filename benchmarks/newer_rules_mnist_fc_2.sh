#!/bin/sh
# DDTP and one mixed net (FA in the three lower hidden layers, DTP parallel above) on mnist_fc, 100 epochs,
# seed 0, forward Adam lr 3e-4, one thread each, one after the other. Outputs: results/newer_rules/mnist_fc_100ep/.
set -eu
OUT=results/newer_rules/mnist_fc_100ep
mkdir -p $OUT
run() {  # run NAME [tokens]
  name=$1; shift
  bioscale train "$@" data=mnist data.root=../shared/data model=mnist_fc trainer.epochs=100 seed=0 \
    trainer.checkpoint=false trainer.threads=1 trainer.progress=false observers.console.enabled=false \
    observers.tensorboard.enabled=false output_dir=$OUT name=$name > $OUT/$name.log 2>&1
}
run mix-fa3-dtp3 rule=mix "rules.mix.layers=[fa,fa,fa,dtp,dtp,dtp]" rules.dtp.schedule=parallel rules.mix.optimizer.lr=3e-4
run ddtp rule=ddtp rules.ddtp.optimizer.lr=3e-4
