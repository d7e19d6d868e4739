"""Top-down credit assignment through the rule's hooks, and the local weight gradients.

``assign_credit`` returns, for every layer, the signal at its pre-activation ``δa_l``
(``(B, *out_shape)``); ``local_weight_grads`` turns each into that layer's parameter
gradients with the op's closed form (``δa_lᵀ h_{l-1}`` for a linear layer). The forward
pass keeps no autograd graph, so no gradient can cross a layer boundary.
"""

from __future__ import annotations

import torch

from .layer_target import LayerTarget
from .step import cross_entropy_and_grad


def assign_credit(rule, step, trace: dict | None = None, on_signal=None, release: bool = False) -> list:
    """``[None, δa_1, ..., δa_L]`` for ``step`` (computed under no_grad).

    The output layer gets the task-loss gradient; each lower layer gets the local-loss
    gradient of the target the rule sets, or else the feedback signal the rule sends.
    Under bf16 a target is float32 (``RuleHooks`` keeps it so): ``2 (h - t) / B`` is formed in
    float32 and only the signal is cast to ``h``'s dtype (a no-op in fp32, bit for bit).
    A net beyond a plain chain (``model.plain`` False) goes through :func:`_assign_graph`.
    :param trace: if a dict is given, it receives ``targets`` and ``signals`` (``δh``) by layer.
    :param on_signal: called as ``on_signal(l, δa_l)`` once ``δa_l`` is final and layer ``l``'s
        feedback is formed (``L`` first; a batch norm's ``step.norm_grads[l]`` is set by then): the
        trainer writes layer ``l``'s weight gradients there, while the step's other signals are alive.
    :param release: let each ``δa_l`` go after ``on_signal`` (the list returned holds None), and layer
        ``l``'s forward tensors (``step.let_go(l)``) once the credit assignment has passed it: the
        step's memory then falls as it moves down, as under autograd. At layer ``l`` a rule reads
        ``step.h[k]`` for ``k <= l`` and the logits (every rule here does; the kit checks it).
    """
    if not step.model.plain:
        return _assign_graph(rule, step, trace, on_signal, release)
    L = step.num_layers
    grads = [None] * (L + 1)
    scale = 2.0 / step.batch_size
    with torch.no_grad():
        target, output_grad = _output(rule, step)
        grads[L] = step.activation_backward(L, output_grad)
        for l in range(L, 1, -1):
            target = _with_input(step, l - 1, rule.layer_target(step, l, target))
            if target is not None:  # h - t in float32 (bf16: t carries its displacement below bf16's spacing)
                h = step.output_of(l - 1)
                grad_h = torch.sub(h.float(), target).mul_(scale).to(h.dtype)
            else:
                grad_h = rule.feedback_signal(step, l, grads[l])
            grads[l - 1] = step.activation_backward(l - 1, grad_h)
            if trace is not None:
                trace.setdefault("targets", {})[l - 1] = target
                trace.setdefault("signals", {})[l - 1] = grad_h
            del grad_h
            _done(step, grads, l, on_signal, release)
        _done(step, grads, 1, on_signal, release)
    return grads


def _output(rule, step) -> tuple:
    """``(target for h_L or None, δh_L)``: the rule's output target, and the task loss's gradient at
    the logits (layer ``L`` run again on a :class:`LayerTarget`'s input, when the rule gives one)."""
    found = rule.output_target(step)
    if not isinstance(found, LayerTarget):
        return found, step.output_grad
    _with_input(step, step.num_layers, found)
    return found.target, cross_entropy_and_grad(step.output_of(step.num_layers), step.y, step.label_smoothing)[1]


def _with_input(step, k: int, found):
    """The target for ``h_k``; a :class:`LayerTarget` runs layer ``k`` again on its input first
    (``step.rerun``), so that its signal, ``σ'`` and weight gradient are formed there."""
    if not isinstance(found, LayerTarget):
        return found
    step.rerun(k, found.input)
    return found.target


def _done(step, grads: list, l: int, on_signal, release: bool) -> None:
    """Layer ``l`` is passed: hand ``δa_l`` on, and let it and the layer's tensors go if asked."""
    if on_signal is not None:
        on_signal(l, grads[l])
    if release:
        grads[l] = None
        step.let_go(l)


def _assign_graph(rule, step, trace: dict | None, on_signal=None, release: bool = False) -> list:
    """``assign_credit`` on a net with pooling, batch norm or skips: the signals at each ``h_k``
    add up over its consumers and the skips that read it; each ``δh_l`` and ``δz_l`` is let go once
    layer ``l`` is done (a batch norm's parameter gradients, formed from ``δz_l`` in its backward,
    are kept in ``step.norm_grads[l]``). Targets only where layer ``l`` reads ``h_{l-1}`` and nothing
    else reads it (the rule's declared support keeps target rules off other nets)."""
    model, L = step.model, step.num_layers
    grads: list = [None] * (L + 1)
    at_h: list = [None] * (L + 1)  # δh_k accumulated
    step.norm_grads = [None] * (L + 1)
    scale = 2.0 / step.batch_size
    with torch.no_grad():
        target, at_h[L] = _output(rule, step)
        for l in range(L, 0, -1):
            grads[l], grad_z = step.post_backward(l, at_h[l])
            if trace is None:
                at_h[l] = None  # δh_l is spent (a trace keeps it)
            layer = model.layer(l)
            if layer.norm is not None:
                step.norm_grads[l] = layer.norm.param_grads(grad_z, step.post[l][2])
            if release:
                step.let_go_post(l)
            skip = model.skips[l - 1]
            if skip is not None:
                _accumulate(at_h, skip, layer.skip_transpose(grad_z))
            del grad_z
            k = model.sources[l - 1]
            if k != 0:
                target = _with_input(step, k, rule.layer_target(step, l, target)) if k == l - 1 else None
                if target is not None:
                    h = step.output_of(k)
                    grad_h = torch.sub(h.float(), target).mul_(scale).to(h.dtype)
                else:
                    grad_h = rule.feedback_signal(step, l, grads[l])
                _accumulate(at_h, k, grad_h)
                del grad_h
                if trace is not None:
                    trace.setdefault("targets", {})[k] = target
                    trace.setdefault("signals", {})[k] = at_h[k]
            _done(step, grads, l, on_signal, release)
    return grads


def _accumulate(at_h: list, k: int, grad: torch.Tensor) -> None:
    at_h[k] = grad if at_h[k] is None else at_h[k] + grad


def local_weight_grads(step, grads: list) -> list[dict]:
    """``[{}, {layer-relative name ("op.weight", "norm.bias"): gradient}, ...]`` per layer: each op's
    ``∂<a_l, δa_l>/∂θ_l`` from its input and signal, each batch norm's ``γ``, ``β`` from ``δz_l``."""
    model = step.model
    out: list[dict] = [{}]
    with torch.no_grad():
        for l in range(1, step.num_layers + 1):
            x = step.input_of(l)
            found = {f"op.{n}": g for n, g in model.ops[l - 1].param_grads(x, grads[l]).items()}
            if step.norm_grads is not None and step.norm_grads[l] is not None:
                found.update({f"norm.{n}": g for n, g in step.norm_grads[l].items()})
            out.append(found)
    return out


def write_weight_grads(step, grads: list, cache: dict | None = None) -> None:
    """Set ``.grad`` of every forward parameter to its layer's local gradient. Existing
    ``.grad`` tensors are overwritten in place (``op.write_param_grads``), the first step
    assigns fresh ones; every forward parameter belongs to one op or norm and gets a gradient on
    every forward step, so nothing stale survives.

    :param cache: a dict the caller keeps between steps (the trainer does): each op's
        name → ``.grad`` map is kept there and reused while every parameter of the op is
        still the same tensor holding the same ``.grad`` (checked each step by identity),
        instead of being rebuilt from ``named_parameters`` every step.
    """
    for l in range(1, step.num_layers + 1):
        write_layer_grads(step, l, grads[l], cache)


def write_layer_grads(step, l: int, grad_a: torch.Tensor, cache: dict | None = None) -> None:
    """Layer ``l``'s part of :func:`write_weight_grads` from its signal ``δa_l`` ``(B, *op.out_shape)``
    (no grad): the trainer calls it from ``assign_credit``'s ``on_signal`` as each ``δa_l`` is done."""
    model = step.model
    op, x = model.ops[l - 1], step.input_of(l)
    with torch.no_grad():
        dest = _grad_dest(op, cache)
        if dest is not None:
            op.write_param_grads(x, grad_a, dest)
        else:
            params = dict(op.named_parameters(recurse=False))
            for name, grad in op.param_grads(x, grad_a).items():
                params[name].grad = grad
        if step.norm_grads is not None and step.norm_grads[l] is not None:
            _write_norm_grads(model.layer(l).norm, step.norm_grads[l])


def _write_norm_grads(norm, found: dict) -> None:
    for name, grad in found.items():
        param = getattr(norm, name)
        if param.grad is None:
            param.grad = grad.to(param.dtype)
        else:
            param.grad.copy_(grad)


def _grad_dest(op, cache: dict | None) -> dict | None:
    """name → ``.grad`` of ``op``'s parameters, or None while any has no ``.grad``."""
    kept = cache.get(op) if cache is not None else None
    if kept is not None and all(getattr(op, name) is p and p.grad is g for name, p, g in kept[0]):
        return kept[1]
    params = dict(op.named_parameters(recurse=False))
    if any(p.grad is None for p in params.values()):
        return None
    dest = {name: p.grad for name, p in params.items()}
    if cache is not None:
        cache[op] = ([(name, p, p.grad) for name, p in params.items()], dest)
    return dest
