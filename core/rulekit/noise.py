"""Gaussian noise for rules, drawn from the rule's own generator on the data's device.

On the CPU the rule's generator (checkpointed by the trainer) is used directly; on an
accelerator a device generator seeded from it is used (its state is part of the rule
state), so noise never needs a host-to-device copy and never touches the global RNG.

``shared=True``: ``perturb`` draws one standard-normal ``ε`` ``(B, ...)`` per step (until
``clear_shared``) for each input shape and reuses it for every input of that shape in the
step, each time with fresh random signs per sample ``s_b = ±1`` (``B`` draws, not ``B·n``),
scaled by the caller's std: ``std · s_b · ε_b``. Each caller's noise is still i.i.d.
``N(0, std²)`` over elements, samples and steps (a sign flip of a symmetric normal vector
independent of the sign is normal); two callers' noise in one step is uncorrelated
(``E[s_b s'_b] = 0``) though not independent (equal magnitudes). ``shared=False``: a fresh
draw per call. No grad (plain tensor arithmetic).

Data-parallel runs: after ``begin(step)`` every draw is made for the step's whole global batch
(``step.global_batch_size`` rows) and this rank keeps its ``step.rows``: each rank draws what one
process would draw and uses its own samples' share, so the generators stay equal on every rank
and the run is the one-process run (at ``W`` times the drawing work for ``W`` ranks).

Gradient probes: draws made inside ``with noise.drawing(step):`` on a probe step
(``step.is_probe``) leave the generators as they were (the device one included), so probing
does not change training. Draw per-sample noise inside it with ``perturb`` (global-batch
aware); ``normal_like`` / ``uniform_like`` draw for this rank's tensor alone: use them only for
noise whose shape does not depend on the rows (weight-shaped draws).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


class NoiseSource:
    def __init__(self, generator: torch.Generator, device, shared: bool = False):
        self.generator = generator
        self.device = torch.device(device)
        self.device_generator = None
        self.shared = shared
        self._drawn: dict = {}  # (shape, dtype) -> this step's standard-normal ε
        self._rows: slice | None = None  # this rank's rows of a global batch (None: all rows)
        self._global_rows = 0
        if self.device.type != "cpu":
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            self.device_generator = torch.Generator(device=self.device).manual_seed(seed)

    def normal_like(self, t: torch.Tensor, std: float) -> torch.Tensor:
        """``N(0, std²)`` noise shaped like ``t`` (same dtype and device)."""
        return torch.empty(t.shape, device=t.device, dtype=t.dtype).normal_(
            0.0, std, generator=self._generator(t.device)
        )

    def uniform_like(self, t: torch.Tensor, low: float, high: float) -> torch.Tensor:
        """``U(low, high)`` numbers shaped like ``t`` (same dtype and device)."""
        return torch.empty(t.shape, device=t.device, dtype=t.dtype).uniform_(
            low, high, generator=self._generator(t.device)
        )

    def _generator(self, device: torch.device) -> torch.Generator:
        """The rule's CPU generator for CPU tensors, the seeded device generator otherwise."""
        if device.type == "cpu":
            return self.generator
        assert self.device_generator is not None  # made in __init__ for a non-CPU device
        return self.device_generator

    def begin(self, step) -> None:
        """Start a step: forget the shared draws and take the step's share of its global batch."""
        self._drawn.clear()
        whole = step.rows.start == 0 and step.rows.stop == step.global_batch_size
        self._rows, self._global_rows = (None, 0) if whole else (step.rows, step.global_batch_size)

    def _draw(self, shape, like: torch.Tensor, batch_dim: int, fill) -> torch.Tensor:
        """``fill(empty tensor)`` for ``shape``; under a data-parallel share drawn for the global
        batch along ``batch_dim`` and cut to this rank's rows."""
        if self._rows is None:
            return fill(torch.empty(shape, device=like.device, dtype=like.dtype))
        full = list(shape)
        full[batch_dim] = self._global_rows
        drawn = fill(torch.empty(full, device=like.device, dtype=like.dtype))
        return drawn.narrow(batch_dim, self._rows.start, self._rows.stop - self._rows.start)

    @contextmanager
    def drawing(self, step, restore: bool | None = None):
        """The draws of one step: ``begin(step)`` on entry, ``clear_shared()`` on exit; with
        ``restore`` (default: ``step.is_probe``) the CPU and device generators are put back as
        they were on entry, so the draws change no training."""
        if restore is None:
            restore = step.is_probe
        kept = self._generator_states() if restore else None
        self.begin(step)
        try:
            yield self
        finally:
            self.clear_shared()
            if kept is not None:
                self._set_generator_states(kept)

    def _generator_states(self) -> tuple:
        device = self.device_generator.get_state() if self.device_generator is not None else None
        return self.generator.get_state(), device

    def _set_generator_states(self, states: tuple) -> None:
        self.generator.set_state(states[0])
        if states[1] is not None:
            assert self.device_generator is not None  # states[1] is its state
            self.device_generator.set_state(states[1])

    def clear_shared(self) -> None:
        """Forget the shared draws: the next ``perturb`` of each shape draws anew. The TP rules
        call it before and after each inverse update (each step draws anew; nothing stays
        allocated between steps)."""
        self._drawn.clear()

    def perturb(self, clean: torch.Tensor, std: float, stacked: bool = False) -> torch.Tensor:
        """``clean + std·ε`` as a fresh tensor, ``ε ~ N(0, 1)`` element-wise. ``stacked``: dim 0
        of ``clean`` indexes layers (``(G, B, ...)``, an inverse group), each with its own
        ``(B, ...)`` input; shared, each layer gets the step's ``ε`` for that shape with its own
        per-sample signs; not shared, one draw for the whole stack, layers in order."""
        gen = self._generator(clean.device)
        batch_dim = 1 if stacked else 0
        if not self.shared:
            return self._draw(clean.shape, clean, batch_dim, lambda t: t.normal_(0.0, std, generator=gen)).add_(clean)
        one = clean[0] if stacked else clean
        key = (tuple(one.shape), one.dtype)
        eps = self._drawn.get(key)
        if eps is None:
            eps = self._drawn[key] = self._draw(one.shape, one, 0, lambda t: t.normal_(0.0, 1.0, generator=gen))
        sign_shape = clean.shape[: 2 if stacked else 1] + (1,) * (one.dim() - 1)  # (G, B, 1, ...) or (B, 1, ...)
        signs = self._draw(sign_shape, clean, batch_dim, lambda t: t.random_(0, 2, generator=gen)).mul_(2).sub_(1)
        return torch.addcmul(clean, eps, signs, value=std)

    def state_dict(self) -> dict:
        return {"device": self.device_generator.get_state()} if self.device_generator is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.device_generator is not None and "device" in state:
            self.device_generator.set_state(state["device"])
