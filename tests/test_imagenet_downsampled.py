"""data=imagenet32 / imagenet64: the npz batches of downsampled ImageNet, on generated files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bioscale.architectures import build_network
from bioscale.architectures.presets import PRESETS
from bioscale.config import build_run_config
from bioscale.datasets import load_data
from bioscale.errors import DataError
from bioscale.testing import new_trainer
from conftest import run_cli


def write_batches(root, side=32, train=(60, 60), val=30, seed=0, labels_high=5):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for k, n in enumerate(train, start=1):
        labels = np.arange(n) % labels_high + 1  # 1-based, every class in every batch
        np.savez(
            root / f"train_data_batch_{k}.npz",
            data=rng.integers(0, 256, (n, 3 * side * side), dtype=np.uint8),
            labels=labels,
            mean=np.zeros(3 * side * side),
        )
    np.savez(
        root / "val_data.npz",
        data=rng.integers(0, 256, (val, 3 * side * side), dtype=np.uint8),
        labels=np.arange(val) % labels_high + 1,
    )
    return root


def data_cfg(root, name="imagenet32", *extra):
    return build_run_config([f"data={name}", f"data.root={root}", "rule=bp", *extra]).data


def test_batches_are_read_in_order_kept_as_bytes_and_normalised_per_batch(tmp_path):
    root = write_batches(tmp_path / "Imagenet32_train_npz")  # the files may sit one folder down
    bundle = load_data(data_cfg(tmp_path))
    assert bundle.in_shape == (3, 32, 32) and bundle.num_classes == 1000 and bundle.top_k == (1, 5)
    assert len(bundle.train) == 120 and len(bundle.test) == 30 and bundle.train.x.dtype == torch.uint8
    raw = np.concatenate([np.load(root / f"train_data_batch_{k}.npz")["data"] for k in (1, 2)]).reshape(-1, 3, 32, 32)
    assert np.array_equal(bundle.train.x.numpy(), raw)  # R, G, B planes of each row, batch 1 then batch 2
    assert bundle.train.y.tolist()[:6] == [0, 1, 2, 3, 4, 0]  # labels 1..1000 become 0..999
    x, y = next(iter(bundle.train.batches(120)))
    pixels = torch.from_numpy(raw).double() / 255
    mean, std = pixels.mean((0, 2, 3)), pixels.std((0, 2, 3), unbiased=False)
    expected = (pixels - mean[:, None, None]) / std[:, None, None]
    assert x.dtype == torch.float32 and torch.allclose(x.double(), expected, atol=1e-5)
    assert bundle.normalization["mean"] == pytest.approx(mean.tolist(), abs=1e-6)


def test_a_run_on_imagenet32_reports_top5_and_holds_out_validation(tmp_path):
    root = write_batches(tmp_path / "data")
    trainer = new_trainer(
        "bp",
        tmp_path / "runs",
        [
            "data=imagenet32",
            f"data.root={root}",
            "model.widths=[16]",
            "trainer.epochs=1",
            "data.validation=20",
            "data.augment=true",
        ],
    )
    summary = trainer.fit()
    assert summary["status"] == "completed" and "best_test_top5_error" in summary and "best_val_error" in summary
    assert len(trainer.data.train) == 100 and len(trainer.data.val) == 20


@pytest.mark.parametrize("side,preset", [(32, "imagenet32_conv"), (64, "imagenet64_conv")])
def test_the_scaled_nets_end_at_4x4_and_give_1000_logits(side, preset):
    assert PRESETS[preset.replace("conv", "lc")]["blocks"][1:] == PRESETS["imagenet_lc"]["blocks"][1:]
    net = build_network(
        (3, side, side),
        1000,
        blocks=PRESETS[preset]["blocks"],
        widths=[],
        activation="tanh",
        generator=torch.Generator().manual_seed(0),
        name=preset,
    )
    _, h = net.forward_layers(torch.zeros(2, 3, side, side))
    assert tuple(h[-2].shape) == (2, 384, 4, 4) and tuple(h[-1].shape) == (2, 1000)


def test_bad_files_are_named(tmp_path):
    with pytest.raises(DataError, match="train_data_batch_<k>.npz and val_data.npz"):
        load_data(data_cfg(tmp_path / "empty"))
    root = write_batches(tmp_path / "a")
    with pytest.raises(DataError, match=r"'data' must be uint8 \(N, 12288\)"):
        load_data(data_cfg(root, "imagenet64"))  # 32x32 files read as 64x64
    np.savez(root / "train_data_batch_2.npz", data=np.zeros((4, 3072), np.uint8), labels=np.array([1, 2, 0, 3]))
    with pytest.raises(DataError, match=r"train_data_batch_2.npz: labels\[2\] = 0 is not a class"):
        load_data(data_cfg(root))
    (root / "val_data.npz").write_bytes(b"not a zip")
    (root / "train_data_batch_2.npz").unlink()
    with pytest.raises(DataError, match="val_data.npz is not an npz file"):
        load_data(data_cfg(root))


def test_the_command_line_refuses_missing_data_with_exit_status_2(tmp_path):
    result = run_cli("train", "rule=bp", "data=imagenet32", f"data.root={tmp_path}", f"output_dir={tmp_path / 'runs'}")
    assert result.returncode == 2 and "imagenet32 data not found" in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
