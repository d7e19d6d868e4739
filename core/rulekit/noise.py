"""Gaussian noise for rules, drawn from the rule's own generator on the data's device.

On the CPU the rule's generator (checkpointed by the trainer) is used directly; on an
accelerator a device generator seeded from it is used (its state is part of the rule
state), so noise never needs a host-to-device copy and never touches the global RNG.
"""

from __future__ import annotations

import torch


class NoiseSource:
    def __init__(self, generator: torch.Generator, device):
        self.generator = generator
        self.device = torch.device(device)
        self.device_generator = None
        if self.device.type != "cpu":
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            self.device_generator = torch.Generator(device=self.device).manual_seed(seed)

    def normal_like(self, t: torch.Tensor, std: float) -> torch.Tensor:
        """``N(0, std²)`` noise shaped like ``t`` (same dtype and device)."""
        gen = self.generator if t.device.type == "cpu" else self.device_generator
        return torch.empty(t.shape, device=t.device, dtype=t.dtype).normal_(0.0, std, generator=gen)

    def state_dict(self) -> dict:
        return {"device": self.device_generator.get_state()} if self.device_generator is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.device_generator is not None and "device" in state:
            self.device_generator.set_state(state["device"])
