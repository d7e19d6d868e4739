"""ImageNet-style folders: decoding workers, resize and crop, top-1/top-5, determinism, errors."""

import json

import numpy as np
import pytest
import torch
from bioscale.config import build_run_config
from bioscale.datasets import load_data
from bioscale.testing import model_weights, new_trainer
from conftest import run_cli
from PIL import Image

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


TOKENS = [
    "data.image_size=16",
    "data.resize=20",
    "data.workers=2",
    "trainer.batch_size=8",
    "model.blocks=[{type: lc, channels: 4, kernel: 3, stride: 2}]",
    "model.widths=[16]",
]


def test_folder_loads_with_workers_crops_and_classes(image_folder):
    cfg = build_run_config(["data=imagenet", f"data.root={image_folder}", *TOKENS])
    data = load_data(cfg.data)
    assert data.num_classes == 7 and data.in_shape == (3, 16, 16) and data.top_k == (1, 5)
    assert len(data.train) == 42 and len(data.test) == 14
    xs, ys = zip(*data.train.batches(8, torch.Generator().manual_seed(0)))
    assert sum(len(y) for y in ys) == 42 and xs[0].shape == (8, 3, 16, 16) and xs[0].dtype == torch.float32
    assert sorted(torch.cat(ys).tolist()) == sorted([c for c in range(7) for _ in range(6)])


def test_training_reports_top1_and_top5_and_is_deterministic(image_folder, tmp_path):
    tokens = [
        "data=imagenet",
        f"data.root={image_folder}",
        *TOKENS,
        "data.augment=true",
        "trainer.epochs=2",
        "rules.bp.optimizer.lr=0.01",
    ]
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


# -- data.decode=device: reader threads, batched decoding, crops on the device -------------------


def test_device_decoding_gives_the_workers_crops_and_classes(image_folder):
    batches = {}
    for decode in ("workers", "device"):
        cfg = build_run_config(["data=imagenet", f"data.root={image_folder}", *TOKENS, f"data.decode={decode}"])
        data = load_data(cfg.data)
        assert data.num_classes == 7 and data.in_shape == (3, 16, 16) and len(data.train) == 42
        batches[decode] = list(data.test.batches(8))  # unshuffled centre crops
    for (xw, yw), (xd, yd) in zip(batches["workers"], batches["device"]):
        assert xd.shape == xw.shape and xd.dtype == torch.float32 and torch.equal(yd, yw)
        # PIL's resize-then-crop against one antialiased resize of the matching box: the same
        # pixels to interpolation error (the images are noise, the hardest case for it)
        assert (xd - xw).abs().mean() < 0.35 and torch.corrcoef(torch.stack([xd.flatten(), xw.flatten()]))[0, 1] > 0.8


def test_device_decoding_trains_deterministically_and_resumes_exactly(image_folder, tmp_path):
    from bioscale.testing import resume_trainer

    tokens = [
        "data=imagenet",
        f"data.root={image_folder}",
        *TOKENS,
        "data.decode=device",
        "data.augment=true",
        "trainer.epochs=2",
        "rules.bp.optimizer.lr=0.01",
    ]
    a = new_trainer("bp", tmp_path / "a", tokens)
    a.fit()
    b = new_trainer("bp", tmp_path / "b", tokens)
    b.fit(stop_after=1)
    resumed = resume_trainer(b.run_dir)
    resumed.fit()
    for name, value in model_weights(a).items():
        assert torch.equal(value, model_weights(resumed)[name]), name


@pytest.mark.parametrize("decode", ["device", "workers"])
def test_crops_are_drawn_for_the_global_batch_and_ranks_keep_their_rows(image_folder, decode):
    # review F8: under data.decode=workers every rank's DataLoader was seeded alike, so rank 1 cropped its
    # rows as rank 0 did its own; both paths now draw for the whole global batch
    cfg = build_run_config(
        ["data=imagenet", f"data.root={image_folder}", *TOKENS, f"data.decode={decode}", "data.augment=true"]
    )
    split = load_data(cfg.data).train
    whole = list(split.batches(8, torch.Generator().manual_seed(3)))
    halves = [
        list(
            split.batches(8, torch.Generator().manual_seed(3), rows=lambda n, r=r: slice(r * n // 2, (r + 1) * n // 2))
        )
        for r in (0, 1)
    ]
    assert len(whole) == len(halves[1]) == 6
    for (x, y), (x0, y0), (x1, y1) in zip(whole, *halves):
        assert torch.equal(torch.cat([x0, x1]), x) and torch.equal(torch.cat([y0, y1]), y)
    again = list(split.batches(8, torch.Generator().manual_seed(4)))
    assert not torch.equal(again[0][0], whole[0][0])


def test_crop_boxes_are_the_resized_images_crops_in_original_pixels():
    from bioscale.datasets.imagenet_device import crop_boxes

    sizes = torch.tensor([[100, 200], [300, 150]])
    centre = crop_boxes(sizes, resize=50, side=40, offsets=None)
    # image 0 resized to 50 x 100 (x 0.5): centre 40 x 40 crop at (5, 30) -> (10, 60, 80, 80)
    torch.testing.assert_close(centre[0], torch.tensor([10.0, 60.0, 80.0, 80.0], dtype=torch.float64))
    corner = crop_boxes(sizes, resize=50, side=40, offsets=torch.tensor([[0.0, 0.999], [0.999, 0.0]]))
    # image 1 resized to 100 x 50 (x 1/3): offsets 0..60 as RandomCrop's; the last starts at row 60 -> 180
    torch.testing.assert_close(corner[1], torch.tensor([180.0, 0.0, 120.0, 120.0], dtype=torch.float64))
    assert corner[0, 1] + corner[0, 3] <= 200 and corner[1, 0] + corner[1, 2] <= 300


def test_worker_crops_lie_where_their_offsets_say_and_flips_flip(image_folder):
    cfg = build_run_config(["data=imagenet", f"data.root={image_folder}", *TOKENS, "data.augment=true"])
    split = load_data(cfg.data).train
    cropped = torch.stack([split.dataset[(0, (u, 1 - u), False)][0] for u in (0.0, 0.999)])
    assert not torch.equal(cropped[0], cropped[1])  # the offsets say where the crop lies
    flipped = split.dataset[(0, (0.5, 0.5), True)][0]
    assert torch.equal(flipped, split.dataset[(0, (0.5, 0.5), False)][0].flip(2))
