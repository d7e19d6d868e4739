#!/bin/sh
# Sweep throughput on this machine: the same 4 trials (BP, mnist_fc, a one-point space, 10
# epochs each) with 1 worker and with 2; wall time of each whole `bioscale sweep`.
#   sh benchmarks/bench_sweep_throughput.sh [OUT_DIR]   (run from the repository root)
set -eu
OUT=${1:-/tmp/bioscale-sweep-throughput}
mkdir -p "$OUT"
for w in 1 2; do
  rm -rf "$OUT/w$w"
  start=$(date +%s.%N)
  bioscale sweep rule=bp data=mnist data.root=../shared/data model=mnist_fc trainer.epochs=10 sweep.trials=4 \
    sweep.workers=$w sweep.dir="$OUT/w$w" sweep.space.rules.bp.optimizer.lr=choice:3e-4 \
    sweep.space.rules.bp.optimizer.beta2=choice:0.999 sweep.space.rules.bp.optimizer.eps=choice:1e-8 \
    observers.console.enabled=false observers.tensorboard.enabled=false > "$OUT/log_w$w" 2>&1
  end=$(date +%s.%N)
  echo "workers=$w wall_seconds=$(echo "$end - $start" | bc) trials_per_hour=$(echo "4 * 3600 / ($end - $start)" | bc)"
done
