"""``check_rule_contract``: what every rule must do, checked on tiny runs (the contract is
:mod:`bioscale.hookspecs`)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..config.resolve import ObserverSpec
from ..credit import assign_credit
from ..discovery import OBSERVERS_GROUP, PluginEntry
from ..markers import hookimpl
from ..step import forward_step
from ..step_modes import autocast
from .data_parallel import compare_runs, final_state, rule_ref, train_jobs
from .harness import model_weights, new_trainer, resume_trainer
from .structures import check_structures

KIT_TOKENS = ("data.limit_train=512",)  # 8 batches of 64 an epoch: the checks need behaviour, not accuracy
# 1 - cos(bf16 signal, fp32 signal) a layer may lose: bf16 products alone cost about 1e-5 (every shipped rule on
# the kit's run, AMD EPYC CPU); a target whose displacement t - h is formed in bf16 costs 1e-4 to 1e-2
MAX_BF16_ANGLE_LOSS = 1e-4
# below a max pool bf16 moves argmaxes, and BP's own signal loses up to 3e-3 there: a layer may lose this many
# times what BP loses at it on the same weights and batch (a bf16 target costs a layer above the pool 1e-2)
BP_BF16_FACTOR = 3.0


def check_rule_contract(rule, out_dir, tokens=(), data_parallel: bool = True, bf16: bool = True) -> dict:
    """Assert what every rule must do on a tiny run (512 digits, unless ``tokens`` say otherwise);
    returns the straight run's summary.

    1. two epochs train without a contract error, every layer's weights change and the
       training loss goes down;
    2. the rule state survives a checkpoint: a 2-epoch run stopped after 1 epoch and
       resumed gives exactly the weights of 2 straight epochs (on the CPU);
    3. gradient probes change nothing: the same run with a probing observer (as the
       diagnostics observer does, ``run.probe_gradients`` and ``run.inverse_error`` after every
       epoch) gives exactly the same weights;
    4. (``bf16``) an epoch under ``trainer.precision=bf16`` runs, and leaves the weights finite and
       float32 and every tensor of the rule state in the dtype it has in a float32 run; and on the
       straight run's weights each hidden layer's signal under bf16 points where its fp32 signal
       points (``1 - cos`` below ``MAX_BF16_ANGLE_LOSS``): a target's displacement formed in bf16
       cancels (see ``bioscale.rulekit.targets``); for a rule that settles the net itself, each
       parameter's gradient instead (``check_bf16_parameter_grads``);
    5. (``supports``) on a tiny net with every structure the rule declares (pooling, batch norm,
       skips) it trains and resumes exactly (``bioscale.testing.structures``);
    6. (``data_parallel``) the same two epochs in 2 processes under torchrun give the straight
       run's weights (within 1e-3: the ranks' sums add in another order) and test error. A rule
       class must then be defined at module level (its module is imported in the new processes).
    """
    out_dir, tokens = Path(out_dir), [*KIT_TOKENS, *tokens]
    if data_parallel:
        rule_ref(_worker_rule(rule))  # a class the new processes cannot import: refused before any run
    straight = new_trainer(rule, out_dir / "straight", tokens)
    before = model_weights(straight)
    summary = straight.fit()
    after = model_weights(straight)
    for name in before:
        assert not torch.equal(before[name], after[name]), f"{name} did not change in 2 epochs"
    losses = [m["train_loss"] for m in straight.history if "train_loss" in m]
    assert len(losses) >= 2 and losses[-1] < losses[0], f"training loss did not go down: {losses}"
    _check_resume(rule, out_dir, tokens, after)
    _check_probes(rule, out_dir, tokens, after)
    if bf16:
        _check_bf16(rule, out_dir, tokens, _tensor_dtypes(straight.rule_hooks.state_dict()))
        if _settles_itself(straight):
            check_bf16_parameter_grads(straight)
        else:
            check_bf16_signals(straight)
    check_structures(rule, out_dir, tokens)
    if data_parallel:
        (job,) = train_jobs([(_worker_rule(rule), tokens)], out_dir / "data_parallel", processes=2)
        compare_runs(
            final_state(out_dir / "straight"),
            final_state(job["folder"]),
            "training differs between 2 data-parallel processes and one (see bioscale.hookspecs, data parallelism)",
            atol=1e-3,
        )
    return summary


def _check_resume(rule, out_dir: Path, tokens, after: dict) -> None:
    half = new_trainer(rule, out_dir / "resumed", tokens)
    half.fit(stop_after=1)
    assert half.epoch == 1
    resumed = resume_trainer(half.run_dir, rule=None if isinstance(rule, str) else rule)
    resumed.fit()
    for name, value in model_weights(resumed).items():
        assert torch.equal(value, after[name]), f"resume is not exact: {name} differs from the straight run"


def _check_probes(rule, out_dir: Path, tokens, after: dict) -> None:
    probing = ObserverSpec(
        "kit_probe",
        PluginEntry("kit_probe", OBSERVERS_GROUP, f"{__name__}:ProbingObserver", "bioscale", "kit", entry_point=None),
        ProbingObserver,
        None,
    )
    probed = new_trainer(rule, out_dir / "probed", tokens, observers=[probing])
    probed.fit()
    assert any("kit_probes" in m for m in probed.history), "the probing observer did not run"
    for name, value in model_weights(probed).items():
        assert torch.equal(value, after[name]), (
            f"training changes with gradient probes on (as an observer makes them): {name} differs. Probes call the credit "
            f"hooks with step.is_probe True; they must not change rule state there (see bioscale.hookspecs)"
        )


def _check_bf16(rule, out_dir: Path, tokens, fp32_dtypes: dict) -> None:
    trainer = new_trainer(rule, out_dir / "bf16", [*tokens, "trainer.precision=bf16", "trainer.epochs=1"])
    summary = trainer.fit()
    assert summary["status"] == "completed", f"a bf16 epoch did not complete: {summary}"
    for name, p in trainer.model.named_parameters():
        assert p.dtype == torch.float32 and bool(torch.isfinite(p).all()), f"bf16: {name} is {p.dtype} or not finite"
    changed = {
        k: (fp32_dtypes.get(k), d)
        for k, d in _tensor_dtypes(trainer.rule_hooks.state_dict()).items()
        if fp32_dtypes.get(k, d) != d
    }
    assert not changed, (
        f"bf16: rule state tensors changed dtype (float32 run, bf16 run): {changed}. Keep the rule's "
        f"parameters and their gradients float32 (rulekit.RuleOptimizer casts them; see bioscale.hookspecs)"
    )


class ExactSignals:
    """BP's credit hooks, as ``assign_credit`` calls a rule: no target, each layer's own transpose
    (the reference of the bf16 check)."""

    def output_target(self, step):
        return None

    def layer_target(self, step, layer, target_above):
        return None

    def feedback_signal(self, step, layer, grad_above):
        return step.layer_vjp(layer, grad_above)


def bf16_angle_loss(trainer, rows: int = 256, rule=None) -> dict[int, float]:
    """``{l: 1 - cos(δh_l under bf16, δh_l in fp32)}`` for each hidden layer ``l``, on ``trainer``'s
    weights and its first ``rows`` training examples: the credit assignment as a training step runs
    it under each precision (a probe: ``step.is_probe``, no rule state changes; no grad).
    ``rule``: whose credit hooks (default the trainer's rule; :class:`ExactSignals` for BP's)."""
    x, y = (t.to(trainer.device) for t in next(iter(trainer.data.train.batches(rows))))  # unshuffled: the first rows
    signals = {}
    for precision in ("fp32", "bf16"):
        with autocast(trainer.device, precision):
            step = forward_step(trainer.model, x, y, 0, 0, frozenset({"forward"}), trainer.label_smoothing)
            step.is_probe = True
            trace: dict = {}
            assign_credit(trainer.rule_hooks if rule is None else rule, step, trace)
        signals[precision] = {l: s.double().flatten() for l, s in trace.get("signals", {}).items()}
    fp32, bf16 = signals["fp32"], signals["bf16"]
    return {l: _angle_loss(fp32[l], bf16[l]) for l in sorted(fp32)}


def _angle_loss(a: torch.Tensor, b: torch.Tensor) -> float:
    """``1 - cos(a, b)`` of two flat tensors; 0 when both are zero (a layer the rule leaves alone)."""
    if not a.any() and not b.any():
        return 0.0
    return 1.0 - torch.nn.functional.cosine_similarity(a, b, dim=0).item()


def check_bf16_signals(trainer) -> None:
    """Assert each hidden layer's bf16 signal on ``trainer``'s weights points where its fp32 one does:
    ``1 - cos`` below ``MAX_BF16_ANGLE_LOSS``, or below ``BP_BF16_FACTOR`` times BP's own at that layer
    where bf16 moves BP's signal more (below a max pool)."""
    loss = bf16_angle_loss(trainer)
    exact = bf16_angle_loss(trainer, rule=ExactSignals())
    limit = {l: max(MAX_BF16_ANGLE_LOSS, BP_BF16_FACTOR * exact.get(l, 0.0)) for l in loss}
    bad = {l: f"{v:.1e} (limit {limit[l]:.1e})" for l, v in loss.items() if not v < limit[l]}
    assert not bad, (
        f"bf16: the signal of these hidden layers points elsewhere than in fp32 (1 - cos, limit "
        f"{MAX_BF16_ANGLE_LOSS:g} or {BP_BF16_FACTOR:g} x BP's own): {bad}. Form a target's displacement t - h in "
        f"float32 and return the target in float32 (bioscale.rulekit.targets; see bioscale.hookspecs, bf16)"
    )


def _settles_itself(trainer) -> bool:
    """Whether the rule answers ``bioscale_parameter_grads`` on a probe of the first rows (implementing
    it and answering None leaves the credit assignment, and the signal checks, to the core)."""
    if not trainer.rule_hooks.settles_itself:
        return False
    x, y = (t.to(trainer.device) for t in next(iter(trainer.data.train.batches(64))))
    step = forward_step(trainer.model, x, y, 0, -1, frozenset({"forward"}), trainer.label_smoothing)
    step.is_probe = True
    return trainer.rule_hooks.parameter_grads(step) is not None


def check_bf16_parameter_grads(trainer, rows: int = 256) -> None:
    """For a rule that settles the net itself (``bioscale_parameter_grads``): each parameter's gradient
    under bf16 points where its fp32 one does, ``1 - cos`` below ``MAX_BF16_ANGLE_LOSS`` or ``BP_BF16_FACTOR``
    times autograd's own bf16 loss on that parameter (``run.probe_gradients`` on the first ``rows``)."""
    x, y = (t.to(trainer.device) for t in next(iter(trainer.data.train.batches(rows))))
    found = {}
    for precision in ("fp32", "bf16"):
        with autocast(trainer.device, precision):
            probe = trainer.probe_gradients(x, y)
        found[precision] = probe
    names = found["fp32"]["names"]
    bad = {}
    for i, name in enumerate(names):
        mine = _angle_loss(found["fp32"]["rule"][i].double().flatten(), found["bf16"]["rule"][i].double().flatten())
        ref = _angle_loss(found["fp32"]["exact"][i].double().flatten(), found["bf16"]["exact"][i].double().flatten())
        limit = max(MAX_BF16_ANGLE_LOSS, BP_BF16_FACTOR * ref)
        if not mine < limit:
            bad[name] = f"{mine:.1e} (limit {limit:.1e})"
    assert not bad, (
        f"bf16: the gradients of these parameters point elsewhere than in fp32 (1 - cos): {bad}. Settle in float32 "
        f"where the states' differences carry the update (bioscale.rulekit.targets.float32_maths)"
    )


def _tensor_dtypes(state, prefix: str = "") -> dict:
    """``{path: dtype}`` of every tensor in a nested rule state."""
    if isinstance(state, torch.Tensor):
        return {prefix: state.dtype}
    items = state.items() if isinstance(state, dict) else enumerate(state) if isinstance(state, (list, tuple)) else ()
    return {k: v for key, value in items for k, v in _tensor_dtypes(value, f"{prefix}/{key}").items()}


def _worker_rule(rule):
    """``rule`` as the data-parallel worker takes it: an installed name or a class."""
    if isinstance(rule, PluginEntry):
        return rule.name if rule.entry_point is not None else rule.load()
    return rule


class ProbingObserver:
    """Probes a run as the diagnostics observer does, after every epoch: the rule's gradients on a
    fixed batch (``run.probe_gradients``) and its inverse errors (``run.inverse_error``)."""

    @hookimpl
    def bioscale_epoch_end(self, run, epoch, metrics):
        probe = run.probe_gradients(batch_size=32)
        run.inverse_error(probe["step"])
        return {"kit_probes": len(probe["names"])}
