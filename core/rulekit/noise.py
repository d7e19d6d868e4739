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
"""

from __future__ import annotations

import torch


class NoiseSource:
    def __init__(self, generator: torch.Generator, device, shared: bool = False):
        self.generator = generator
        self.device = torch.device(device)
        self.device_generator = None
        self.shared = shared
        self._drawn: dict = {}  # (shape, dtype) -> this step's standard-normal ε
        if self.device.type != "cpu":
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            self.device_generator = torch.Generator(device=self.device).manual_seed(seed)

    def normal_like(self, t: torch.Tensor, std: float) -> torch.Tensor:
        """``N(0, std²)`` noise shaped like ``t`` (same dtype and device)."""
        return torch.empty(t.shape, device=t.device, dtype=t.dtype).normal_(0.0, std, generator=self._generator(t.device))

    def _generator(self, device: torch.device) -> torch.Generator:
        """The rule's CPU generator for CPU tensors, the seeded device generator otherwise."""
        return self.generator if device.type == "cpu" else self.device_generator

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
        if not self.shared:
            return self.normal_like(clean, std).add_(clean)
        one = clean[0] if stacked else clean
        key = (tuple(one.shape), one.dtype)
        eps = self._drawn.get(key)
        if eps is None:
            eps = self._drawn[key] = self.normal_like(one, 1.0)
        sign_shape = clean.shape[: 2 if stacked else 1] + (1,) * (one.dim() - 1)  # (G, B, 1, ...) or (B, 1, ...)
        signs = torch.randint(0, 2, sign_shape, generator=self._generator(clean.device), device=clean.device,
                              dtype=clean.dtype).mul_(2).sub_(1)
        return torch.addcmul(clean, eps, signs, value=std)

    def state_dict(self) -> dict:
        return {"device": self.device_generator.get_state()} if self.device_generator is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.device_generator is not None and "device" in state:
            self.device_generator.set_state(state["device"])
