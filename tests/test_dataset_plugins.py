"""Data sets are entry points of the group ``bioscale.datasets``: the built-ins are declared like a
third party's, ``data=NAME`` takes any installed name, ``from_arrays`` prepares a plugin's arrays as
the built-in in-memory sets are prepared, and unknown, conflicting and broken ones are refused or
reported as rules are."""

import json

import numpy as np
import pytest
import torch
import yaml
from bioscale.config import build_run_config
from bioscale.datasets import from_arrays, load_data
from bioscale.datasets.errors import DataError
from bioscale.discovery import DATASETS_GROUP, discover
from bioscale.errors import ConfigError, PluginError
from conftest import TINY, run_cli

BLOBS = """
import numpy as np
from bioscale.datasets import DataSet, from_arrays

def _load(cfg, device):
    rng = np.random.default_rng(0)
    y = np.arange(120) % 3
    x = (rng.integers(0, 100, (120, 4, 4, 3)) + 50 * y[:, None, None, None]).astype(np.uint8)
    return from_arrays(cfg, x[:96], y[:96], x[96:], y[96:], device, source="random blobs")

blobs = DataSet("random 4x4 colour blobs, 3 classes", _load)
"""
RUN = [t for t in TINY if not t.startswith("data=")] + ["trainer.epochs=1", "trainer.batch_size=32"]


def data_cfg(*tokens):
    return build_run_config(["data=digits", *tokens]).data


def arrays(n=40, classes=4, shape=(6, 5, 3), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, *shape)).astype(np.uint8)
    return x, np.arange(n) % classes


def test_the_built_in_data_sets_come_from_the_bioscale_distribution():
    found = discover(DATASETS_GROUP)
    assert {"digits", "mnist", "cifar10", "imagenet", "imagenet32", "imagenet64"} <= set(found)
    assert all(found[n].distribution == "bioscale" for n in ("digits", "imagenet32"))
    assert load_data(data_cfg()).num_classes == 10


def test_from_arrays_takes_channels_last_numpy_or_torch_and_applies_the_data_settings():
    x, y = arrays()
    cfg = data_cfg("data.validation=8", "data.limit_train=20")
    bundle = from_arrays(cfg, x[:32], y[:32], x[32:], y[32:])
    assert bundle.in_shape == (3, 6, 5) and bundle.num_classes == 4
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (20, 8, 8)
    mean = bundle.train.x.mean((0, 2, 3)).tolist()
    every = from_arrays(data_cfg(), x[:32], y[:32], x[32:], y[32:])
    assert np.allclose(every.train.x.mean((0, 2, 3)).tolist(), 0, atol=1e-5) and mean != [0, 0, 0]
    as_torch = from_arrays(cfg, torch.from_numpy(x[:32]), torch.from_numpy(y[:32]), x[32:], y[32:])
    assert torch.equal(as_torch.train.x, bundle.train.x) and torch.equal(as_torch.val.y, bundle.val.y)
    grey = from_arrays(
        data_cfg("data.normalize=scale", "data.augment=true"), x[:32, ..., 0], y[:32], x[32:, ..., 0], y[32:]
    )
    assert grey.in_shape == (1, 6, 5) and grey.augment is not None
    assert torch.allclose(grey.test.x[0, 0], torch.from_numpy(x[32, ..., 0]).float() / 255)


def test_from_arrays_refuses_bad_labels_and_shapes():
    x, y = arrays()
    with pytest.raises(DataError, match=r"y_test\[0\] = 7 is not a class"):
        from_arrays(data_cfg(), x[:32], y[:32], x[32:], y[32:] + 7, num_classes=4)
    with pytest.raises(DataError, match="test split has classes the training split lacks"):
        from_arrays(data_cfg(), x[:32], y[:32] % 2, x[32:], y[32:])
    with pytest.raises(DataError, match=r"images \(N, H, W\) or \(N, H, W, C\)"):
        from_arrays(data_cfg(), x[:32].reshape(32, -1), y[:32], x[32:], y[32:])
    with pytest.raises(DataError, match="integer class indices"):
        from_arrays(data_cfg(), x[:32], y[:32].astype(float), x[32:], y[32:])
    with pytest.raises(DataError, match="training images are"):
        from_arrays(data_cfg(), x[:32], y[:32], x[32:, :3], y[32:])


def test_a_third_party_data_set_trains_and_is_recorded(fake_site, tmp_path):
    fake_site.add_distribution(
        "bioscale-blobs", "1.2", "bioscale_blobs", BLOBS, {DATASETS_GROUP: {"blobs": "bioscale_blobs:blobs"}}
    )
    assert build_run_config(["data=blobs"]).data.name == "blobs"
    result = run_cli("train", "rule=bp", "data=blobs", *RUN, f"output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    run_dir = result.stdout.strip().splitlines()[-1]
    info = yaml.safe_load(open(f"{run_dir}/config.yaml"))["run_info"]
    assert info["data_source"] == "random blobs" and info["train_examples"] == 96
    assert info["code"]["data"]["distribution"] == "bioscale-blobs" and info["code"]["data"]["version"] == "1.2"
    rows = {r["name"]: r for r in json.loads(run_cli("datasets", "--json").stdout)}
    assert rows["blobs"]["description"] == "random 4x4 colour blobs, 3 classes" and rows["blobs"]["status"] == "ok"
    assert rows["digits"]["distribution"] == "bioscale"


def test_an_unknown_data_set_exits_2_listing_the_installed_ones():
    with pytest.raises(ConfigError, match=r"unknown data set 'nope'.*cifar10, digits"):
        build_run_config(["data=nope"])
    result = run_cli("train", "rule=bp", "data=nope")
    assert result.returncode == 2 and "digits" in result.stderr and "Traceback" not in result.stderr


def test_conflicting_and_broken_data_sets_are_refused_and_listed(fake_site, tmp_path):
    for dist in ("blobs-a", "blobs-b"):
        module = dist.replace("-", "_")
        fake_site.add_distribution(dist, "1.0", module, BLOBS, {DATASETS_GROUP: {"blobs": f"{module}:blobs"}})
    fake_site.add_distribution(
        "bioscale-gone",
        "0.1",
        "bioscale_gone",
        "import no_such_module\n",
        {DATASETS_GROUP: {"gone": "bioscale_gone:x"}},
    )
    with pytest.raises(PluginError, match="blobs-a 1.0.*blobs-b 1.0"):
        build_run_config(["data=blobs"])
    with pytest.raises(PluginError, match="bioscale-gone 0.1.*no_such_module"):
        build_run_config(["data=gone"])
    text = run_cli("datasets")
    assert text.returncode == 0 and "blobs-b 1.0" in text.stderr  # the conflict warned about
    gone = next(l for l in text.stdout.splitlines() if l.startswith("gone "))
    assert "broken" in gone and "no_such_module" in gone
    blocked = run_cli("train", "rule=bp", "data=blobs", *RUN, f"output_dir={tmp_path / 'a'}")
    assert blocked.returncode == 2 and "blobs-a 1.0" in blocked.stderr and not (tmp_path / "a").exists()
    other = run_cli("train", "rule=bp", "data=digits", *RUN, f"output_dir={tmp_path / 'b'}")
    assert other.returncode == 0, other.stderr
