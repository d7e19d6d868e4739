#!/bin/sh
# What benchmarks/device_check.sh needs on a lent GPU machine that its image lacks (it reaches no
# network): omegaconf's wheels in .whl/ and a CIFAR-10 subset in .devdata/ (the whole set is over
# the 64 MiB a device call carries: the first 12,000 training and 4,000 test images of
# ../shared/data/cifar10.npz). Both folders are ignored by git (.git/info/exclude). Run from the
# repository root, then: device run "sh benchmarks/device_check.sh" carrying .whl and .devdata.
set -eu
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
grep -qx '/.devdata/' .git/info/exclude 2>/dev/null || echo '/.devdata/' >> .git/info/exclude
mkdir -p .whl .devdata
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl omegaconf==2.4.0 antlr4-python3-runtime==4.13.2
python3 - <<'PY'
import numpy as np
d = np.load("../shared/data/cifar10.npz")
np.savez_compressed(".devdata/cifar10.npz", x_train=d["x_train"][:12000], y_train=d["y_train"][:12000],
                    x_test=d["x_test"][:4000], y_test=d["y_test"][:4000])
PY
du -sh .whl .devdata
