"""ImageNet-style folders: decoding workers, resize and crop, top-1/top-5, determinism, errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from bioscale.config import build_run_config
from bioscale.datasets import load_data
from bioscale.testing import model_weights, new_trainer

from conftest import run_cli

CLASSES = ("ant", "bee", "cat", "dog", "eel", "fox", "gnu")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("val", 2)):
        for c, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                h, w = rng.integers(24, 40, 2)
                pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                pixels[..., c % 3] = 255 - 30 * c  # a learnable colour cue per class
                Image.fromarray(pixels).save(folder / f"{i}.{'jpg' if i % 2 else 'png'}")
    return root


TOKENS = ["data.image_size=16", "data.resize=20", "data.workers=2", "trainer.batch_size=8",
          "model.blocks=[{type: lc, channels: 4, kernel: 3, stride: 2}]", "model.widths=[16]"]


def test_folder_loads_with_workers_crops_and_classes(image_folder):
    cfg = build_run_config(["data=imagenet", f"data.root={image_folder}", *TOKENS])
    data = load_data(cfg.data)
    assert data.num_classes == 7 and data.in_shape == (3, 16, 16) and data.top_k == (1, 5)
    assert len(data.train) == 42 and len(data.test) == 14
    xs, ys = zip(*data.train.batches(8, torch.Generator().manual_seed(0)))
    assert sum(len(y) for y in ys) == 42 and xs[0].shape == (8, 3, 16, 16) and xs[0].dtype == torch.float32
    assert sorted(torch.cat(ys).tolist()) == sorted([c for c in range(7) for _ in range(6)])


def test_training_reports_top1_and_top5_and_is_deterministic(image_folder, tmp_path):
    tokens = ["data=imagenet", f"data.root={image_folder}", *TOKENS, "data.augment=true", "trainer.epochs=2",
              "rules.bp.optimizer.lr=0.01"]
    a = new_trainer("bp", tmp_path / "a", tokens)
    a.fit()
    b = new_trainer("bp", tmp_path / "b", tokens)
    b.fit(stop_after=1)
    from bioscale.testing import resume_trainer

    resumed = resume_trainer(b.run_dir)
    resumed.fit()
    for name, value in model_weights(a).items():
        assert torch.equal(value, model_weights(resumed)[name]), name
    line = json.loads((a.run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 <= line["test_top5_error"] <= line["test_error"] <= 100
    summary = json.loads((a.run_dir / "summary.json").read_text())
    assert "best_test_top5_error" in summary


def test_missing_folders_are_reported(tmp_path):
    (tmp_path / "train").mkdir()
    result = run_cli("train", "rule=bp", "data=imagenet", f"data.root={tmp_path}", "model.widths=[8]")
    assert result.returncode == 2
    assert str(tmp_path / "val") in result.stderr and "one folder of images per class" in result.stderr


def test_imagenet_lc_builds_for_224_inputs(image_folder):
    cfg = build_run_config(["data=imagenet", f"data.root={image_folder}", "model=imagenet_lc"])
    assert cfg.data.image_size == 224 and cfg.model.blocks[0].kernel == 9 and cfg.model.blocks[0].stride == 4
