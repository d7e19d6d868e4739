"""Data: npz loading and validation, the shipped digits, explicit normalisation, splits,
batching by indexing, and batched augmentation."""

import numpy as np
import pytest
import torch
from bioscale.config import build_run_config
from bioscale.datasets import Augmentation, load_data
from bioscale.errors import DataError
from conftest import run_cli


def write_npz(path, n_train=40, n_test=10, shape=(6, 6, 3), classes=4, **override):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        "y_train": rng.integers(0, classes, n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "y_test": rng.integers(0, classes, n_test).astype(np.uint8),
    }
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez_compressed(path, **arrays)
    return arrays


def load(tmp_path, name="cifar10", *tokens):
    return load_data(build_run_config([f"data={name}", f"data.root={tmp_path}", *tokens]).data)


def test_npz_loading_shapes_labels_and_standardisation(tmp_path):
    arrays = write_npz(tmp_path / "cifar10.npz")
    data = load(tmp_path)
    assert data.in_shape == (3, 6, 6) and data.num_classes == 10  # CIFAR-10's classes, whatever labels occur
    assert data.train.x.shape == (40, 3, 6, 6) and data.train.x.dtype == torch.float32
    assert torch.equal(data.train.y, torch.from_numpy(arrays["y_train"]).long())
    # HWC -> CHW, then (x / 255 - mean_c) / std_c with training statistics
    raw = torch.from_numpy(arrays["x_train"]).permute(0, 3, 1, 2).double() / 255
    mean, std = raw.mean((0, 2, 3)), raw.std((0, 2, 3))
    expected = ((raw - mean[:, None, None]) / std[:, None, None]).float()
    torch.testing.assert_close(data.train.x, expected, rtol=1e-5, atol=1e-5)
    assert data.normalization["kind"] == "standardize" and len(data.normalization["mean"]) == 3


def test_normalisation_is_explicit(tmp_path):
    arrays = write_npz(tmp_path / "mnist.npz", shape=(5, 5))
    scaled = load(tmp_path, "mnist", "data.normalize=scale")
    torch.testing.assert_close(scaled.train.x[:, 0], torch.from_numpy(arrays["x_train"]).float() / 255)
    raw = load(tmp_path, "mnist", "data.normalize=none")
    torch.testing.assert_close(raw.train.x[:, 0], torch.from_numpy(arrays["x_train"]).float())


@pytest.mark.parametrize(
    "override, fragment",
    [
        ({"y_test": None}, "missing arrays ['y_test']"),
        ({"x_train": np.zeros((40, 6, 6, 3), dtype=np.float32)}, "uint8"),
        ({"y_train": np.zeros(39, dtype=np.uint8)}, "y_train"),
        ({"x_test": np.zeros((10, 7, 7, 3), dtype=np.uint8)}, "differ in shape"),
    ],
)
def test_malformed_npz_is_named(tmp_path, override, fragment):
    write_npz(tmp_path / "cifar10.npz", **override)
    with pytest.raises(DataError) as info:
        load(tmp_path)
    assert fragment in str(info.value) and "cifar10.npz" in str(info.value)


def test_garbage_npz_is_named(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="mnist.npz"):
        load(tmp_path, "mnist")


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"x_train,y_train\n1,2\n", "is not an npz file (a zip of NumPy arrays, as numpy.savez writes): it looks like"),
        (b"", "is not an npz file (a zip of NumPy arrays, as numpy.savez writes): it is empty"),
        (b"\x93NUMPY\x01\x00", "it is a single .npy array"),
        (None, "an array holds Python objects, not numbers"),
    ],
)
def test_a_file_that_is_not_an_npz_of_numbers_gets_a_plain_message(tmp_path, content, fragment):
    path = tmp_path / "mnist.npz"
    if content is None:
        write_npz(path)
        arrays = dict(np.load(path))
        np.savez(path, **{**arrays, "y_test": np.array([{"label": 1}] * len(arrays["y_test"]), dtype=object)})
    else:
        path.write_bytes(content)
    result = run_cli("train", "rule=bp", "data=mnist", f"data.root={tmp_path}", f"output_dir={tmp_path / 'runs'}")
    assert result.returncode == 2 and fragment in result.stderr and str(path) in result.stderr
    assert "pickle" not in result.stderr and "Traceback" not in result.stderr and not (tmp_path / "runs").exists()


def test_a_data_root_that_is_a_file_is_named(tmp_path):
    (tmp_path / "notes.txt").write_text("not data")
    with pytest.raises(DataError, match=r"data.root=.*notes.txt is a file; it must be the folder that holds mnist.npz"):
        load(tmp_path / "notes.txt", "mnist")


def test_shipped_digits():
    data = load_data(build_run_config([]).data)
    assert data.name == "digits" and data.in_shape == (1, 8, 8) and data.num_classes == 10
    assert len(data.train) == 1500 and len(data.test) == 297
    assert data.normalization["max_value"] == 16


def test_validation_split_is_fixed_and_disjoint(tmp_path):
    write_npz(tmp_path / "cifar10.npz")
    a = load(tmp_path, "cifar10", "data.validation=10")
    b = load(tmp_path, "cifar10", "data.validation=10")
    assert len(a.val) == 10 and len(a.train) == 30
    assert torch.equal(a.val.x, b.val.x)
    train_rows = {tuple(r.flatten().tolist()) for r in a.train.x}
    assert not any(tuple(r.flatten().tolist()) in train_rows for r in a.val.x)
    with pytest.raises(DataError, match="data.validation"):
        load(tmp_path, "cifar10", "data.validation=40")


def test_limit_train_is_explicit(tmp_path):
    write_npz(tmp_path / "cifar10.npz")
    assert len(load(tmp_path, "cifar10", "data.limit_train=7").train) == 7


def test_batches_cover_every_example_once_and_follow_the_generator():
    data = load_data(build_run_config([]).data)
    gen = torch.Generator().manual_seed(0)
    seen = torch.cat([y for _, y in data.train.batches(128, gen)])
    assert len(seen) == 1500
    first = [x for x, _ in data.train.batches(128, torch.Generator().manual_seed(5))]
    second = [x for x, _ in data.train.batches(128, torch.Generator().manual_seed(5))]
    assert all(torch.equal(p, q) for p, q in zip(first, second))
    assert sorted(len(y) for _, y in data.train.batches(128)) == [92] + [128] * 11


def test_augmentation_crops_and_flips_as_specified():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4) + 1
    gen = torch.Generator().manual_seed(0)
    flip_only = Augmentation(crop_padding=0, flip=True)
    outs = [flip_only(x, gen) for _ in range(20)]
    assert all(torch.equal(o[i], x[i]) or torch.equal(o[i], x[i].flip(-1)) for o in outs for i in range(2))
    assert any(torch.equal(o[0], x[0].flip(-1)) for o in outs) and any(torch.equal(o[0], x[0]) for o in outs)
    crop = Augmentation(crop_padding=2, flip=False)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for _ in range(20):
        out = crop(x, gen)
        assert out.shape == x.shape
        for i in range(2):  # each output is some 4x4 window of the zero-padded image
            windows = padded[i, 0].unfold(0, 4, 1).unfold(1, 4, 1).reshape(-1, 4, 4)
            assert any(torch.equal(out[i, 0], w) for w in windows)


def test_real_mnist_from_shared_data(shared_data):
    data = load_data(build_run_config(["data=mnist", f"data.root={shared_data}"]).data)
    assert len(data.train) == 60000 and len(data.test) == 10000 and data.in_shape == (1, 28, 28)
    assert data.train.y[:5].tolist() == [5, 0, 4, 1, 9]
    assert abs(data.normalization["mean"][0] - 0.1307) < 1e-3 and abs(data.normalization["std"][0] - 0.3081) < 1e-3
