"""``Run``: what observers (and the rule kit) see of a run, and nothing they could train with.

It offers three things: the rule's identity (``rule_info``), gradient probes
(``probe_gradients``) and the rule's inverse errors (``inverse_error``). Everything else an
observer needs (the run folder, the resolved config) comes as arguments of
``bioscale_run_start``. This module imports nothing from the trainer or the plugin host, so the
hook contract (``hookspecs.py``) can name ``Run`` without depending on the implementation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .credit import assign_credit, local_weight_grads
from .step import forward_step


class Run:
    """What observers see of a run (read it; it changes no weights, optimiser or RNG state).

    Built by the trainer from the parts a probe needs; ``epoch`` is a callable giving the
    number of finished epochs when a probe runs.
    """

    def __init__(
        self,
        *,
        model,
        rule_hooks,
        rule_generator: torch.Generator,
        label_smoothing: float,
        train_data,
        rule_info: dict,
        epoch: Callable[[], int],
    ):
        self._model = model
        self._rule_hooks = rule_hooks
        self._rule_generator = rule_generator
        self._label_smoothing = label_smoothing
        self._train = train_data
        self._rule_info = dict(rule_info)
        self._epoch = epoch
        self._batches: dict[int, tuple] = {}  # probe batches by size, read once

    @property
    def rule_info(self) -> dict:
        """``{"name", "distribution", "version"}`` of the active rule (a copy)."""
        return dict(self._rule_info)

    def probe_gradients(
        self, x: torch.Tensor | None = None, y: torch.Tensor | None = None, *, batch_size: int = 256
    ) -> dict:
        """The rule's and BP's gradients of every forward parameter on one batch.

        No parameter, optimiser or RNG state changes. ``x``: ``(B, *in_shape)``, ``y``: ``(B,)``;
        without them the batch is the first ``batch_size`` training examples (fewer if the split
        is smaller), un-augmented, the same rows on every call.
        :return: ``{"names": [...], "rule": [tensor|None], "exact": [tensor], "step": StepContext}``
            (``exact``: autograd's gradient of the feed-forward net's task loss, for every rule, also
            one that predicts from a settled state; ``rule``: the rule's, no grad).
        """
        if x is None or y is None:
            x, y = self._first_batch(batch_size)
        model = self._model
        names = [n for n, _ in model.named_parameters()]
        params = [p for _, p in model.named_parameters()]
        rng_state = self._rule_generator.get_state()
        try:
            step = forward_step(model, x, y, self._epoch(), -1, frozenset({"forward"}), self._label_smoothing)
            step.is_probe = True
            found = self._rule_hooks.parameter_grads(step)  # a rule that settles the net itself
            if found is not None:
                rule_grads = [found[n] for n in names]
            else:
                grads = assign_credit(self._rule_hooks, step)
                per_layer = local_weight_grads(step, grads)
                by_param = {
                    id(model.layer(l).get_parameter(n)): g
                    for l, d in enumerate(per_layer[1:], start=1)
                    for n, g in d.items()
                }
                rule_grads = [by_param.get(id(p)) for p in params]
        finally:
            self._rule_generator.set_state(rng_state)
        with torch.enable_grad():
            loss = torch.nn.functional.cross_entropy(model(x), y, label_smoothing=self._label_smoothing)
            exact = list(torch.autograd.grad(loss, params))
        return {"names": names, "rule": rule_grads, "exact": exact, "step": step}

    def inverse_error(self, step) -> dict | None:
        """The rule's ``bioscale_inverse_error`` on ``step`` (e.g. a probe's), with the rule's
        generator restored afterwards: a rule that draws noise there changes no training.
        :return: ``{layer: 0-dim tensor}`` or None (a rule without inverses)."""
        state = self._rule_generator.get_state()
        try:
            return self._rule_hooks.inverse_error(step)
        finally:
            self._rule_generator.set_state(state)

    def _first_batch(self, batch_size: int) -> tuple:
        """The first ``batch_size`` training rows ``(x, y)``, read once per size."""
        if batch_size < 1:
            raise ValueError(f"probe_gradients: batch_size must be at least 1, got {batch_size}")
        n = min(batch_size, len(self._train))
        if n not in self._batches:
            self._batches[n] = next(iter(self._train.batches(n)))
        return self._batches[n]
