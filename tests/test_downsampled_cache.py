"""Downsampled ImageNet through its memory-mapped .npy cache: the batches the old in-memory
loader gave, the cache written once and reused, never a partial cache, one writer among
concurrent loaders."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from bioscale.datasets import InMemorySplit, load_data, npy_cache
from bioscale.datasets.augment import Augmentation
from bioscale.datasets.in_memory import take_rows
from bioscale.errors import DataError
from test_imagenet_downsampled import data_cfg, write_batches


def old_loader(root, cfg):
    """The loader before the cache (commit b72ee18), for the comparison: every npz read whole,
    concatenated, held-out splits copied, float64 channel statistics in chunks of 65536 images."""
    files = [root / f"train_data_batch_{k}.npz" for k in (1, 2)] + [root / "val_data.npz"]
    parts = [(np.load(p)["data"].reshape(-1, 3, 32, 32), np.load(p)["labels"].astype(np.int64) - 1) for p in files]
    x, y = (
        torch.from_numpy(np.concatenate([p[0] for p in parts[:2]])),
        torch.from_numpy(np.concatenate([p[1] for p in parts[:2]])),
    )
    val = None
    if cfg.validation or cfg.limit_train:
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(cfg.split_seed))
        vi, ti = order[: cfg.validation], order[cfg.validation :]
        ti = ti[: cfg.limit_train] if cfg.limit_train else ti
        val = (x[vi], y[vi]) if cfg.validation else None
        x, y = x[ti], y[ti]
    if str(cfg.normalize.value) == "standardize":
        chunk = x.to(torch.float64).div_(255.0)
        mean = chunk.sum((0, 2, 3)) / (len(x) * 32 * 32)
        std = (chunk.square().sum((0, 2, 3)) / (len(x) * 32 * 32) - mean.square()).clamp_min(1e-16).sqrt()
    else:
        mean, std = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    scale, shift = (1.0 / (255.0 * std)).float().view(-1, 1, 1), (-mean / std).float().view(-1, 1, 1)
    make = lambda a, b: InMemorySplit(a, b, scale, shift)  # noqa: E731
    return make(x, y), make(*(torch.from_numpy(a) for a in parts[2])), (make(*val) if val else None)


def all_batches(split, seed=None, augment=None, rows=None, batch_size=16):
    gen = None if seed is None else torch.Generator().manual_seed(seed)
    return list(split.batches(batch_size, gen, augment, rows=rows))


def assert_same(a, b):
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert xa.dtype == xb.dtype == torch.float32 and torch.equal(xa, xb) and torch.equal(ya, yb)


@pytest.mark.parametrize(
    "extra", [[], ["data.validation=20"], ["data.validation=10", "data.limit_train=50"], ["data.normalize=scale"]]
)
def test_batches_are_bit_identical_to_the_old_in_memory_loader(tmp_path, extra):
    root = write_batches(tmp_path / "d", train=(60, 50))
    cfg = data_cfg(root, "imagenet32", *extra)
    new = load_data(cfg)
    train, test, val = old_loader(root, cfg)
    assert isinstance(new.train.x, torch.Tensor) and len(new.train) == len(train)
    flips = Augmentation(crop_padding=4, flip=True)
    assert_same(all_batches(new.train, 3, flips), all_batches(train, 3, flips))
    half = lambda n: slice(n // 2, n)  # noqa: E731  # rank 1 of 2 of each global batch
    assert_same(all_batches(new.train, 4, flips, rows=half), all_batches(train, 4, flips, rows=half))
    assert_same(all_batches(new.train), all_batches(train))  # in order (gradient probes' first rows)
    assert_same(all_batches(new.test), all_batches(test))
    assert_same(all_batches(new.test.shard(1, 2)), all_batches(test.shard(1, 2)))
    assert (new.val is None) == (val is None)
    if val is not None:
        assert_same(all_batches(new.val.shard(0, 3)), all_batches(val.shard(0, 3)))


def mapping_of(address: int) -> str:
    """``"<file> <perms>"`` of the memory mapping that holds ``address`` (``/proc/self/maps``)."""
    for line in open("/proc/self/maps"):
        span, perms, *rest = line.split()
        low, high = (int(a, 16) for a in span.split("-"))
        if low <= address < high:
            return f"{rest[-1] if len(rest) == 4 else ''} {perms}"
    return ""


def test_splits_are_index_views_of_one_mapped_array(tmp_path):
    root = write_batches(tmp_path / "d")
    bundle = load_data(data_cfg(root, "imagenet32", "data.validation=20"))
    train, val = bundle.train, bundle.val
    assert train.x.data_ptr() == val.x.data_ptr()  # one array, two index views
    assert train.index is not None and sorted(train.index.tolist() + val.index.tolist()) == list(range(120))
    folder = root / ".bioscale-cache" / "imagenet32"
    assert mapping_of(train.x.data_ptr()) == f"{folder / 'train_x.npy'} r--s"  # the cache file, read-only, shared
    assert train.to("cpu").index is train.index  # on its own device a view stays a view
    on_other = train.to("meta")  # off the CPU the split's own rows are copied (here: shapes only)
    assert on_other.index is None and on_other.x.shape == (100, 3, 32, 32)
    for index in (train.index, None):  # the copy, gathered a few rows at a time, is x[index]
        rows = take_rows(train.x, index, "cpu", chunk_bytes=7 * 3072)
        assert torch.equal(rows, train.x if index is None else train.x[index])


def test_the_cache_is_written_once_reused_and_rebuilt_when_a_source_changes(tmp_path, monkeypatch):
    root = write_batches(tmp_path / "d")
    first = load_data(data_cfg(root))
    folder = root / ".bioscale-cache" / "imagenet32"
    manifest = (folder / "manifest.json").stat().st_mtime_ns
    assert sorted(p.name for p in folder.iterdir()) == [
        ".lock",
        "manifest.json",
        *sorted(f"{a}.npy" for a in npy_cache.ARRAYS),
    ]

    def no_build(*args):
        raise AssertionError("the cache was built again")

    with monkeypatch.context() as m:
        m.setattr(npy_cache, "build", no_build)
        again = load_data(data_cfg(root))
    assert (folder / "manifest.json").stat().st_mtime_ns == manifest
    assert_same(all_batches(again.train, 1), all_batches(first.train, 1))
    write_batches(root, train=(60, 61), seed=5)  # new files: another size, other pixels
    changed = load_data(data_cfg(root))
    assert len(changed.train) == 121 and torch.equal(
        changed.train.x[60:], torch.from_numpy(np.load(root / "train_data_batch_2.npz")["data"].reshape(-1, 3, 32, 32))
    )


def die_mid_write(root):
    """Load with a conversion that dies (no clean-up, as under SIGKILL) while writing the second file."""
    real, calls = npy_cache.copy_pixels, []

    def dying(path, out):
        calls.append(path)
        if len(calls) == 2:
            out[: len(out) // 2] = 7  # half the rows written
            os._exit(9)
        real(path, out)

    npy_cache.copy_pixels = dying
    load_data(data_cfg(root))


def test_a_cache_left_by_a_killed_writer_is_not_used(tmp_path):
    root = write_batches(tmp_path / "d")
    child = multiprocessing.get_context("fork").Process(target=die_mid_write, args=(root,))
    child.start()
    child.join(60)
    assert child.exitcode == 9
    folder = root / ".bioscale-cache" / "imagenet32"
    assert not (folder / "manifest.json").exists() and list(folder.glob("train_x.npy.tmp-*"))
    bundle = load_data(data_cfg(root))
    train, _, _ = old_loader(root, data_cfg(root))
    assert torch.equal(bundle.train.x, train.x) and not list(folder.glob("*.tmp-*"))


def test_a_conversion_that_fails_leaves_no_temp_file_and_no_cache(tmp_path, monkeypatch):
    root = write_batches(tmp_path / "d")
    real = npy_cache.copy_pixels

    def cut_off(path, out):
        if path.name == "train_data_batch_2.npz":
            raise DataError(f"{path}: 'data' ends early")
        real(path, out)

    monkeypatch.setattr(npy_cache, "copy_pixels", cut_off)
    with pytest.raises(DataError, match="train_data_batch_2.npz: 'data' ends early"):
        load_data(data_cfg(root))
    folder = root / ".bioscale-cache" / "imagenet32"
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]


@pytest.mark.parametrize("damage", ["manifest", "pixels"])
def test_a_damaged_cache_is_rebuilt(tmp_path, damage):
    root = write_batches(tmp_path / "d")
    load_data(data_cfg(root))
    folder = root / ".bioscale-cache" / "imagenet32"
    if damage == "manifest":
        (folder / "manifest.json").write_text('{"format": 1, "si')
    else:
        with open(folder / "train_x.npy", "r+b") as handle:
            handle.truncate(1000)
    bundle = load_data(data_cfg(root))
    train, _, _ = old_loader(root, data_cfg(root))
    assert torch.equal(bundle.train.x, train.x)


CONCURRENT = """
import sys, time
from bioscale.datasets import load_data, npy_cache
from test_imagenet_downsampled import data_cfg
real = npy_cache.build
def slow_build(*args):
    with open(sys.argv[2], "a") as log:
        log.write("built\\n")
    time.sleep(1.0)  # the other loader arrives while this one holds the lock
    return real(*args)
npy_cache.build = slow_build
bundle = load_data(data_cfg(sys.argv[1]))
print(int(bundle.train.x.double().sum()))
"""


def test_two_loaders_started_together_write_one_cache(tmp_path):
    root = write_batches(tmp_path / "d")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])}
    log = tmp_path / "builds.log"
    script = textwrap.dedent(CONCURRENT)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(root), str(log)], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert log.read_text() == "built\n" and outs[0] == outs[1]
    assert outs[0].strip() == str(
        int(np.concatenate([np.load(root / f"train_data_batch_{k}.npz")["data"] for k in (1, 2)]).sum())
    )


def test_the_cache_folder_is_chosen_by_variable_or_falls_back_to_the_users_cache(tmp_path, monkeypatch):
    root = write_batches(tmp_path / "d")
    monkeypatch.setenv("BIOSCALE_DATA_CACHE", str(tmp_path / "chosen"))
    assert len(load_data(data_cfg(root)).train) == 120
    assert list((tmp_path / "chosen").glob("imagenet32-*/manifest.json")) and not (root / ".bioscale-cache").exists()
    monkeypatch.delenv("BIOSCALE_DATA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(
        npy_cache, "_writable", lambda folder: str(tmp_path / "home") in str(folder)
    )  # data folder read-only
    assert len(load_data(data_cfg(root)).train) == 120
    assert list((tmp_path / "home" / "bioscale").glob("imagenet32-*/manifest.json"))


MEMORY = """
import sys
import torch
from bioscale.datasets import load_data
from test_imagenet_downsampled import data_cfg
def field(path, name):
    return next(int(line.split()[1]) * 1024 for line in open(path) if line.startswith(name + ":"))
torch.ones(10).sum()
rss, anonymous = field("/proc/self/status", "VmRSS"), field("/proc/self/smaps_rollup", "Anonymous")
bundle = load_data(data_cfg(sys.argv[1], "imagenet64", "data.validation=500"))
print(field("/proc/self/status", "VmHWM") - rss, field("/proc/self/smaps_rollup", "Anonymous") - anonymous)
"""


def test_loading_holds_no_private_copy_and_makes_no_transient_one(tmp_path):
    """Peak resident memory while loading (building the cache, then reusing it) stays near one
    copy of the pixels (the mapped file's pages, shared with other processes), and what stays
    private (anonymous) after loading is a fraction of it. Before the cache: peak 9.8x, private 1x."""
    root = write_batches(tmp_path / "d", side=64, train=(5000, 5000), val=100)
    pixels = 10_000 * 3 * 64 * 64
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])}
    for _ in ("build", "reuse"):
        out = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(MEMORY), str(root)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        peak, private = map(int, out.stdout.split())
        assert peak < 1.4 * pixels and private < 0.35 * pixels, (peak / pixels, private / pixels)


def test_two_torchrun_ranks_share_one_cache_and_train_the_one_process_run(tmp_path):
    root = write_batches(tmp_path / "d")
    tokens = ["train", "rule=bp", "data=imagenet32", f"data.root={root}", "data.validation=20", "data.augment=true"]
    tokens += ["model.widths=[16]", "trainer.epochs=1", "trainer.batch_size=32", "observers.console.enabled=false"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    runs = {}
    for world, launcher in (("two", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                     "--nproc_per_node=2", "--no-python", "bioscale"]),
                            ("one", [sys.executable, "-m", "bioscale"])):  # fmt: skip
        out = subprocess.run(
            [*launcher, *tokens, f"output_dir={tmp_path / world}"], env=env, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr[-3000:]
        (runs[world],) = [p for p in (tmp_path / world).iterdir() if p.is_dir()]
    assert [p.name for p in (root / ".bioscale-cache").iterdir()] == ["imagenet32"]
    two, one = (torch.load(runs[w] / "checkpoint.pt", weights_only=True)["model"] for w in ("two", "one"))
    assert max(float((two[k] - one[k]).abs().max()) for k in one) < 1e-5
    s2, s1 = (json.loads((runs[w] / "summary.json").read_text()) for w in ("two", "one"))
    assert s2["final_test_error"] == s1["final_test_error"] and s2["best_val_error"] == s1["best_val_error"]
