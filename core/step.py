"""What a rule sees of one training step, and the forward pass that fills it.

Shapes: ``x`` is ``(B, *in_shape)``, ``y`` ``(B,)`` int64; ``h[l]`` is ``(B, *out_shape of layer
l)`` and ``a[l]`` ``(B, *op.out_shape)`` (the same without pooling) for ``l = 1..L`` (``h[0] = x``,
``a[0] = None``; ``a`` is recomputed on read where the forward let it go: :class:`PreActivations`).
The forward pass runs under ``torch.no_grad()``: no tensor here carries an autograd graph.
``output_grad`` is ``∂loss/∂h_L`` ``(B, classes)`` for the batch-mean cross-entropy ``loss``
against the label distribution (one-hot, or label-smoothed when ``trainer.label_smoothing`` > 0).

Data-parallel runs (torchrun): ``B`` is this rank's rows ``step.rows`` of a global batch of
``step.global_batch_size`` rows; everything above is about this rank's rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from bioscale.architectures.post import BatchSync


class LetGo:
    """What ``step.h[l]`` / ``step.a[l]`` hold once the credit assignment has passed layer ``l`` and let
    its tensors go (a rule that reads no signal after the step: ``credit.assign_credit``). Any use
    raises, naming the tensor."""

    def __init__(self, what: str):
        self._what = what

    def _message(self) -> str:
        return (
            f"{self._what} was let go once the credit assignment passed its layer: at layer l a rule reads "
            "step.h[k] / step.a[k] for k <= l and the logits; a rule whose bioscale_after_forward_grads "
            "takes `grads`, or an observer with bioscale_step_end, keeps every tensor of the step "
            "(ARCHITECTURE.md, 'One training step')"
        )

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise RuntimeError(self._message())

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        """A torch function given one (``torch.sub(step.h[l], t)``) raises the same message."""
        found = next(a for a in [*args, *(kwargs or {}).values()] if isinstance(a, LetGo))
        raise RuntimeError(found._message())

    def __repr__(self) -> str:
        return f"<{self._message()}>"


class PreActivations:
    """``step.a``: ``a[l]`` ``(B, *op.out_shape)`` for ``l = 1..L`` (``a[0]`` is None), detached. The
    forward keeps ``a_l`` only where a backward needs it (a batch norm's input); any other is
    recomputed on first read as ``op_l(h_{s(l)})`` under the autocast state the forward ran in
    (the forward's value, bit for bit), then kept for the step. No grad."""

    def __init__(self, model, h: list, kept: list, autocast_state: tuple | None):
        self._model, self._h, self._kept, self._autocast = model, h, kept, autocast_state

    def __len__(self) -> int:
        return len(self._kept)

    def __getitem__(self, l):
        if isinstance(l, slice):
            return [self[k] for k in range(*l.indices(len(self._kept)))]
        if l < 0:
            l += len(self._kept)
        found = self._kept[l]
        if found is None and l > 0:
            found = self._kept[l] = self._recompute(l)
        return found

    def let_go(self, l: int) -> None:
        self._kept[l] = LetGo(f"step.a[{l}]")

    def __iter__(self):
        return (self[l] for l in range(len(self._kept)))

    def _recompute(self, l: int) -> torch.Tensor:
        x = self._h[self._model.sources[l - 1]]
        with torch.no_grad():
            if self._autocast is None:
                with torch.autocast(x.device.type, enabled=False):
                    return self._model.ops[l - 1](x)
            with torch.autocast(x.device.type, dtype=self._autocast[0], enabled=True):
                return self._model.ops[l - 1](x)


def _autocast_state(device: torch.device) -> tuple | None:
    """``(dtype,)`` of the autocast region the forward runs in, or None outside one."""
    if not torch.is_autocast_enabled(device.type):
        return None
    return (torch.get_autocast_dtype(device.type),)


class StepContext:
    """One training step: batch, activations, task-loss gradient, and helpers for rules."""

    def __init__(
        self,
        model,
        x,
        y,
        epoch: int,
        index: int,
        phases: frozenset,
        a: list,
        h: list,
        label_smoothing: float = 0.0,
        post: list | None = None,
    ):
        self.model = model
        self.x = x
        self.y = y
        self.epoch = epoch  # 0-based epoch
        self.index = index  # global step counter (every batch of every pass)
        self.phases = phases  # subset of {"forward", "inverse"}
        self.progress = 0.0  # fraction of the planned run done at this step, in [0, 1]
        self.planned_epochs = None  # trainer.epochs the run is planned for (set by the trainer; None in probes)
        self.num_layers = model.num_layers
        self.h = h
        self.a = a if isinstance(a, PreActivations) else PreActivations(model, h, list(a), _autocast_state(x.device))
        self.post = post if post is not None else [None] * len(h)  # per layer: what its post backward needs
        self.norm_grads: list | None = None  # per layer: its batch norm's parameter gradients (credit.py)
        self.inputs: dict = {}  # layer -> the input a rule's LayerTarget gave it (credit.py runs it again there)
        self.reruns: dict = {}  # layer -> (h, post) of that run
        self.sync: BatchSync | None = (
            None  # data-parallel batch norm's sums (architectures.post.BatchSync); None in one process
        )
        self.loss: torch.Tensor | None = None
        self.output_grad: torch.Tensor | None = None
        self.label_smoothing = label_smoothing  # ε of the task loss (0: plain cross-entropy)
        self.rows = slice(0, x.shape[0])  # this rank's rows of the global batch (all of it in one process)
        self.global_batch_size = x.shape[0]
        self.parallel = None  # the run's DataParallel under torchrun; None in one process and in probes
        self.is_probe = False  # True in gradient probes (diagnostics): credit hooks must change no state

    def reduce_gradients(self, tensors) -> None:
        """Make gradients written as means over this rank's rows the means over the whole global
        batch, in place, identical on every rank (one all-reduce per tensor: pass flat buffers).
        A rule that trains parameters of its own calls it before its optimiser step; a no-op in
        one process and in probes."""
        if self.parallel is not None:
            self.parallel.reduce_gradients_(tensors, self.batch_size, self.global_batch_size)

    @property
    def batch_size(self) -> int:
        return self.x.shape[0]

    @property
    def logits(self) -> torch.Tensor:
        return self.h[self.num_layers]

    def onehot_labels(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """``(B, classes)`` one-hot rows of ``y`` on the logits' device, in ``dtype`` (default the
        logits'). Built by a scatter, so no host read: ``F.one_hot`` checks the label range on
        the host first."""
        return torch.zeros_like(self.logits, dtype=dtype).scatter_(1, self.y[:, None], 1.0)

    def label_distribution(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """``(B, classes)`` in ``dtype`` (default the logits'; a target rule under bf16 asks for
        float32): the correct label distribution, i.e. the class probabilities that
        minimise the task loss: ``(1 - ε) onehot(y) + ε / classes`` with ``ε`` the run's
        ``trainer.label_smoothing`` (the one-hot rows when ``ε`` = 0). No host read."""
        eps = self.label_smoothing
        if eps == 0.0:
            return self.onehot_labels(dtype)
        classes = self.logits.shape[1]
        return torch.full_like(self.logits, eps / classes, dtype=dtype).scatter_add_(
            1, self.y[:, None], torch.full_like(self.logits[:, :1], 1.0 - eps, dtype=dtype)
        )

    def let_go(self, l: int) -> None:
        """The credit assignment has passed layer ``l`` (``0 < l``): its output (but the logits), op
        output and post-part tensors go, as autograd frees a layer's saved tensors once its backward
        ran. Called only for a rule that reads nothing of the step after the credit assignment."""
        if l < self.num_layers:
            self.h[l] = LetGo(f"step.h[{l}]")
        self.a.let_go(l)
        self.post[l] = None
        self.inputs.pop(l, None)
        self.reruns.pop(l, None)

    def let_go_post(self, l: int) -> None:
        """Layer ``l``'s post backward has run: what it kept goes but the pooling indices (a target
        rule's inverse unpools with them at layer ``l``), as autograd frees a node's saved tensors."""
        saved = self.post[l]
        if saved is not None:
            self.post[l] = (None, saved[1], None)

    def layer(self, l: int):
        """Layer ``l`` (1-based) of the model."""
        return self.model.layers[l - 1]

    def activation_backward(self, l: int, grad_h: torch.Tensor) -> torch.Tensor:
        """A signal at ``h_l`` ``(B, *out_shape)`` moved to the op's output ``a_l``: ``grad_h ⊙ σ_l'(a_l)``
        for a plain layer; through pooling, ``σ'`` and batch norm (this batch's statistics) otherwise.
        At the rerun's evaluation where a rule's ``LayerTarget`` gave layer ``l`` an input."""
        h, post = self.reruns.get(l, (self.h[l], self.post[l]))
        if post is None:
            return self.model.activations[l - 1].backward(h, grad_h)
        return self.post_backward(l, grad_h)[0]

    def post_backward(self, l: int, grad_h: torch.Tensor) -> tuple:
        """``(δa_l, δz_l)`` from ``δh_l``: ``δz_l`` is the signal where a skip adds (before batch norm's
        backward); both ``(B, *op.out_shape)``. The core's, the same for every rule."""
        h, post = self.reruns.get(l, (self.h[l], self.post[l]))
        return self.model.layer(l).post_backward(h, grad_h, post, self.sync)

    def rerun(self, l: int, x: torch.Tensor) -> None:
        """Run layer ``l`` again on ``x`` ``(B, *in_shape)`` in place of ``h_{s(l)}`` (a rule's
        ``LayerTarget``): its output, post part and weight gradient are then formed there (batch norm
        with ``x``'s statistics, running ones untouched). In ``x``'s dtype with autocast off (float32
        under bf16: the target's error from ``f(x)`` may lie below bf16's spacing). No grad."""
        layer = self.model.layer(l)
        with torch.no_grad(), torch.autocast(x.device.type, enabled=False):  # float32, as the rule formed x
            if self.post[l] is None and layer.plain:
                h, post = layer.activation(layer.op(x)), None
            else:
                _, h, post = layer.train_forward(x, None, self.sync, False)
        self.inputs[l], self.reruns[l] = x, (h, post)

    def output_of(self, l: int) -> torch.Tensor:
        """``h_l``, or layer ``l``'s output at the input a rule's ``LayerTarget`` gave it."""
        found = self.reruns.get(l)
        return self.h[l] if found is None else found[0]

    def input_of(self, l: int) -> torch.Tensor:
        """What layer ``l``'s op read: ``h_{s(l)}``, or the input a rule's ``LayerTarget`` gave it."""
        found = self.inputs.get(l)
        return self.h[self.model.sources[l - 1]] if found is None else found

    def layer_vjp(self, l: int, grad_a: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """Transpose of layer ``l``'s affine map applied to ``grad_a`` ``(B, *out_shape)``:
        BP's signal for ``h_{l-1}`` with the layer's own weight, or with ``weight`` (same
        shape, e.g. a fixed random feedback matrix). No autograd involved."""
        return self.model.ops[l - 1].input_vjp(grad_a, weight)


def forward_step(
    model,
    x,
    y,
    epoch: int,
    index: int,
    phases: frozenset,
    label_smoothing: float = 0.0,
    rows: slice | None = None,
    global_batch_size: int | None = None,
    parallel=None,
    update_stats: bool = False,
) -> StepContext:
    """Run the forward pass (no graph) and the task loss; for forward phases also its
    gradient at the output. ``rows`` / ``global_batch_size`` / ``parallel``: this rank's share
    of a data-parallel global batch (default: the whole batch, one process). ``update_stats``:
    move batch norm's running statistics (the trainer's steps; never probes)."""
    sync = None
    if parallel is not None and global_batch_size is not None and not model.plain:
        sync = BatchSync(parallel, x.shape[0] / global_batch_size)
    with torch.no_grad():
        a, h, post = model.forward_train(x, sync, update_stats)
        step = StepContext(model, x, y, epoch, index, phases, a, h, label_smoothing, post)
        step.sync = sync
        if rows is not None:
            step.rows, step.global_batch_size, step.parallel = rows, global_batch_size, parallel
        step.loss, grad = cross_entropy_and_grad(step.logits, y, label_smoothing)
    if "forward" in phases:
        step.output_grad = grad
    return step


def cross_entropy_and_grad(
    logits: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch-mean cross-entropy against ``q = (1 - ε) onehot(y) + ε / C`` (``ε`` =
    ``label_smoothing``, as ``F.cross_entropy``'s) and its gradient ``(softmax(logits) - q) / B``,
    in closed form (one log-softmax, no autograd call). ``logits``: ``(B, C)``, ``y``: ``(B,)``.
    Both are formed in float32 (``softmax - 1`` cancels for a confident example); the gradient is
    cast to the logits' dtype at the end, the loss is float32 (no-ops in fp32)."""
    logp = F.log_softmax(logits.float(), dim=1)
    picked = logp.gather(1, y[:, None])
    loss = -picked.mean()
    if label_smoothing != 0.0:  # q's uniform share ε / C: every class's log-probability counts
        share = label_smoothing / logits.shape[1]
        loss = loss.mul_(1.0 - label_smoothing).sub_(logp.sum(1).mean().mul_(share))
    grad = logp.exp_()
    if label_smoothing != 0.0:
        grad.sub_(share)
    grad.scatter_add_(1, y[:, None], torch.full_like(picked, label_smoothing - 1.0))
    return loss, grad.div_(logits.shape[0]).to(logits.dtype)
