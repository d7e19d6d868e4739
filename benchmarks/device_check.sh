#!/bin/sh
# Every GPU check of issues 25 and 33 in one prepared run of at most about 8 minutes on a lent GPU
# (the step limits below add up to 450 s, plus the install):
#   1. the CUDA tests (pytest -m cuda: every rule on fc / lc / conv, no host sync, memory, bf16, compile, decoding)
#   2. data parallelism on the one GPU: every rule in 2 torchrun ranks (trainer.backend=gloo: NCCL refuses two
#      ranks on one GPU) against 1 process, 1 epoch of the kit's digits setup, weights and test error compared
#   3. torch.compile (inductor) of cifar_lc for BP, FA, DTP: compile time, graph breaks and recompiles
#      (TORCH_LOGS=graph_breaks,recompiles into the log, dynamo's counters into the record), speed against eager
#   4. steps/s, peak memory and counted TFLOP/s (roofline fractions) of every rule on synthetic cifar_lc
#      (batch 128) and imagenet_lc (batch 128) batches, fp32 and bf16
#   5. images/s of the ImageNet folder pipeline, workers against decode=device, on generated JPEGs
#   6. a short cifar_lc BP / FA / DTP run (the epochs that fit in 15 s each) on the CIFAR-10 subset
# Prepare here first: sh benchmarks/device_prepare.sh; then with the device tool:
#   run(command="sh benchmarks/device_check.sh", carry=[".whl", ".devdata"], timeout_s=570)
# Everything lands in results/speed/gpu/ and, on the device machine, in $OUT/gpu.tar.gz (unpack it here).
# DRY=1 runs the same flow in seconds on the CPU (tiny settings) to check the script itself.
set -u
export PYTHONUNBUFFERED=1
R=speed/gpu; [ "${DRY:-0}" = 1 ] && R=scratch_gpu_dry  # a dry run's output is ignored by git
G=results/$R
mkdir -p $G
LOG=$G/device_check.log
: > $LOG
say() { echo "== $(date -u +%H:%M:%S) $*" | tee -a $LOG; }
step() {  # step SECONDS command...: run with a time limit, log it, never stop the script
  limit=$1; shift
  say "$* (limit ${limit}s)"
  # SIGINT: pytest still writes its report, bioscale its summary; benchmarks record after every row
  timeout -s INT -k 10 $limit "$@" >> $LOG 2>&1; echo "   exit $?" | tee -a $LOG
}
fail() { say "$*"; [ -n "${OUT:-}" ] && cp $LOG $OUT/; exit 1; }
PY=python3
if [ -d .whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl >> $LOG 2>&1
  export PYTHONPATH=/tmp/site
fi
if [ "${DRY:-0}" = 1 ]; then
  T=1; NETS_B="cifar_lc:16"; IMG_B="imagenet32_lc:8"; JPEGS=120; PB=16; PBATCH=2; EPOCH_S=40; STEPS="--steps 1 --warmup 1"
  DATA_ROOT=../shared/data; IMAGE=32; PREC="fp32"; EXTRA="data.limit_train=500 trainer.threads=2"
  DP_TOKENS=""; DP_RULES="--rules bp dtp"; COMPILE="--cases mnist_fc:bp --rounds 1 --steps 1 --close-steps 1"
else
  T=0; NETS_B="cifar_lc:128"; IMG_B="imagenet_lc:128"; JPEGS=1500; PB=256; PBATCH=5; EPOCH_S=15; STEPS="--steps 10 --warmup 3"
  DATA_ROOT=.devdata; IMAGE=224; PREC="fp32 bf16"; EXTRA=""
  DP_TOKENS="--tokens trainer.device=cuda trainer.backend=gloo"; DP_RULES=""
  COMPILE="--cases cifar_lc:bp,cifar_lc:fa,cifar_lc:dtp --rounds 5 --steps 10"
  say "install"
  $PY -m pip install -q --no-index --no-deps --no-build-isolation -e . $(for p in plugins/*/; do [ "$p" = plugins/tensorboard/ ] || printf -- '-e %s ' "$p"; done) \
    >> $LOG 2>&1 || fail "install failed (see $LOG)"
  nvidia-smi > $G/nvidia-smi.txt 2>&1
fi
$PY -c "import torch, bioscale; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" > $G/environment.txt 2>&1
cat $G/environment.txt | tee -a $LOG
$PY -c "import bioscale, omegaconf, bioscale_mix" 2>> $LOG || fail "bioscale does not import (see $LOG)"

[ $T = 0 ] && step 140 $PY -m pytest -q -m cuda tests/test_cuda.py -p no:cacheprovider --junitxml=$G/cuda_tests.xml

step 60 $PY benchmarks/device_data_parallel.py $DP_TOKENS $DP_RULES --name $R/data_parallel
step 90 env TORCH_LOGS=graph_breaks,recompiles $PY benchmarks/bench_compile.py $COMPILE --root $DATA_ROOT --name $R/compile

ALL="bp fa dfa signsym kp wm dtp sdtp aosdtp ddtp ldrl"
for nb in $NETS_B; do
  net=${nb%:*}; b=${nb#*:}
  step 30 $PY benchmarks/bench_imagenet_steps.py --model $net --data cifar10 --image-size 32 --classes 10 --rules $ALL \
    --batch-size $b --precision $PREC $STEPS --name $R/steps_${net}_b$b
done
for nb in $IMG_B; do
  net=${nb%:*}; b=${nb#*:}
  step 45 $PY benchmarks/bench_imagenet_steps.py --model $net --image-size $IMAGE --rules $ALL --batch-size $b \
    --precision $PREC $STEPS --name $R/steps_${net}_b$b
done

step 40 $PY benchmarks/bench_imagenet_pipeline.py --folder /tmp/bioscale_jpegs --make $JPEGS --workers 8 \
  --batch-size $PB --batches $PBATCH --name $R/imagenet_pipeline

for rule in bp fa dtp; do
  step $EPOCH_S $PY -m bioscale train rule=$rule data=cifar10 data.root=$DATA_ROOT data.augment=true model=cifar_lc \
    trainer.epochs=100 trainer.checkpoint=false trainer.progress=false observers.console.enabled=false \
    output_dir=$G/cifar_lc_runs $EXTRA
done
say "done"
if [ -n "${OUT:-}" ]; then tar czf $OUT/gpu.tar.gz $G; cp $LOG $OUT/; fi
