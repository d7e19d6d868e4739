"""The pluggy plugin manager of one run, and the typed facade the trainer calls.

The trainer never touches ``pm.hook`` directly: :class:`RuleHooks` calls the rule's
hooks and checks every returned tensor (shape, dtype, device); a mismatch raises
:class:`RuleContractError` naming the rule, its distribution and version, the hook and
the layer. Observers get the collect-all event hooks through :class:`ObserverHooks`.
"""

from __future__ import annotations

from typing import NamedTuple

import pluggy
import torch

from . import hookspecs
from .errors import BioscaleError, PluginError, PluginFailure, RuleContractError, StopRun
from .layer_target import LayerTarget
from .markers import PROJECT_NAME

PHASES = frozenset({"forward", "inverse"})


class Expected(NamedTuple):
    """What a hook's tensor must be, without allocating one: ``shape``, ``dtype``, ``device``."""

    shape: torch.Size
    dtype: torch.dtype
    device: torch.device

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point


def _describe(value) -> str:
    if isinstance(value, (torch.Tensor, Expected)):
        return f"a tensor of shape {tuple(value.shape)}, dtype {value.dtype}, device {value.device}"
    return f"a {type(value).__name__}"


class RuleHooks:
    """Typed, checked calls into the active rule's hooks."""

    def __init__(self, pm: pluggy.PluginManager, name: str, distribution: str, version: str):
        self._hook = pm.hook
        self._pm = pm
        self.name, self.distribution, self.version = name, distribution, version
        self._implemented = {h: bool(getattr(pm.hook, h).get_hookimpls()) for h in hookspecs.RULE_HOOKS}
        # an after_forward_grads that takes ``grads`` reads the step after credit: it keeps all of it, unless
        # the rule object says this run's does not (a composite rule that only passes them on: mix)
        self.reads_step_after_credit = any(
            "grads" in impl.argnames and getattr(impl.plugin, "reads_step_after_credit", True)
            for impl in pm.hook.bioscale_after_forward_grads.get_hookimpls()
        )

    def _call(self, hook: str, **kwargs):
        """Call rule hook ``hook`` through pluggy (the one dispatch point). An exception the rule
        raises becomes a :class:`PluginFailure` naming the rule, its distribution and the hook."""
        try:
            return getattr(self._hook, hook)(**kwargs)
        except BioscaleError:
            raise
        except Exception as exc:
            raise PluginFailure(f"{self.origin} raised in {hook}: {type(exc).__name__}: {exc}") from exc

    @property
    def origin(self) -> str:
        return f"rule {self.name!r} ({self.distribution} {self.version})"

    @property
    def plugin(self):
        """The rule object behind this facade."""
        return self._pm.get_plugin(rule_key(self.name))

    def implements(self, hook: str) -> bool:
        return self._implemented[hook]

    def _error(self, hook: str, message: str, layer: int | None = None) -> RuleContractError:
        where = f"{hook}" + (f" for layer {layer}" if layer is not None else "")
        return RuleContractError(f"{self.origin} broke the contract of {where}: {message}")

    def _check(
        self, value, like: torch.Tensor | Expected, hook: str, layer: int | None, target: bool = False
    ) -> torch.Tensor:
        """``value`` shaped, typed and placed like ``like``. Under autocast a floating result in
        another dtype is cast to ``like``'s, except a ``target``: it is kept (or made) float32,
        since the displacement ``t - h`` that carries its signal may lie below bf16's spacing."""
        if not isinstance(value, torch.Tensor):
            raise self._error(hook, f"returned {_describe(value)}; expected a tensor like {_describe(like)}", layer)
        dtype = like.dtype
        if value.is_floating_point() and like.is_floating_point() and torch.is_autocast_enabled(like.device.type):
            dtype = torch.float32 if target else like.dtype
            value = value.to(dtype)  # bf16 autocast: products mix dtypes (see hookspecs)
        if value.shape != like.shape or value.dtype != dtype or value.device != like.device:
            expected = f"a tensor of shape {tuple(like.shape)}, dtype {dtype}, device {like.device}"
            raise self._error(hook, f"returned {_describe(value)}; expected {expected}", layer)
        return value.detach() if value.requires_grad else value

    # -- lifecycle ---------------------------------------------------------------------
    def setup(self, model, generator, layers=None) -> None:
        """``layers``: the hidden layers this rule gives signals to (default: all, 1..L-1)."""
        if self._implemented["bioscale_setup"]:
            layers = tuple(range(1, model.num_layers)) if layers is None else tuple(layers)
            self._call("bioscale_setup", model=model, generator=generator, layers=layers)

    def epoch_passes(self, epoch: int) -> list[frozenset]:
        passes = (
            self._call("bioscale_epoch_passes", epoch=epoch) if self._implemented["bioscale_epoch_passes"] else None
        )
        if passes is None:
            return [frozenset({"forward"})]
        try:
            result = [frozenset(p) for p in passes]
        except TypeError:
            raise self._error("bioscale_epoch_passes", f"returned {passes!r}; expected a list of phase sets") from None
        if not result or any(not p or not p <= PHASES for p in result):
            raise self._error(
                "bioscale_epoch_passes",
                f"returned {passes!r}; each pass must be a non-empty subset of {sorted(PHASES)}",
            )
        return result

    def state_dict(self) -> dict | None:
        if not self._implemented["bioscale_state_dict"]:
            return None
        state = self._call("bioscale_state_dict")
        if state is not None and not isinstance(state, dict):
            raise self._error("bioscale_state_dict", f"returned {_describe(state)}; expected a dict or None")
        return state

    def load_state_dict(self, state: dict | None) -> None:
        if state is None:
            return
        if not self._implemented["bioscale_load_state_dict"]:
            raise self._error("bioscale_load_state_dict", "the checkpoint holds rule state but the rule cannot load it")
        self._call("bioscale_load_state_dict", state=state)

    # -- credit assignment ------------------------------------------------------------
    def output_target(self, step):
        """None, a target for ``h_L``, or a :class:`LayerTarget` (its target may be None)."""
        if not self._implemented["bioscale_output_target"]:
            return None
        value = self._call("bioscale_output_target", step=step)
        L = step.num_layers
        if isinstance(value, LayerTarget):
            return self._checked_pair(value, step, L, "bioscale_output_target", None, target_optional=True)
        return None if value is None else self._check(value, step.h[L], "bioscale_output_target", None, target=True)

    def layer_target(self, step, layer: int, target_above):
        """None, a target for ``h_{layer-1}``, or a :class:`LayerTarget` with its input."""
        if not self._implemented["bioscale_layer_target"]:
            return None
        value = self._call("bioscale_layer_target", step=step, layer=layer, target_above=target_above)
        if isinstance(value, LayerTarget):
            return self._checked_pair(value, step, layer - 1, "bioscale_layer_target", layer - 1)
        return (
            None
            if value is None
            else self._check(value, step.h[layer - 1], "bioscale_layer_target", layer - 1, target=True)
        )

    def _checked_pair(self, value, step, k: int, hook: str, where, target_optional: bool = False) -> LayerTarget:
        """A :class:`LayerTarget` for layer ``k``: its target like ``h_k`` and its input like layer ``k``'s
        forward input ``h_{s(k)}`` (on a chain: a settled state), both float32 under bf16 (the layer is
        run again on the input in float32: the error ``t - f(input)`` may lie below bf16's spacing)."""
        if value.target is None and not target_optional:
            raise self._error(
                hook, "returned a LayerTarget without a target (only the output layer's may be None)", where
            )
        if step.model.source(k) != k - 1 or step.model.skips[k - 1] is not None:
            raise self._error(hook, f"returned a LayerTarget for layer {k}, which is not in a chain", where)
        target = None if value.target is None else self._check(value.target, step.h[k], hook, where, target=True)
        return LayerTarget(target, self._check(value.input, step.h[k - 1], hook, where, target=True))

    def feedback_signal(self, step, layer: int, grad_above: torch.Tensor) -> torch.Tensor:
        value = None
        if self._implemented["bioscale_feedback_signal"]:
            value = self._call("bioscale_feedback_signal", step=step, layer=layer, grad_above=grad_above)
        k = step.model.source(layer)  # the layer the signal is for: layer - 1 in a chain
        if value is None:
            raise self._error(
                "bioscale_layer_target/bioscale_feedback_signal",
                "returned None from both credit hooks; a rule must give every hidden layer a target or a signal",
                k,
            )
        return self._check(value, step.h[k], "bioscale_feedback_signal", k)

    # -- a rule that settles the net itself ----------------------------------------------
    @property
    def settles_itself(self) -> bool:
        """Whether the rule gives every parameter's gradient itself (``bioscale_parameter_grads``)."""
        return self._implemented["bioscale_parameter_grads"]

    def parameter_grads(self, step) -> dict | None:
        """``{name: gradient}`` for every forward parameter, checked, or None (the core assigns credit)."""
        if not self.settles_itself:
            return None
        hook = "bioscale_parameter_grads"
        with torch.no_grad():
            value = self._call(hook, step=step)
        if value is None:
            return None
        params = dict(step.model.named_parameters())
        if not isinstance(value, dict) or set(value) != set(params):
            got = sorted(value) if isinstance(value, dict) else _describe(value)
            raise self._error(hook, f"returned {got}; expected a gradient for each of {sorted(params)}")
        for name, param in params.items():
            like = Expected(param.shape, torch.float32, param.device)
            value[name] = self._check(value[name], like, f"{hook} [{name}]", None)
        return value

    def predict(self, model, x: torch.Tensor) -> torch.Tensor | None:
        """The rule's evaluation logits for ``x`` (checked ``(B, classes)``), or None for ``model(x)``."""
        if not self._implemented["bioscale_predict"]:
            return None
        value = self._call("bioscale_predict", model=model, x=x)
        if value is None:
            return None
        like = Expected(torch.Size((x.shape[0], model.num_classes)), torch.float32, x.device)
        if not isinstance(value, torch.Tensor) or value.shape != like.shape or value.device != like.device:
            raise self._error("bioscale_predict", f"returned {_describe(value)}; expected {_describe(like)}")
        return value

    # -- inverse models ---------------------------------------------------------------
    def update_inverse(self, step) -> dict | None:
        if not self._implemented["bioscale_update_inverse"]:
            return None
        result = self._call("bioscale_update_inverse", step=step)
        if result is not None and not isinstance(result, dict):
            raise self._error("bioscale_update_inverse", f"returned {_describe(result)}; expected a dict or None")
        return result

    def after_forward_grads(self, step, grads: list) -> None:
        if self._implemented["bioscale_after_forward_grads"]:
            self._call("bioscale_after_forward_grads", step=step, grads=grads)

    def inverse_error(self, step) -> dict | None:
        if not self._implemented["bioscale_inverse_error"]:
            return None
        result = self._call("bioscale_inverse_error", step=step)
        if result is not None and not isinstance(result, dict):
            raise self._error("bioscale_inverse_error", f"returned {_describe(result)}; expected a dict or None")
        return result


class ObserverHooks:
    """The observers' event hooks, each observer called on its own (in registration order) so
    that one that raises is named (:class:`PluginFailure`); ``epoch_end`` results are merged.
    Each call is pluggy's for that one plugin: a hook wrapper in one observer wraps only that
    observer's own implementation, and tryfirst / trylast order nothing across observers."""

    def __init__(self, pm: pluggy.PluginManager, observers: list[tuple[str, object]]):
        self._callers = {}
        for hook in hookspecs.OBSERVER_HOOKS:
            others = lambda keep: [p for p in pm.get_plugins() if p is not keep]  # noqa: E731
            self._callers[hook] = [
                (origin, pm.subset_hook_caller(hook, remove_plugins=others(obj)))
                for origin, obj in observers
                if any(impl.plugin is obj for impl in getattr(pm.hook, hook).get_hookimpls())
            ]
        # an observer of every step may read its tensors: the credit assignment then lets nothing go
        self.watches_steps = bool(self._callers["bioscale_step_end"])

    def _call_one(self, origin: str, caller, hook: str, **kwargs) -> list:
        try:
            return caller(**kwargs)
        except BioscaleError:
            raise
        except Exception as exc:
            raise PluginFailure(f"{origin} raised in {hook}: {type(exc).__name__}: {exc}") from exc

    def _each(self, hook: str, **kwargs) -> list:
        return [r for origin, caller in self._callers[hook] for r in self._call_one(origin, caller, hook, **kwargs)]

    def run_start(self, run, run_dir=None, config: dict | None = None) -> None:
        self._each("bioscale_run_start", run=run, run_dir=run_dir, config=config)

    def step_end(self, run, step) -> None:
        if self._callers["bioscale_step_end"]:
            self._each("bioscale_step_end", run=run, step=step)

    def epoch_end(self, run, epoch: int, metrics: dict) -> dict:
        """Each observer, in registration (name) order, sees the line with the extras of the
        observers before it; returns all the extras."""
        extra: dict = {}
        for origin, caller in self._callers["bioscale_epoch_end"]:
            seen = {**metrics, **{k: v for k, v in extra.items() if k not in metrics}}
            try:
                results = self._call_one(origin, caller, "bioscale_epoch_end", run=run, epoch=epoch, metrics=seen)
            except StopRun as stop:
                stop.extra = extra  # what the observers before it added still reaches the line
                raise
            for result in results:
                if result:
                    extra.update(result)
        return extra

    def run_end(self, run, summary: dict) -> None:
        """Every observer hears of the ending, even after one of them raised; the first
        failure is raised after all were called."""
        failures = []
        for origin, caller in self._callers["bioscale_run_end"]:
            try:
                self._call_one(origin, caller, "bioscale_run_end", run=run, summary=summary)
            except BioscaleError as exc:
                failures.append(exc)
        if failures:
            raise failures[0]


def _register(pm: pluggy.PluginManager, plugin, name: str, origin: str) -> None:
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(f"{origin} cannot be registered: {exc}") from exc


def rule_key(name: str) -> str:
    """The name the active rule is registered under in the plugin manager."""
    return f"rule:{name}"


def rule_hooks_for(rule_spec, rule_obj) -> RuleHooks:
    """A checked facade over one rule object on a plugin manager of its own: how a composite
    rule (``rule=mix``) calls the rules it is made of, with the same contract checks."""
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    origin = f"rule {rule_spec.name!r} ({rule_spec.entry.origin})"
    _register(pm, rule_obj, rule_key(rule_spec.name), origin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{origin}: {exc}") from exc
    return RuleHooks(pm, rule_spec.name, rule_spec.entry.distribution, rule_spec.entry.version)


def build_plugin_host(
    rule_spec, rule_obj, observers: list[tuple]
) -> tuple[RuleHooks, ObserverHooks, pluggy.PluginManager]:
    """Register the rule and the observers; reject observers that implement rule hooks
    and hook implementations without a spec (misspelled names)."""
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    key = rule_key(rule_spec.name)
    origins = {key: f"rule {rule_spec.name!r} ({rule_spec.entry.origin})"}
    _register(pm, rule_obj, key, origins[key])
    for spec, obj in observers:
        origin = origins[f"observer:{spec.name}"] = f"observer {spec.name!r} ({spec.entry.origin})"
        _register(pm, obj, f"observer:{spec.name}", origin)
        for hook in hookspecs.RULE_HOOKS:
            if any(impl.plugin is obj for impl in getattr(pm.hook, hook).get_hookimpls()):
                raise PluginError(f"{origin} implements the rule hook {hook}; only the active rule may")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        plugin_name = pm.get_name(exc.plugin) if exc.plugin is not None else "?"
        where = origins.get(plugin_name, plugin_name) if plugin_name is not None else None
        raise PluginError(f"{where}: {exc}") from exc
    observer_origins = [(origins[f"observer:{spec.name}"], obj) for spec, obj in observers]
    return (
        RuleHooks(pm, rule_spec.name, rule_spec.entry.distribution, rule_spec.entry.version),
        ObserverHooks(pm, observer_origins),
        pm,
    )
