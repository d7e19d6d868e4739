"""Data sets held in memory as tensors and batched by indexing.

``InMemorySplit.x`` is ``(N, C, H, W)`` float32 (already normalised), ``y`` is ``(N,)`` int64,
both on the training device. Data too large as float32 (downsampled ImageNet) stays ``uint8``
with a per-channel ``scale`` / ``shift`` ``(C, 1, 1)``: each batch becomes float32
``x · scale + shift`` as it is taken (on the device, one fused op). Shuffling uses a caller-owned ``torch.Generator`` so that
runs resume exactly; augmentation is applied to whole batches on the device.

A split may also be an index view: ``x`` is then a larger array (downsampled ImageNet's pixels,
memory-mapped on the host, shared by the processes of a machine: ``npy_cache.py``) and ``index``
``(N,)`` int64 names the split's rows of it; a batch gathers ``x[index[i]]``, the rows a copy
``x[index]`` would give, without the copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import torch

from .augment import Augmentation


class Split(Protocol):
    """What the trainer reads of a split (:class:`InMemorySplit`, the ImageNet folder splits)."""

    def __len__(self) -> int: ...

    def num_batches(self, batch_size: int) -> int: ...

    def batches(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        augment: Augmentation | None = None,
        rows: Callable[[int], slice] | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


@dataclass
class InMemorySplit:
    x: torch.Tensor
    y: torch.Tensor
    scale: torch.Tensor | None = None  # uint8 storage: float32 (C, 1, 1) factors applied per batch
    shift: torch.Tensor | None = None
    index: torch.Tensor | None = None  # (N,) int64 on x's device: the split's rows of x (None: all of x)

    def __len__(self) -> int:
        return self.y.shape[0]

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)

    def _float(self, xb: torch.Tensor) -> torch.Tensor:
        if self.scale is None:
            return xb
        assert self.shift is not None  # set together with scale
        return torch.addcmul(self.shift, xb.to(torch.float32), self.scale)

    def _rows(self, idx: torch.Tensor) -> torch.Tensor:
        """Images of the split's rows ``idx`` ``(B,)``: ``(B, C, H, W)`` in x's dtype and device."""
        return self.x.index_select(0, idx if self.index is None else self.index.index_select(0, idx))

    def _range(self, part: slice) -> torch.Tensor:
        return self.x[part] if self.index is None else self.x.index_select(0, self.index[part])

    def to(self, device) -> InMemorySplit:
        """The split on ``device``; on another device than x's, its rows copied there in chunks
        (an index view becomes a plain split)."""
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        if torch.device(device) == self.x.device:  # an index view stays one
            return InMemorySplit(self.x, self.y.to(device), move(self.scale), move(self.shift), self.index)
        x = take_rows(self.x, self.index, device)
        return InMemorySplit(x, self.y.to(device), move(self.scale), move(self.shift))

    def shard(self, rank: int, world_size: int) -> InMemorySplit:
        """Rank ``rank``'s contiguous share of the split (views, no copy); evaluation splits
        the test set this way across data-parallel ranks."""
        n = len(self)
        part = slice(rank * n // world_size, (rank + 1) * n // world_size)
        if self.index is not None:
            return InMemorySplit(self.x, self.y[part], self.scale, self.shift, self.index[part])
        return InMemorySplit(self.x[part], self.y[part], self.scale, self.shift)

    def batches(
        self, batch_size: int, generator: torch.Generator | None = None, augment: Augmentation | None = None, rows=None
    ):
        """Yield ``(x, y)`` batches; shuffled when ``generator`` is given (one ``randperm`` per
        call, drawn on the CPU), augmented when ``augment`` is given (it uses the same
        generator). The last batch may be smaller. No host sync.

        :param rows: data parallelism: ``rows(n) -> slice``, this rank's rows of an ``n``-row
            global batch; only those rows are gathered and augmented (with the global batch's
            random numbers, so each row is what one process would make of it).
        """
        n = len(self)
        if generator is None:
            for start in range(0, n, batch_size):
                span = slice(start, start + batch_size)
                yield self._float(self._range(span)), self.y[span]
            return
        order = torch.randperm(n, generator=generator).to(self.x.device)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            part = None
            if rows is not None:
                part = rows(idx.shape[0])
                idx = idx[part]
            xb = self._float(self._rows(idx))
            if augment is not None:
                xb = augment(xb, generator, rows=part, total=min(batch_size, n - start))
            yield xb, self.y.index_select(0, idx)


def take_rows(x: torch.Tensor, index: torch.Tensor | None, device, chunk_bytes: int = 1 << 26) -> torch.Tensor:
    """``x[index]`` (all of ``x`` if ``index`` is None) as a new tensor on ``device``, gathered
    ``chunk_bytes`` at a time, so a memory-mapped ``x`` goes to a GPU without a whole host copy."""
    rows = len(x) if index is None else len(index)
    out = torch.empty((rows, *x.shape[1:]), dtype=x.dtype, device=device)
    step = max(1, chunk_bytes // max(1, x[:1].numel() * x.element_size()))
    for start in range(0, rows, step):
        part = slice(start, start + step)
        out[part].copy_(x[part] if index is None else x.index_select(0, index[part].to(x.device)))
    return out


@dataclass
class DataBundle:
    """What the trainer needs to know about a data set."""

    name: str
    train: Split
    test: Split
    val: Split | None
    in_shape: tuple
    num_classes: int
    source: str
    normalization: dict = field(default_factory=dict)
    augment: Augmentation | None = None
    top_k: tuple = (1,)
