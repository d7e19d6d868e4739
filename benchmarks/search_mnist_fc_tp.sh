#!/bin/sh
# Proxy random search for the TP family and DFA on MNIST mnist_fc: 20 epochs (cosine over
# 20), full training set, batch 128, seed 0; 5 trials per row (DFA 4). The best proxy per
# row is then trained for 100 epochs (see results/README.md). Run from benchmarks/.
set -eu
BASE="data=mnist data.root=../shared/data model=mnist_fc trainer.epochs=20 trainer.batch_size=128 seed=0"
TP_SPACE="--loguniform optimizer.lr=1e-4:2e-3 --loguniform inverse_optimizer.lr=1e-4:1e-2 --uniform sigma=0.01:0.3 --choice optimizer.beta2=0.99,0.999 --choice optimizer.weight_decay=0,1e-4"
for rule in dtp sdtp aosdtp; do
  for schedule in alternating parallel; do
    space=$(echo "$TP_SPACE" | sed "s/\(--[a-z]*\) /\1 rules.$rule./g")
    extra=""
    [ "$rule" = dtp ] && extra="--uniform rules.dtp.alpha=0.01:0.2"
    python sweep.py "recipes/${rule}-${schedule}/proxy_mnist_fc_${rule}_${schedule}" --base "$BASE rule=$rule rules.$rule.schedule=$schedule" \
      --random 5 --seed 1 $space $extra --jobs 2
  done
done
python sweep.py recipes/dfa/proxy_mnist_fc_dfa --base "$BASE rule=dfa" --random 4 --seed 1 \
  --loguniform rules.dfa.optimizer.lr=1e-4:3e-3 --choice rules.dfa.optimizer.beta2=0.99,0.999 \
  --choice rules.dfa.optimizer.weight_decay=0,1e-4 --jobs 2
