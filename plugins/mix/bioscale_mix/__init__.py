"""Per-layer mixing: ``rule=mix rules.mix.layers=[fa,fa,dtp,dtp,dtp,dtp]`` gives each layer its own rule.

``layers`` names one installed rule per layer ``1..L``. The rule of hidden layer ``k`` gives that
layer its training signal: it answers the credit hooks called with ``layer = k + 1`` (so FA there
uses its ``B_{k+1}``, a TP rule its inverse ``g_{k+1}``), and is set up for exactly its layers
(``bioscale_setup(..., layers)``: a TP rule builds inverses for those only). The output layer
trains on the task loss under every rule; its entry names the rule whose ``bioscale_output_target``
(e.g. SDTP's label distribution) starts the target chain. Each inner rule keeps its settings in its
own ``rules.<name>`` section (recipes apply as in a plain run); the forward weights all train with
``rules.mix.optimizer`` (so Kolen-Pollack's ``B`` follows ``W`` exactly only when ``rules.kp.optimizer``
equals it).

Where blocks meet:
- a target rule below a signal rule (DTP under FA): the layer above has a signal ``δh_{k+1}``, not a
  target; the mix hands the target rule the target that signal stands for under the local loss,
  ``t_{k+1} = h_{k+1} - (B / 2) δh_{k+1}`` (the trainer turns a target back into ``δh = 2 (h - t) / B``);
  under an output rule without an output target the signal is the task loss's ``∂loss/∂h_L``;
- a signal rule below a target rule (FA under DTP): it receives ``δa_{k+1}``, the local-loss gradient
  of the target above, as its ``grad_above``.

Passes: an epoch makes the passes of the inner rules that ask for more than the default forward pass;
two that ask for different ones (DTP parallel with SDTP alternating) are refused. Inverse updates,
the after-gradients hook, inverse errors and checkpoint state go to every inner rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bioscale import RuleConfig, hookimpl
from bioscale.errors import ConfigError
from bioscale.rulekit.targets import step_target

DEFAULT_PASSES = [frozenset({"forward"})]


@dataclass
class MixConfig(RuleConfig):
    layers: list[str] = field(default_factory=list)  # one installed rule name per layer 1..L


class Mix:
    """Per-layer mixing of installed rules (``rules.mix.layers``: one rule per layer)."""

    Config = MixConfig
    supports = frozenset({"pooling", "batchnorm", "skip"})  # as far as every inner rule supports them

    @staticmethod
    def uses_rules(config: MixConfig) -> list[str]:
        if not config.layers:
            raise ConfigError(
                "layers: name one installed rule per layer, e.g. rules.mix.layers=[fa,fa,dtp,dtp,dtp,dtp]"
            )
        return list(config.layers)

    def __init__(self, config: MixConfig, rules: dict):
        self.config = config
        self.rules = rules  # name -> checked hook facade (bioscale.plugin_host.RuleHooks)
        self.owner: dict[int, str] = {}
        self._signals: dict = {}  # this step's δh by layer, for targets below signals
        # the step's signals are kept to after_forward_grads only when an inner rule reads them there
        self.reads_step_after_credit = any(hooks.reads_step_after_credit for hooks in rules.values())

    # -- setup ----------------------------------------------------------------------
    @hookimpl
    def bioscale_setup(self, model, generator, layers):
        L = model.num_layers
        names = list(self.config.layers)
        if len(names) != L:
            raise ConfigError(
                f"rules.mix.layers names {len(names)} rule(s) for a net of {L} layers "
                f"({model.name if hasattr(model, 'name') else 'this model'}): name one per layer 1..{L}"
            )
        self.owner = {k: names[k - 1] for k in range(1, L + 1)}
        settling = sorted(name for name, hooks in self.rules.items() if hooks.settles_itself)
        if settling:
            raise ConfigError(
                f"rules.mix.layers: {', '.join(settling)} settle(s) the whole net and give(s) every parameter's "
                f"gradient itself; such a rule cannot share a net with other rules"
            )
        for name, hooks in self.rules.items():
            own = tuple(k for k in layers if self.owner[k] == name)
            hooks.setup(model, generator, own)
        self._check_passes()

    def _check_passes(self) -> None:
        asked = {name: [frozenset(p) for p in hooks.epoch_passes(0)] for name, hooks in self.rules.items()}
        special = {name: p for name, p in asked.items() if p != DEFAULT_PASSES}
        if len({tuple(tuple(sorted(s)) for s in p) for p in special.values()}) > 1:
            where = "; ".join(
                f"{n} (layers {self._layers_of(n)}): {[sorted(s) for s in p]}" for n, p in special.items()
            )
            raise ConfigError(
                f"rules.mix.layers: these rules ask for different passes over the data and cannot share "
                f"an epoch: {where}. Give them the same schedule"
            )

    def _layers_of(self, name: str) -> list[int]:
        return [k for k, n in self.owner.items() if n == name]

    @hookimpl
    def bioscale_epoch_passes(self, epoch):
        for hooks in self.rules.values():
            passes = hooks.epoch_passes(epoch)
            if passes != DEFAULT_PASSES:
                return passes
        return None

    # -- credit -----------------------------------------------------------------------
    @hookimpl
    def bioscale_output_target(self, step):
        self._signals = {step.num_layers: step.output_grad}  # the output's signal, for a target rule below
        return self.rules[self.owner[step.num_layers]].output_target(step)

    @hookimpl
    def bioscale_layer_target(self, step, layer, target_above):
        hooks = self.rules[self.owner[layer - 1]]
        if not hooks.implements("bioscale_layer_target"):
            return None
        if target_above is None and layer in self._signals:  # a target rule under a signal rule
            target_above = step_target(step.h[layer], step.batch_size / 2.0, self._signals[layer])  # float32
        return hooks.layer_target(step, layer, target_above)

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        k = step.model.source(layer)  # the layer the signal is for (layer - 1 in a chain)
        signal = self.rules[self.owner[k]].feedback_signal(step, layer, grad_above)
        self._signals[k] = signal
        return signal

    # -- updates --------------------------------------------------------------------
    @hookimpl
    def bioscale_update_inverse(self, step):
        losses = {}
        for hooks in self.rules.values():
            losses.update(hooks.update_inverse(step) or {})
        return losses or None

    @hookimpl
    def bioscale_after_forward_grads(self, step, grads):
        for hooks in self.rules.values():
            hooks.after_forward_grads(step, grads)

    @hookimpl
    def bioscale_inverse_error(self, step):
        errors = {}
        for hooks in self.rules.values():
            errors.update(hooks.inverse_error(step) or {})
        return errors or None

    @hookimpl
    def bioscale_state_dict(self):
        return {name: hooks.state_dict() for name, hooks in self.rules.items()}

    @hookimpl
    def bioscale_load_state_dict(self, state):
        if set(state) != set(self.rules):
            raise ValueError(f"a mix of {sorted(state)} was saved; this run mixes {sorted(self.rules)}")
        for name, hooks in self.rules.items():
            hooks.load_state_dict(state[name])
