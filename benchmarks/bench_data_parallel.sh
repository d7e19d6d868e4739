#!/bin/sh
# Seconds per mnist_fc epoch, BP and DTP (parallel): 1 process with 2 threads against 2 processes
# with 1 thread each (torchrun, gloo), one layout at a time on an otherwise idle machine; the
# all-reduce timings come from the 2-process runs. Outputs: results/speed/data_parallel/*.json.
set -eu
cd "$(dirname "$0")"
for rule in bp dtp; do
  python bench_data_parallel.py --rule $rule --threads 2 --out speed/data_parallel/${rule}_1proc_2threads
  OMP_NUM_THREADS=1 python -m torch.distributed.run --standalone --nproc_per_node=2 bench_data_parallel.py \
    --rule $rule --threads 1 --out speed/data_parallel/${rule}_2proc_1thread
done
