#!/bin/sh
# Issue 4 runs on this machine (2 CPU cores, no GPU): every rule on the paper's LC nets and
# on CIFAR-10, two single-threaded runs at a time (one sweep, longest runs first, so that
# both cores stay busy), each with its exact `bioscale train` command recorded in
# results/lc_and_cifar/sweep.md. Budgets (what this machine allowed in one session, about
# 80 minutes of two cores; measured single-thread costs: mnist_lc BP ~50 s/epoch, DTP ~3x;
# cifar_fc BP ~30 s/epoch; cifar_lc BP ~13 min/epoch, DTP ~30 min/epoch):
#   mnist_lc: BP and FA 20 epochs, DTP alternating 3 epochs;
#   cifar_fc (flips + crops): BP 40 epochs, every other rule 3 epochs;
#   cifar_lc (flips + crops): 1 epoch on the first 6,000 training images, every rule;
#   cifar_conv: BP, the same budget.
# Hyperparameters are the mnist_fc recipes carried over (no search on these nets).
# Run from benchmarks/.
set -eu
MNIST="data=mnist data.root=../shared/data"
CIFAR="data=cifar10 data.root=../shared/data data.augment=true"
LC="$CIFAR model=cifar_lc trainer.epochs=1 data.limit_train=6000"
python sweep.py lc_and_cifar --base "trainer.batch_size=128 seed=0" --jobs 2 \
  --trial "$CIFAR model=cifar_fc rule=bp trainer.epochs=40" \
  --trial "$MNIST model=mnist_lc rule=bp trainer.epochs=20" \
  --trial "$MNIST model=mnist_lc rule=fa trainer.epochs=20" \
  --trial "$MNIST model=mnist_lc rule=dtp rules.dtp.schedule=alternating trainer.epochs=3" \
  --trial "$LC rule=dtp rules.dtp.schedule=parallel" --trial "$LC rule=dtp rules.dtp.schedule=alternating" \
  --trial "$LC rule=sdtp rules.sdtp.schedule=parallel" --trial "$LC rule=sdtp rules.sdtp.schedule=alternating" \
  --trial "$LC rule=aosdtp rules.aosdtp.schedule=parallel" --trial "$LC rule=aosdtp rules.aosdtp.schedule=alternating" \
  --trial "$CIFAR model=cifar_fc rule=dtp rules.dtp.schedule=parallel trainer.epochs=3" \
  --trial "$CIFAR model=cifar_fc rule=dtp rules.dtp.schedule=alternating trainer.epochs=3" \
  --trial "$CIFAR model=cifar_fc rule=sdtp rules.sdtp.schedule=parallel trainer.epochs=3" \
  --trial "$CIFAR model=cifar_fc rule=sdtp rules.sdtp.schedule=alternating trainer.epochs=3" \
  --trial "$CIFAR model=cifar_fc rule=aosdtp rules.aosdtp.schedule=parallel trainer.epochs=3" \
  --trial "$CIFAR model=cifar_fc rule=aosdtp rules.aosdtp.schedule=alternating trainer.epochs=3" \
  --trial "$LC rule=bp" --trial "$LC rule=fa" --trial "$LC rule=dfa" \
  --trial "$CIFAR model=cifar_conv trainer.epochs=1 data.limit_train=6000 rule=bp" \
  --trial "$CIFAR model=cifar_fc rule=fa trainer.epochs=3" \
  --trial "$CIFAR model=cifar_fc rule=dfa trainer.epochs=3"
