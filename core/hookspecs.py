"""The rule contract: what a learning rule (and an observer) offers bioscale. Read this first.

A rule
======
A rule is a class named by an entry point of the group ``bioscale.rules`` (its name there is
the rule's name, ``rule=<name>``). The class offers:

* ``Config``: a dataclass subclassing :class:`bioscale.RuleConfig` (which holds the forward
  ``optimizer`` and ``output_lr_scale``); the user sets it as ``rules.<name>.<key>=value``.
  A field with a range declares it with ``bioscale.config.bounded(default, low=..., high=...)``;
  the core checks every range before any work starts.
* ``recipes`` (optional): ``{model preset: overrides}`` for the presets the rule was tuned on,
  and ``{"<preset>:<key>=<value>": overrides}`` applied on top when the config has that value.
* ``paper_row`` (optional): the rule's row label in the paper's tables
  (``core/paper_results.json``, e.g. ``"DTP parallel"``): a string, or a function of the
  resolved config object; None or absent: no paper row. ``paper_variants`` (optional): the
  settings (relative to its section) of each of its rows, e.g. one per schedule; default one
  row with its defaults. ``bioscale reproduce`` trains one cell per variant and net.
* ``supports`` (optional): the structures beyond a plain chain the rule can train, a subset of
  ``{"pooling", "batchnorm", "skip"}`` (ARCHITECTURE.md, "The network"); absent: plain chains
  only. A net with a structure the rule lacks is refused at config, exit 2, before any data.
* ``search_space`` (optional): ``{key relative to its section: spec}`` for ``bioscale sweep``
  (``"loguniform:1e-5:3e-4"``, ``"uniform:A:B"``, ``"int:A:B"``, ``"choice:A,B"``).
* ``__init__(self, config)`` with the ``Config`` instance. It may refuse a value of its own
  config by raising :class:`bioscale.errors.ConfigError` with a message relative to its
  section (``"aux_activation: unknown activation 'swish'"``): the core puts ``rules.<name>.``
  in front and exits with status 2 before any data is read. Any other exception is reported
  as a broken plugin.
* methods decorated with :data:`bioscale.hookimpl`, named after the hooks below. A rule
  implements only the hooks it needs; it must answer one of the two credit hooks
  (``bioscale_layer_target`` or ``bioscale_feedback_signal``) for every hidden layer.

What a rule may do: read the step's tensors, call ``step.layer_vjp`` (one layer of BP), own
and update its own state (feedback weights, inverses, their optimiser, noise drawn from the
generator it is given). What it may not: change forward weights, step the forward optimiser,
touch the global RNG, write files, sync to the host inside a step.

Conventions
===========
* ``B`` is the batch size; ``L`` the number of layers; layers are numbered ``1..L``.
  Layer ``l`` computes ``a_l = op_l(h_{l-1})`` and ``h_l = σ_l(a_l)`` with ``h_0 = x`` and
  ``h_L`` the logits. ``shape(h_l) = (B, *model.layers[l-1].out_shape)``; for fully connected
  layers that is ``(B, width)``, for convolutional and locally connected ones ``(B, C, H, W)``.
  On nets with pooling, batch norm or skips (for rules that declare ``supports``) layer ``l``
  reads ``h_{s(l)}`` (``step.model.source(l)``, ``l - 1`` in a chain) and its post part (batch
  norm, skip addition, ``σ_l``, pooling) maps ``a_l`` to ``h_l``; ``step.activation_backward``
  moves a signal from ``h_l`` to ``a_l`` through all of it. ``bioscale_feedback_signal(step, l,
  ·)`` returns the signal for ``h_{s(l)}``; where several layers read one ``h_k``
  (``model.consumers(k)``) the core adds their signals and the skips'. A rule setting up
  per-layer feedback for hidden layers ``layers`` builds it for ``rulekit.consumers_of(model,
  layers)`` (``[k + 1 for k in layers]`` in a chain). Targets are for chains only.
* ``step`` is a :class:`bioscale.step.StepContext`. Its activations ``step.h[l]`` and
  pre-activations ``step.a[l]`` are *detached*: a rule cannot back-propagate through the
  network by accident. ``step.a[l]`` is formed again on a rule's first read of it where the
  forward did not keep it (it keeps what its backward needs, as autograd would): same value.
* Grad mode: the credit hooks (output target, layer target, feedback signal) run under
  ``torch.no_grad()``; ``bioscale_update_inverse`` runs with grad enabled so that a rule may
  train its feedback parameters with autograd.
* Gradient probes: ``run.probe_gradients`` (the diagnostics observer, once per epoch) calls the
  credit hooks outside training on a fixed batch, with ``step.is_probe`` True (and
  ``step.index == -1``). There they must not change rule state (the trainer restores the
  rule's generator afterwards; ``bioscale.testing.check_rule_contract`` fails a rule whose
  training changes with the diagnostics observer on). Probes never call
  ``bioscale_update_inverse`` or ``bioscale_after_forward_grads``: update state there.
* ``bioscale_setup``, ``bioscale_load_state_dict`` and ``bioscale_after_forward_grads`` return
  None (they are not ``firstresult``).
* Rule hooks are implemented by the single active rule; an observer implementing one is
  rejected when the run starts. Hooks that return a value are ``firstresult``.
* Every tensor a rule returns is checked for shape, dtype and device; a mismatch raises
  :class:`bioscale.errors.RuleContractError` naming the rule, its distribution and version,
  the hook and the layer. Under ``trainer.precision=bf16`` the step runs inside
  ``torch.autocast``: activations are bf16 and a rule's products mix bf16 and float32, so a
  returned floating-point tensor of another floating dtype is accepted and cast to the
  activation's dtype (its shape and device are still checked); a *target* is cast to (kept in)
  float32 instead, see the bf16 duty below.

Duties of a rule with state of its own
======================================
A rule that trains parameters, draws noise or keeps a generator must keep these; the kit's
objects (``bioscale.rulekit``) keep most of them for a rule that uses them:

* Data parallelism (``torchrun``): every rank holds the same rule state and sees its share
  ``step.rows`` of a global batch. Gradients of the rule's own parameters are written as means
  over this rank's rows and must be reduced to the global batch's mean before an optimiser
  step: :class:`bioscale.rulekit.RuleOptimizer` does it in ``step(step)`` (``reduce=False``
  opts out, for gradients that already are the global batch's, like Kolen-Pollack's
  ``B.grad = W.grad``); a rule with an optimiser of its own calls ``step.reduce_gradients``.
  Per-sample noise must be what one process draws: ``NoiseSource.perturb`` inside
  ``with noise.drawing(step):`` draws for the global batch and keeps this rank's rows
  (``normal_like`` / ``uniform_like`` only for draws whose shape does not depend on the rows).
  State drawn from any per-rank source must be documented by the rule.
* bf16 (``trainer.precision=bf16``): hooks run under autocast, so products are bf16. The rule's
  parameters, their gradients and optimiser state stay float32: ``RuleOptimizer.set_grad``
  writes a bf16 product into a float32 ``.grad``; a rule state tensor must keep the dtype it
  has in a float32 run. A target ``t`` carries its signal in ``t - h``, often below bf16's
  spacing near ``|h|`` (2⁻⁹ to 2⁻⁸ for ``|h|`` in [0.25, 1)): form every difference in a target
  in float32 and return it float32 (``bioscale.rulekit.targets``: ``float32_maths``,
  ``step_target``, ``difference_target``, ``output_step_target``); the core forms ``h - t`` in
  float32. ``check_rule_contract`` fails a rule whose bf16 signals point elsewhere than its fp32 ones.
* Probes: credit hooks (and ``bioscale_inverse_error``) called with ``step.is_probe`` change no
  state. Draws there go inside ``with noise.drawing(step):``, which puts the rule's CPU and
  device generators back as they were on a probe step.
* Composite rules (``uses_rules(config) -> [names]``, e.g. ``mix``): built as
  ``cls(config, {name: RuleHooks})``; they call the inner rules' hooks through those facades and
  pass each its ``layers`` in ``bioscale_setup``.

``bioscale.testing.check_rule_contract(MyRule, tmp_path)`` checks a rule against this contract:
a straight run, exact resume, probes that change nothing, a bf16 epoch with its signals against
fp32's, and 2 data-parallel processes against one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .markers import hookspec

if TYPE_CHECKING:
    from pathlib import Path

    import torch

    from .architectures import Network
    from .run import Run
    from .step import StepContext

# --------------------------------------------------------------------------------------
# Rule hooks
# --------------------------------------------------------------------------------------


@hookspec
def bioscale_setup(model: Network, generator: torch.Generator, layers: tuple) -> None:
    """Create the rule's state for ``model``.

    Called once per run, after the model is built and before training starts or a
    checkpoint is loaded (so loading can overwrite what is created here).

    :param model: the :class:`bioscale.architectures.Network` being trained (on its device).
    :param generator: a ``torch.Generator`` on the CPU seeded from the run's seed, owned by
        the rule from now on (saved in the checkpoint by the trainer). Draw every random
        feedback matrix and every noise sample from it, never from the global RNG.
    :param layers: the hidden layers ``k`` (in ``1..L-1``) whose training signal this rule
        gives, i.e. the calls of the credit hooks with ``layer = k + 1`` it answers (on nets with
        skips: each ``layer`` in ``rulekit.consumers_of(model, layers)``): every hidden
        layer in a plain run, a subset under a composite rule (``rule=mix``). A rule builds
        what those need (e.g. the feedback or inverse of each layer ``k + 1``); one that ignores
        the argument (a hook implementation may leave it out) still works, building state for all.
    """


@hookspec(firstresult=True)
def bioscale_epoch_passes(epoch: int) -> Iterable[set] | None:
    """Which passes over the training data epoch ``epoch`` (0-based) makes.

    :return: a list of phase sets, one per pass, each a subset of ``{"forward", "inverse"}``
        and not empty. ``[{"forward"}]`` (the default when no rule answers) trains the forward
        weights; ``[{"forward", "inverse"}]`` is the *parallel* schedule (both updates every
        batch, inverse first); ``[{"inverse"}, {"forward"}]`` the *alternating* schedule (a
        whole sweep of inverse updates, then a whole sweep of forward updates).
    """


@hookspec(firstresult=True)
def bioscale_output_target(step: StepContext) -> torch.Tensor | None:
    """Target for the output ``h_L`` that target-propagation rules pass down.

    Called once per forward-phase step (and per probe), before the layer loop. The output
    layer itself is always trained on the task loss (its gradient is ``step.output_grad``).

    :return: tensor shaped like ``step.h[L]`` (B, classes), or None (no output target); under bf16
        float32 (the core casts another floating dtype to float32, too late to keep ``t - h``). Or a
        ``bioscale.LayerTarget(target or None, input)``: the output layer is then trained on the task
        loss at the logits it gives for ``input`` (shaped like ``step.h[L-1]``; float32 under bf16) in
        place of its forward input (predictive coding's settled state); ``target`` goes on as
        ``target_above``.
    """


@hookspec(firstresult=True)
def bioscale_layer_target(step: StepContext, layer: int, target_above: torch.Tensor | None) -> torch.Tensor | None:
    """Target ``ĥ_{layer-1}`` for the input of layer ``layer``.

    Called for ``layer = L, L-1, ..., 2`` (top-down). If it returns a tensor the trainer
    trains layer ``layer-1`` on the local loss ``mean_b ||h_{layer-1} - ĥ_{layer-1}||²``,
    i.e. sends it the signal ``δh = 2 (h - ĥ) / B``, and ``bioscale_feedback_signal`` is not
    called for this layer.

    :param layer: int in ``2..L``.
    :param target_above: the target of ``h_layer`` (from the previous call, or from
        ``bioscale_output_target`` when ``layer == L``), or None if that layer had none.
    :return: tensor shaped like ``step.h[layer-1]``, or None; under bf16 float32, every
        difference in it formed in float32 (``target_above`` is float32 then, too). Or a
        ``bioscale.LayerTarget(target, input)`` (chains only): layer ``layer-1`` is run again on
        ``input`` (shaped like its forward input ``step.h[layer-2]``; float32, run with autocast off)
        and trained there: ``δh = 2 (f(input) - ĥ) / B``, ``σ'`` at that evaluation, its weight
        gradient with ``input`` (predictive coding's settled states; ARCHITECTURE.md, "Energy-based
        rules"). ``target_above`` of the next call is the target alone.

    On a pooled layer ``h_layer`` (and so ``target_above``) is the pooled output; an inverse that
    undoes the pooling does so at the clean forward's evaluation: its max-pooling indices are
    ``step.post[layer][1]`` (``rulekit.targets.pool_context``; ``step.post[layer]`` is None for a
    layer without post part). A rule that supports pooling declares ``supports`` (see
    ``bioscale.config.structures``).
    """


@hookspec(firstresult=True)
def bioscale_feedback_signal(step: StepContext, layer: int, grad_above: torch.Tensor) -> torch.Tensor | None:
    """Signal ``δh_{layer-1}`` (a gradient-like quantity) that layer ``layer-1`` receives.

    Called for ``layer = L, ..., 2`` whenever ``bioscale_layer_target`` returned None. BP
    answers ``step.layer_vjp(layer, grad_above)``; FA the same with a fixed random weight;
    DFA a random projection of ``step.output_grad``.

    :param grad_above: signal at the pre-activation of layer ``layer``,
        shape ``(B, *out_shape of layer)``; for ``layer == L`` it is ``step.output_grad``.
    :return: tensor shaped like ``step.h[layer-1]``. None from both credit hooks is a
        contract error.
    """


@hookspec
def bioscale_after_forward_grads(step: StepContext, grads: list) -> None:
    """The forward gradients of this step are written; the forward optimiser steps next.

    Called on every forward-phase training step (never on gradient probes), under
    ``torch.no_grad()``, after every forward ``.grad`` holds this step's local gradient
    (averaged over data-parallel ranks) and before the forward optimiser's step. A rule that
    trains parameters of its own from the forward pass (Kolen-Pollack's ``B_l`` from
    ``W_l``'s gradient, weight mirrors) writes their gradients and steps its own optimiser
    here; :class:`bioscale.rulekit.RuleOptimizer` follows the run's learning-rate schedule and
    reduces the gradients over data-parallel ranks (``reduce=False`` for gradients that are
    already the global batch's, as the forward ``.grad`` are).

    :param grads: ``[None, δa_1, ..., δa_L]``, the signal at each layer's pre-activation,
        shape ``(B, *op.out_shape of layer l)``; ``step.h[l-1]`` is layer ``l``'s input, and
        ``step.model.ops[l-1]``'s parameters hold their ``.grad``. Read them; do not change them.
        Take this argument only if the rule reads it or ``step.h`` / ``step.a`` here (pluggy passes
        the arguments an implementation names): then the step keeps every signal and forward tensor
        to this point. Without it (KP and weight mirrors read only ``.grad`` and their own state) the
        credit assignment lets each layer's signal and tensors go once it has passed the layer, as
        autograd frees saved tensors, and here ``step.h`` holds only ``x`` and the logits. A rule that
        takes it but does not read it on a given run (a composite that passes it on) sets the attribute
        ``reads_step_after_credit = False`` on its object.
    """


@hookspec(firstresult=True)
def bioscale_parameter_grads(step: StepContext) -> dict | None:
    """Every forward parameter's gradient, from a rule that settles the network itself (EP).

    Called on every forward-phase training step and every gradient probe in place of the
    layer-by-layer credit assignment: when it answers, no target or feedback hook is called for
    the step. Runs under ``torch.no_grad()`` (and under autocast in bf16 runs: settle in float32
    where precision matters, ``rulekit.targets.float32_maths``); no host read.

    :return: ``{name: gradient}`` for every name of ``step.model.named_parameters()``, each shaped
        and placed like its parameter, float32: the gradient of the task loss as a mean over this
        rank's rows (the core writes them into ``.grad``, averages them over data-parallel ranks and
        steps the forward optimiser), or None to let the core assign credit. The rule may set
        ``step.h[L]`` ``(B, classes)`` to the logits its settled state gives and ``step.loss`` (0-dim)
        to their task loss: the training error and loss count them. In a probe (``step.is_probe``) it
        must change no rule state.
    """


@hookspec(firstresult=True)
def bioscale_predict(model: Network, x: torch.Tensor) -> torch.Tensor | None:
    """The logits ``(B, classes)`` the rule's network gives for ``x`` ``(B, *in_shape)`` in
    evaluation (test and validation splits), under no_grad and the run's autocast, the model in
    eval mode; None for ``model(x)``. EP answers with the free phase's settled readout."""


@hookspec(firstresult=True)
def bioscale_update_inverse(step: StepContext) -> dict | None:
    """Train the rule's feedback (inverse) models on this batch.

    Called on every step of a pass whose phases contain ``"inverse"``, before the forward
    credit assignment of the same step. Runs with grad enabled; the rule owns the
    optimiser of its inverse parameters and must not change forward weights. Its gradients
    are means over this rank's rows: reduce them before stepping (``RuleOptimizer.step`` does),
    keep them float32 under bf16 (``RuleOptimizer.set_grad``), and draw per-sample noise inside
    ``with noise.drawing(step):`` (see "Duties of a rule with state of its own").

    An inverse of a pooled layer reconstructs through the transpose of the pooling at the
    evaluation it inverts: a noisy forward's own max-pooling indices (``Layer.train_forward``
    returns them, or ``Pool.train_forward``), ``step.post[l][1]`` for the clean ``h_l``
    (``rulekit.LayerInverse(op, ..., pool=layer.pool)`` takes them as ``ctx``).

    :return: dict ``{layer: 0-dim tensor}`` of inverse losses (not synced to the host), or None.
    """


@hookspec(firstresult=True)
def bioscale_inverse_error(step: StepContext) -> dict | None:
    """Reconstruction error of each inverse on this batch, with no update (diagnostics only,
    through ``run.inverse_error``, which restores the rule's CPU generator afterwards; draws
    inside ``with noise.drawing(step, restore=True):`` leave a device generator as it was too).
    A pooled layer's inverse reads the clean ``h_l`` with the clean forward's pooling context.

    :return: dict ``{layer: 0-dim tensor}`` (mean squared error per unit), or None when
        the rule has no inverses.
    """


@hookspec(firstresult=True)
def bioscale_state_dict() -> dict | None:
    """The rule's state for a checkpoint: a dict of tensors, numbers, strings, lists and dicts
    (optimiser ``state_dict()`` results are fine). No pickled objects. None = stateless."""


@hookspec
def bioscale_load_state_dict(state: dict) -> None:
    """Restore what ``bioscale_state_dict`` returned. Raise ``ValueError`` or ``KeyError`` on
    a mismatch; the trainer reports it as a checkpoint error."""


# --------------------------------------------------------------------------------------
# Observer hooks (collect-all)
# --------------------------------------------------------------------------------------


@hookspec
def bioscale_run_start(run: Run, run_dir: Path, config: dict) -> None:
    """A run starts (or resumes). ``run`` is a :class:`bioscale.run.Run`: ``run.rule_info``,
    ``run.probe_gradients`` and ``run.inverse_error`` (the same object reaches every observer
    hook). ``run_dir``: the run folder (observers may write their own files in it). ``config``:
    a copy of what ``config.yaml`` holds (the resolved config, ``rules``, ``run_info`` with its
    ``sittings``). An implementation may take any subset of these arguments."""


@hookspec
def bioscale_step_end(run: Run, step: StepContext) -> None:
    """A training step ended. Called every step: keep it cheap, never sync to the host. While an
    observer implements it, the step's tensors (``step.h``, ``step.a``, the signals) are kept to here
    for it to read; without one, the credit assignment lets each layer's go as it passes the layer."""


@hookspec
def bioscale_epoch_end(run: Run, epoch: int, metrics: dict) -> dict | None:
    """An epoch ended and was evaluated.

    :param epoch: 1-based number of the finished epoch.
    :param metrics: dict about to be written to ``metrics.jsonl`` (read it, do not mutate it),
        with the extras of the observers called before this one (observers run in name order).
    :return: a dict of extra JSON-serialisable metrics (merged into the line), or None.
    An observer may end the run here on purpose by raising :class:`bioscale.errors.StopRun`
    (the epoch is committed, then the run ends; its summary says the status, e.g. ``pruned``).
    """


@hookspec
def bioscale_run_end(run: Run, summary: dict) -> None:
    """The run ended, however it ended; ``summary`` is what was written to ``summary.json``,
    ``summary["status"]`` one of ``completed``, ``paused`` (``stop_after``), ``diverged``,
    ``interrupted``, ``failed`` (with ``summary["error"]``), or an observer's stop status
    (``StopRun``: e.g. ``stopped``, a sweep's ``pruned``)."""


RULE_HOOKS = (
    "bioscale_setup",
    "bioscale_epoch_passes",
    "bioscale_output_target",
    "bioscale_layer_target",
    "bioscale_feedback_signal",
    "bioscale_update_inverse",
    "bioscale_after_forward_grads",
    "bioscale_parameter_grads",
    "bioscale_predict",
    "bioscale_inverse_error",
    "bioscale_state_dict",
    "bioscale_load_state_dict",
)
OBSERVER_HOOKS = ("bioscale_run_start", "bioscale_step_end", "bioscale_epoch_end", "bioscale_run_end")
