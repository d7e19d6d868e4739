"""The hooks of bioscale: what a learning rule and an observer may implement.

Conventions used in every spec below.

* ``B`` is the batch size; ``L`` the number of layers; layers are numbered ``1..L``.
  Layer ``l`` computes ``a_l = op_l(h_{l-1})`` and ``h_l = σ_l(a_l)`` with ``h_0 = x`` and
  ``h_L`` the logits. ``shape(h_l) = (B, *model.layers[l-1].out_shape)``; for fully connected
  layers that is ``(B, width)``, for convolutional and locally connected ones ``(B, C, H, W)``.
* ``step`` is a :class:`bioscale.step.StepContext`. Its activations ``step.h[l]`` and
  pre-activations ``step.a[l]`` are *detached* (``requires_grad=False``): a rule cannot
  back-propagate through the network by accident. BP for one layer is
  ``step.layer_vjp(l, grad_a)``.
* Grad mode: the trainer calls the credit hooks (output target, layer target, feedback
  signal) under ``torch.no_grad()``; tensors returned by them are detached anyway.
  ``bioscale_update_inverse`` runs with grad enabled so that the rule can train its own
  feedback parameters with autograd.
* Rule hooks are implemented by the single active rule; an observer that implements one is
  rejected when the run starts. All rule hooks are ``firstresult``: the first non-None result
  is used. Observer hooks are collect-all.
* Every tensor a rule returns is checked by the trainer for shape, dtype and device; a
  mismatch raises :class:`bioscale.errors.RuleContractError` naming the rule, its
  distribution and version, the hook and the layer.
"""

from __future__ import annotations

from .markers import hookspec

# --------------------------------------------------------------------------------------
# Rule hooks
# --------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def bioscale_setup(model, generator):
    """Create the rule's state for ``model``.

    Called once per run, after the model is built and before training starts or a
    checkpoint is loaded (so loading can overwrite what is created here).

    :param model: the :class:`bioscale.architectures.Network` being trained (on its device).
    :param generator: a ``torch.Generator`` on the CPU seeded from the run's seed, owned by
        the rule from now on (saved in the checkpoint by the trainer). Draw every random
        feedback matrix and every noise sample from it, never from the global RNG.
    :return: None.
    """


@hookspec(firstresult=True)
def bioscale_epoch_passes(epoch):
    """Which passes over the training data epoch ``epoch`` (0-based) makes.

    :return: a list of phase sets, one per pass, each a subset of ``{"forward", "inverse"}``
        and not empty. ``[{"forward"}]`` (the default when no rule answers) trains the forward
        weights; ``[{"forward", "inverse"}]`` is the *parallel* schedule (both updates every
        batch, inverse first); ``[{"inverse"}, {"forward"}]`` the *alternating* schedule (a
        whole sweep of inverse updates, then a whole sweep of forward updates).
    """


@hookspec(firstresult=True)
def bioscale_output_target(step):
    """Target for the output ``h_L`` that target-propagation rules pass down.

    Called once per forward-phase step, before the layer loop. The output layer itself is
    always trained on the task loss (its gradient is ``step.output_grad``).

    :return: tensor shaped like ``step.h[L]`` (B, classes), or None (no output target).
    """


@hookspec(firstresult=True)
def bioscale_layer_target(step, layer, target_above):
    """Target ``ĥ_{layer-1}`` for the input of layer ``layer``.

    Called for ``layer = L, L-1, ..., 2`` (top-down). If it returns a tensor the trainer
    trains layer ``layer-1`` on the local loss ``mean_b ||h_{layer-1} - ĥ_{layer-1}||²``,
    i.e. sends it the signal ``δh = 2 (h - ĥ) / B``, and ``bioscale_feedback_signal`` is not
    called for this layer.

    :param layer: int in ``2..L``.
    :param target_above: the target of ``h_layer`` (from the previous call, or from
        ``bioscale_output_target`` when ``layer == L``), or None if that layer had none.
    :return: tensor shaped like ``step.h[layer-1]``, or None.
    """


@hookspec(firstresult=True)
def bioscale_feedback_signal(step, layer, grad_above):
    """Signal ``δh_{layer-1}`` (a gradient-like quantity) that layer ``layer-1`` receives.

    Called for ``layer = L, ..., 2`` whenever ``bioscale_layer_target`` returned None. BP
    answers ``step.layer_vjp(layer, grad_above)``; FA the same with a fixed random weight;
    DFA a random projection of ``step.output_grad``.

    :param grad_above: signal at the pre-activation of layer ``layer``,
        shape ``(B, *out_shape of layer)``; for ``layer == L`` it is ``step.output_grad``.
    :return: tensor shaped like ``step.h[layer-1]``. A rule must answer one of the two
        credit hooks for every layer; None from both is a contract error.
    """


@hookspec(firstresult=True)
def bioscale_update_inverse(step):
    """Train the rule's feedback (inverse) models on this batch.

    Called on every step of a pass whose phases contain ``"inverse"``, before the forward
    credit assignment of the same step. Runs with grad enabled; the rule owns the
    optimiser of its inverse parameters and must not change forward weights.

    :return: dict ``{layer: 0-dim tensor}`` of inverse losses (not synced to the host), or None.
    """


@hookspec(firstresult=True)
def bioscale_inverse_error(step):
    """Reconstruction error of each inverse on this batch, with no update (diagnostics).

    :return: dict ``{layer: 0-dim tensor}`` (mean squared error per unit), or None when
        the rule has no inverses.
    """


@hookspec(firstresult=True)
def bioscale_state_dict():
    """The rule's state for a checkpoint: a dict of tensors, numbers, strings, lists and dicts
    (optimiser ``state_dict()`` results are fine). No pickled objects. None = stateless."""


@hookspec(firstresult=True)
def bioscale_load_state_dict(state):
    """Restore what ``bioscale_state_dict`` returned. Raise ``ValueError`` or ``KeyError`` on
    a mismatch; the trainer reports it as a checkpoint error.

    :return: True (or any non-None value) once loaded.
    """


# --------------------------------------------------------------------------------------
# Observer hooks (collect-all)
# --------------------------------------------------------------------------------------


@hookspec
def bioscale_run_start(run):
    """A run starts (or resumes). ``run`` is a :class:`bioscale.trainer.Run`: config, model,
    run folder, data, and ``run.probe_gradients``. No return value."""


@hookspec
def bioscale_step_end(run, step):
    """A training step ended. Called every step: keep it cheap, never sync to the host."""


@hookspec
def bioscale_epoch_end(run, epoch, metrics):
    """An epoch ended and was evaluated.

    :param epoch: 1-based number of the finished epoch.
    :param metrics: dict about to be written to ``metrics.jsonl`` (read it, do not mutate it).
    :return: a dict of extra JSON-serialisable metrics (merged into the line), or None.
    """


@hookspec
def bioscale_run_end(run, summary):
    """The run finished; ``summary`` is what was written to ``summary.json``."""


RULE_HOOKS = (
    "bioscale_setup",
    "bioscale_epoch_passes",
    "bioscale_output_target",
    "bioscale_layer_target",
    "bioscale_feedback_signal",
    "bioscale_update_inverse",
    "bioscale_inverse_error",
    "bioscale_state_dict",
    "bioscale_load_state_dict",
)
OBSERVER_HOOKS = ("bioscale_run_start", "bioscale_step_end", "bioscale_epoch_end", "bioscale_run_end")
