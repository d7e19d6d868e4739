"""No rule reads a tensor value back to the host inside a training step (on an accelerator
that would stall the device queue once per step): every ``.item()``, ``bool(t)``,
``int(t)`` and data-dependent check such as ``F.one_hot``'s range check dispatches
``aten._local_scalar_dense``, which this test records during ``Trainer.train_step``."""

import pytest
import torch
from bioscale.testing import new_trainer
from torch.utils._python_dispatch import TorchDispatchMode


class HostReads(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


def test_the_probe_sees_a_host_read():
    with HostReads() as probe:
        float(torch.ones(2).sum())
    assert probe.count == 1


STEPS = [
    ("bp", ()),
    ("fa", ()),
    ("dfa", ()),
    ("signsym", ("rules.signsym.variant=brsf",)),
    ("kp", ()),
    ("wm", ()),
    ("ddtp", ()),
    ("ldrl", ()),
    ("mix", ("rules.mix.layers=[fa,dtp,dtp]", "rules.dtp.schedule=parallel")),
] + [
    (rule, (f"rules.{rule}.schedule={schedule}",))
    for rule in ("dtp", "sdtp", "aosdtp")
    for schedule in ("parallel", "alternating")
]
# target propagation on a pooled chain: max-pooling indices reach the inverses, no value the host
POOLED = (
    "model.blocks=[{type: conv, channels: 4, kernel: 3, pool: max}, {type: conv, channels: 4, kernel: 3, pool: max}]",
)
STEPS += [("dtp", (*POOLED, "rules.dtp.schedule=parallel")), ("ldrl", POOLED), ("ddtp", POOLED)]
# predictive coding's settling loop (strict on the pooled chain too)
STEPS += [("pc", ()), ("pc", ("rules.pc.variant=fixed_prediction",)), ("pc", POOLED)]
# equilibrium propagation's free and nudged phases
STEPS += [("ep", ("rules.ep.free_steps=5", "rules.ep.nudged_steps=3"))]


@pytest.mark.parametrize("rule,tokens", STEPS, ids=[f"{r}-{'-'.join(t) or 'default'}" for r, t in STEPS])
def test_a_training_step_never_reads_a_value_back_to_the_host(tmp_path, rule, tokens):
    trainer = new_trainer(rule, tmp_path, tokens)
    x, y = trainer.data.train.x[:32], trainer.data.train.y[:32]
    phase_sets = [frozenset(p) for p in trainer.rule_hooks.epoch_passes(0)]
    trainer.train_step(x, y, 0, phase_sets[0], 0.0)  # first step: lazy state (.grad, Adam moments) is created
    with HostReads() as probe:
        for phases in phase_sets:
            trainer.train_step(x, y, 0, phases, 0.1)
    assert probe.count == 0, f"{rule}: {probe.count} host reads in one step"


def test_onehot_labels_match_torch_one_hot_without_a_host_read(tmp_path):
    from bioscale.step import forward_step

    trainer = new_trainer("sdtp", tmp_path)
    x, y = trainer.data.train.x[:50], trainer.data.train.y[:50]
    step = forward_step(trainer.model, x, y, 0, 0, frozenset({"forward"}))
    with HostReads() as probe:
        onehot = step.onehot_labels()
    assert probe.count == 0
    assert onehot.dtype == step.logits.dtype
    assert torch.equal(onehot, torch.nn.functional.one_hot(y, step.logits.shape[1]).to(onehot.dtype))


def test_label_distribution_is_the_smoothed_loss_minimiser_without_a_host_read(tmp_path):
    from bioscale.step import cross_entropy_and_grad, forward_step

    trainer = new_trainer("sdtp", tmp_path)
    x, y = trainer.data.train.x[:50], trainer.data.train.y[:50]
    plain = forward_step(trainer.model, x, y, 0, 0, frozenset({"forward"}))
    assert torch.equal(plain.label_distribution(), plain.onehot_labels())
    step = forward_step(trainer.model, x, y, 0, 0, frozenset({"forward"}), label_smoothing=0.2)
    with HostReads() as probe:
        q = step.label_distribution()
    assert probe.count == 0
    classes = step.logits.shape[1]
    torch.testing.assert_close(q, 0.8 * step.onehot_labels() + 0.2 / classes)
    # the task loss is minimal (zero gradient) exactly where softmax(logits) = q
    _, grad = cross_entropy_and_grad(q.log(), y, 0.2)
    assert grad.abs().max() < 1e-7
    _, grad_plain = cross_entropy_and_grad(q.log(), y, 0.0)
    assert grad_plain.abs().max() > 1e-3


def _color_images(n: int = 64, side: int = 32):
    """``n`` random uint8 ``side × side`` RGB images (channels last) and labels, for nets the 8x8 digits cannot feed."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, side, side, 3), generator=g, dtype=torch.uint8)
    return x, torch.arange(n) % 10


NEW_PRESETS = [
    ("bp", "lenet"),
    ("fa", "simple_vgg"),
    ("signsym", "resnet20"),
    ("dfa", "resnet18"),
    ("kp", "resnet18_small"),
]


@pytest.mark.parametrize("rule,preset", NEW_PRESETS, ids=[f"{r}-{p}" for r, p in NEW_PRESETS])
def test_a_step_on_the_new_presets_never_reads_a_value_back_to_the_host(tmp_path, rule, preset):
    from bioscale.config import build_run_config
    from bioscale.datasets import from_arrays

    x, y = _color_images()
    data = from_arrays(build_run_config(["rule=bp"]).data, x, y, x[:16], y[:16])
    trainer = new_trainer(rule, tmp_path, [f"model={preset}", "trainer.batch_size=8"], data=data)
    xb, yb = trainer.data.train.x[:8], trainer.data.train.y[:8]
    trainer.train_step(xb, yb, 0, frozenset({"forward"}), 0.0)
    with HostReads() as probe:
        trainer.train_step(xb, yb, 0, frozenset({"forward"}), 0.1)
    assert probe.count == 0, f"{rule} on {preset}: {probe.count} host reads in one step"
