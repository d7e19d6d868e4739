"""The GPU path: every rule on every kind of net with ``trainer.device=cuda``, no host sync per
step, memory stable over epochs, bf16 and compile, decoding on the device. Skipped without a
CUDA device; ``benchmarks/device_check.sh`` runs them on a lent GPU (``pytest -m cuda``)."""

import pytest
import torch
from bioscale.testing import new_trainer
from test_no_host_sync import STEPS, HostReads

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]

CUDA = ["trainer.device=cuda"]
NETS = {
    "fc": ["model.widths=[32,32]"],
    "lc": [
        "model.blocks=[{type: lc, channels: 4, kernel: 3, stride: 2}, {type: lc, channels: 6, kernel: 3, stride: 1}]",
        "model.widths=[16]",
    ],
    "conv": [
        "model.blocks=[{type: conv, channels: 4, kernel: 3, stride: 2}, {type: conv, channels: 6, kernel: 3, stride: 1}]",
        "model.widths=[16]",
    ],
}
IDS = [f"{r}-{'-'.join(t) or 'default'}" for r, t in STEPS]


def _for_net(tokens, net: str) -> list:
    """``tokens`` with a mix's layer list fitted to ``net`` (3 layers for fc, 4 for lc and conv)."""
    layers = "rules.mix.layers=[fa,dtp,dtp]" if net == "fc" else "rules.mix.layers=[fa,fa,dtp,dtp]"
    return [layers if t.startswith("rules.mix.layers=") else t for t in tokens]


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("rule,tokens", STEPS, ids=IDS)
def test_every_rule_trains_every_net_on_cuda(tmp_path, rule, tokens, net):
    if rule == "ep" and net != "fc":
        pytest.skip("ep settles fully connected chains only (it refuses the others: tests/test_rule_ep.py)")
    trainer = new_trainer(rule, tmp_path, [*_for_net(tokens, net), *NETS[net], *CUDA, "trainer.epochs=2"])
    summary = trainer.fit()
    assert summary["status"] == "completed" and summary["device"].startswith("cuda")
    assert all(p.is_cuda and torch.isfinite(p).all() for p in trainer.model.parameters())
    assert summary["best_test_error"] < 90


@pytest.mark.parametrize("rule,tokens", STEPS, ids=IDS)
def test_a_cuda_step_never_reads_a_value_back_to_the_host(tmp_path, rule, tokens):
    trainer = new_trainer(rule, tmp_path, [*_for_net(tokens, "lc"), *NETS["lc"], *CUDA])
    x, y = trainer.data.train.x[:32], trainer.data.train.y[:32]
    assert x.is_cuda
    phase_sets = [frozenset(p) for p in trainer.rule_hooks.epoch_passes(0)]
    trainer.train_step(x, y, 0, phase_sets[0], 0.0)
    with HostReads() as probe:
        for phases in phase_sets:
            trainer.train_step(x, y, 0, phases, 0.1)
    assert probe.count == 0, f"{rule}: {probe.count} host reads in one step"


@pytest.mark.parametrize("rule,tokens", [("bp", ()), ("dtp", ("rules.dtp.schedule=parallel",))])
def test_cuda_memory_is_stable_over_epochs(tmp_path, rule, tokens):
    trainer = new_trainer(rule, tmp_path, [*tokens, *NETS["lc"], *CUDA])
    train = trainer.data.train
    allocated = []
    for epoch in range(3):
        for phases in trainer.rule_hooks.epoch_passes(epoch):
            for x, y in train.batches(64, trainer.data_generator):
                trainer.train_step(x, y, epoch, frozenset(phases), 0.5)
        torch.cuda.synchronize()
        allocated.append(torch.cuda.memory_allocated())
    assert allocated[2] == allocated[1], allocated  # nothing accumulates after the first epoch's lazy state


def test_bf16_on_cuda_runs_bf16_products_with_float32_master_weights(tmp_path):
    trainer = new_trainer("dtp", tmp_path, [*NETS["conv"], *CUDA, "trainer.precision=bf16"])
    x, y = trainer.data.train.x[:32], trainer.data.train.y[:32]
    step, _ = trainer.train_step(x, y, 0, frozenset({"inverse", "forward"}), 0.1)
    assert step.h[1].dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in trainer.model.parameters())
    assert trainer.fit()["status"] == "completed"


def test_compiled_cuda_step_matches_eager(tmp_path):
    weights = {}
    for mode in ("false", "true"):
        trainer = new_trainer("bp", tmp_path / mode, [*NETS["fc"], *CUDA, f"trainer.compile={mode}"])
        x, y = trainer.data.train.x[:64], trainer.data.train.y[:64]
        for i in range(3):
            trainer.train_step(x, y, 0, frozenset({"forward"}), 0.1 * i)
        weights[mode] = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    torch.testing.assert_close(weights["true"], weights["false"], rtol=1e-4, atol=1e-5)


def test_device_decoding_on_cuda_matches_the_workers_path(tmp_path):
    import numpy as np
    from bioscale.config import build_run_config
    from bioscale.datasets import load_data
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in range(3):
            folder = tmp_path / split / f"c{c}"
            folder.mkdir(parents=True)
            for i in range(4):
                h, w = rng.integers(60, 120, 2)
                yy, xx = np.mgrid[:h, :w]
                img = (127 + 100 * np.sin(xx / 7.0 + c) * np.cos(yy / 9.0))[..., None].repeat(3, 2).astype(np.uint8)
                Image.fromarray(img).save(folder / f"{i}.jpg", quality=95)
    out = {}
    for decode, device in (("workers", "cpu"), ("device", "cuda")):
        cfg = build_run_config(
            [
                "data=imagenet",
                f"data.root={tmp_path}",
                "data.image_size=32",
                "data.resize=40",
                "data.workers=1",
                f"data.decode={decode}",
            ]
        )
        batches = list(load_data(cfg.data, device).test.batches(4))
        assert all(x.device.type == device for x, _ in batches)
        out[decode] = torch.cat([x.cpu() for x, _ in batches])
    assert (out["device"] - out["workers"]).abs().mean() < 0.1
