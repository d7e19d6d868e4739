"""Data parallelism over ``torch.distributed``: this process's share of a run launched by torchrun.

Outside torchrun (no ``WORLD_SIZE`` in the environment, or a world of one) every collective is
a no-op and every row of a batch is this process's. Under torchrun each rank holds the same
state, takes a contiguous share of every global batch and averages gradients by one
all-reduce per buffer; see ARCHITECTURE.md, "Data parallelism". No autograd anywhere here.
"""

from __future__ import annotations

import datetime
import gc
import hashlib
import os

import torch

from .errors import ConfigError

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
TIMEOUT = datetime.timedelta(minutes=10)
_LAUNCH: dict = {}  # this process's rendezvous store (launch_store), joined once


def launched() -> bool:
    """Whether torchrun launched this process in a world of more than one."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def end_launched_process(code: int) -> None:
    """End this process now with ``code`` when torchrun launched it (else return): streams flushed,
    then ``os._exit``, skipping the interpreter's finalization. In it, gloo's and the rendezvous
    store's C++ threads can still hold objects and abort a process whose run ended well (SIGABRT,
    "terminate called without an active exception", seen about once in 40 launches here), which
    torchrun reports as a failure of every rank. Call it last: run folders are closed by then."""
    if not launched():
        return
    import logging
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or a broken pipe
            pass
    logging.shutdown()
    os._exit(code)


def check_env() -> None:
    """A ``ConfigError`` unless torchrun's variables are all set (``WORLD_SIZE`` alone is not a launch)."""
    missing = [k for k in ENV_KEYS if k not in os.environ]
    if missing:
        world = os.environ.get("WORLD_SIZE")
        raise ConfigError(f"WORLD_SIZE={world} is set but {', '.join(missing)} are not: launch with torchrun")


def launch_store():
    """torchrun's key-value store (rendezvous ``env://``), joined once per process: the process group
    is built on it, and checks made before the group exists (which needs the run's config) exchange
    through it."""
    if "store" not in _LAUNCH:
        import torch.distributed as dist

        check_env()

        store, _, _ = next(dist.rendezvous("env://", timeout=TIMEOUT))
        store.set_timeout(TIMEOUT)
        _LAUNCH["store"] = store
    return _LAUNCH["store"]


def exchange(mine: str, what: str) -> list[str]:
    """Every rank's ``mine``, in rank order, through the launch store (before any process group;
    ``[mine]`` in a world of one). ``what`` names the exchange (each key is set once per launch)."""
    if not launched():
        return [mine]
    store = launch_store()
    world = int(os.environ["WORLD_SIZE"])
    prefix = f"bioscale/{what}/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/"
    store.set(prefix + os.environ["RANK"], mine)
    keys = [prefix + str(r) for r in range(world)]
    store.wait(keys)
    return [store.get(k).decode() for k in keys]


def check_visible(paths: list, what: str, gather=exchange) -> None:
    """Refuse (``ConfigError`` on every rank) unless every rank can read every file of ``paths``; the
    message names each rank that cannot and what it misses. ``gather(mine, key) -> every rank's``."""
    missing = "\n".join(str(p) for p in paths if not (os.path.isfile(p) and os.access(p, os.R_OK)))
    blind = {r: m.split("\n") for r, m in enumerate(gather(missing, "visible")) if m}
    if blind:
        told = "; ".join(f"rank {r} cannot read {', '.join(m)}" for r, m in sorted(blind.items()))
        raise ConfigError(
            f"{what}: {told}. Every process reads the run folder, so processes on several machines need it on a "
            f"shared file system, at the same path; nothing was changed"
        )


def share(n: int, rank: int, world_size: int) -> slice:
    """Rows ``[start, stop)`` of an ``n``-row batch held by ``rank``: contiguous shares whose
    sizes differ by at most one, in rank order."""
    return slice(rank * n // world_size, (rank + 1) * n // world_size)


def plan_device(name: str, backend: str, local_rank: int, local_world: int, cuda_count: int) -> tuple[str, str]:
    """``(device, backend)`` of the process ``local_rank`` of ``local_world`` on a machine with
    ``cuda_count`` GPUs, for ``trainer.device=name`` and ``trainer.backend=backend``; a
    ``ConfigError`` naming the key for a plan that cannot run. ``auto`` devices are CUDA when there
    is a GPU; ``auto`` backends are NCCL for CUDA, gloo otherwise; NCCL needs CUDA and one GPU per
    process. ``cuda``: process ``i`` on ``cuda:i`` (``cuda:i % count`` under gloo, which lets
    processes share GPUs); ``cuda:N``: every process on GPU ``N`` (under NCCL, one process only)."""
    if name == "auto":
        name = "cuda" if cuda_count else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"trainer.device={name!r} is not a device; valid: auto, cpu, cuda, cuda:N") from exc
    if backend == "auto":
        backend = "nccl" if device.type == "cuda" else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ConfigError(f"trainer.backend={backend!r} is not a backend; valid: auto, gloo, nccl")
    if backend == "nccl" and device.type != "cuda":
        raise ConfigError(
            f"trainer.backend=nccl needs CUDA devices, but the run's device is {name!r}: "
            f"use trainer.backend=gloo (or auto)"
        )
    if device.type != "cuda":
        return name, backend
    if cuda_count == 0:
        raise ConfigError(f"trainer.device={name!r} but CUDA is not available here; use trainer.device=auto or cpu")
    if device.index is not None:
        if device.index >= cuda_count:
            raise ConfigError(
                f"trainer.device={name!r} but this machine has {cuda_count} GPU(s): cuda:0 .. cuda:{cuda_count - 1}"
            )
        if local_world > 1 and backend == "nccl":
            raise ConfigError(
                f"trainer.device={name} puts all {local_world} processes of this machine on GPU {device.index}, and "
                f"NCCL refuses two processes on one GPU: give trainer.device=cuda (process i on cuda:i) or "
                f"trainer.backend=gloo"
            )
        return name, backend
    if local_world > cuda_count and backend == "nccl":
        raise ConfigError(
            f"{local_world} processes on this machine but {cuda_count} GPU(s), and NCCL refuses two processes on one "
            f"GPU (trainer.backend=nccl): use trainer.backend=gloo to share GPUs, or at most {cuda_count} processes"
        )
    return f"cuda:{local_rank % cuda_count}", backend


class DataParallel:
    """The world this process trains in. ``rank`` 0 alone writes files and runs observers."""

    def __init__(
        self, rank: int = 0, world_size: int = 1, local_rank: int = 0, backend: str | None = None, device: str = "cpu"
    ):
        self.rank = rank
        self.world_size = world_size
        self.local_rank = local_rank
        self.backend = backend  # None: a world of one, no process group
        self.device = device  # this rank's device (plan_device): "cpu", "cuda:N", ...

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @staticmethod
    def launched_rank() -> int:
        """This process's rank as torchrun's environment gives it, before any group is joined
        (0 in a world of one): the same reading of the environment as :meth:`from_env`."""
        world = os.environ.get("WORLD_SIZE")
        if world is None or int(world) <= 1:
            return 0
        return int(os.environ.get("RANK", "0"))

    @classmethod
    def from_env(cls, device_name: str = "auto", backend: str = "auto") -> DataParallel:
        """Join the process group torchrun describes in the environment, or a world of one when there
        is none. ``device_name`` is ``trainer.device``, ``backend`` ``trainer.backend``; this rank's
        device and the backend follow :func:`plan_device` (a ``ConfigError`` before any group is
        joined, the same on every rank), and ``torch.cuda.set_device`` follows the device."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not launched():
            device, _ = plan_device(device_name, backend, 0, 1, count)  # refuses nccl on a CPU here too
            return cls(device=device)
        check_env()
        rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))  # torchrun sets it
        device, backend = plan_device(device_name, backend, local_rank, local_world, count)
        store = launch_store()
        import torch.distributed as dist

        if not dist.is_initialized():
            if device.startswith("cuda"):
                torch.cuda.set_device(torch.device(device))
            dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=TIMEOUT)
        return cls(rank, world, local_rank, backend, device)

    def check_batches(self, examples: int, batch_size: int) -> None:
        """Refuse (``ConfigError``, exit 2, before any work) a plan in which a rank would get no rows of
        some global batch: a batch of fewer rows than processes (``trainer.batch_size`` below the
        world size, or a short last batch)."""
        sizes = ({batch_size} if examples >= batch_size else set()) | {examples % batch_size or batch_size}
        short = sorted(n for n in sizes if 0 < n < self.world_size)
        if short:
            raise ConfigError(
                f"trainer.batch_size={batch_size} with {examples} training examples makes a batch of {short[0]} "
                f"rows for {self.world_size} processes, so a process would get none; choose trainer.batch_size and "
                f"data.limit_train so that every batch, the last one included, has at least {self.world_size} rows"
            )

    def rows(self, n: int) -> slice:
        """This rank's rows of an ``n``-row global batch."""
        return share(n, self.rank, self.world_size)

    def close(self) -> None:
        """Leave the process group and the rendezvous store. The collection frees them now, while the
        interpreter is alive: gloo's threads that release a finished collective's tensors (or a
        store's) at interpreter shutdown abort the process (SIGABRT after a clean run)."""
        if self.active:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
            _LAUNCH.clear()  # the rendezvous store too: freed now, not by the interpreter's shutdown
            gc.collect()

    # -- collectives (no-ops in a world of one) ------------------------------------------
    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """All-reduce ``tensor`` in place by sum; returns it."""
        if self.active:
            import torch.distributed as dist

            dist.all_reduce(tensor)
        return tensor

    def reduce_gradients_(self, tensors, rows: int, global_rows: int) -> None:
        """Turn per-rank means over ``rows`` rows into the mean over the ``global_rows`` rows of
        the global batch, in place, on every rank: ``g ← Σ_ranks (rows / global_rows) · g``
        (one all-reduce per tensor; pass flat buffers)."""
        if not self.active:
            return
        import torch.distributed as dist

        weight = rows / global_rows
        for t in tensors:
            t.mul_(weight)
            dist.all_reduce(t)

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` on every rank (a host round trip: outside steps only)."""
        if not self.active:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def check_identical(self, tensors, what: str) -> None:
        """Raise ``RuntimeError`` on every rank unless every rank holds bit-identical ``tensors``
        (a SHA-256 over their bytes, compared through rank 0)."""
        if not self.active:
            return
        digest = hashlib.sha256()
        for t in tensors:
            digest.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
        mine = digest.hexdigest()
        import torch.distributed as dist

        every: list[str | None] = [None] * self.world_size
        dist.all_gather_object(every, mine)
        differ = [r for r, d in enumerate(every) if d != every[0]]
        if differ:
            raise RuntimeError(
                f"{what} differs between ranks (ranks {differ} against rank 0): every rank must build "
                f"the same state from the run's seed"
            )
