"""Equilibrium propagation: its gradient against autograd through the settled dynamics, its phases,
evaluation from the settled state, refusals and the kit's contract."""

import pytest
import torch
import torch.nn.functional as F
from bioscale.testing import check_rule_contract, new_trainer, rule_plugin
from conftest import run_cli

SMALL = ["model.widths=[16,12]"]  # two hidden layers and a readout


def _settled_loss(model, x, y, sweeps: int):
    """The mean task loss at the free fixed point, differentiable in the parameters: the free
    dynamics unrolled ``sweeps`` times from the forward pass (converged: autograd through them is the
    implicit gradient of ``ℓ(s*)``)."""
    ops, acts, L = model.ops, model.activations, model.num_layers
    s = [x]
    for op, act in zip(ops[:-1], acts[:-1]):
        s.append(act(op(s[-1])))
    for _ in range(sweeps):
        for l in range(1, L):
            drive = ops[l - 1](s[l - 1])
            if l < L - 1:
                drive = drive + F.linear(s[l + 1], ops[l].weight.t())
            s[l] = acts[l - 1](drive)
    return F.cross_entropy(ops[L - 1](s[L - 1]), y)


def _ep_and_autograd(tmp_path, beta: float, symmetric: bool = True):
    tokens = [*SMALL, f"rules.ep.beta={beta}", "rules.ep.free_steps=300", "rules.ep.nudged_steps=300"]
    trainer = new_trainer("ep", tmp_path, [*tokens, f"rules.ep.symmetric={str(symmetric).lower()}"])
    x, y = trainer.data.train.x[:64], trainer.data.train.y[:64]
    probe = trainer.probe_gradients(x, y)
    params = [p for _, p in trainer.model.named_parameters()]
    with torch.enable_grad():
        exact = torch.autograd.grad(_settled_loss(trainer.model, x, y, 300), params)
    return probe["names"], probe["rule"], exact


def test_ep_gradient_tends_to_the_settled_loss_gradient_as_beta_vanishes(tmp_path):
    """Symmetric nudging: the error is O(β²) (Laborieux et al. 2021): 10 x smaller β, 100 x smaller error."""
    errors = {}
    for beta in (0.1, 0.01):
        names, mine, exact = _ep_and_autograd(tmp_path / str(beta), beta)
        errors[beta] = {n: ((m - e).norm() / e.norm()).item() for n, m, e in zip(names, mine, exact)}
    for name, err in errors[0.01].items():
        assert err < 1e-3 and err < errors[0.1][name] / 20 + 1e-5, (name, err, errors[0.1][name])


def test_one_sided_nudging_is_biased_at_first_order(tmp_path):
    """+β against the free state: an O(β) bias that the symmetric estimate removes."""
    names, one_sided, exact = _ep_and_autograd(tmp_path / "one", 0.1, symmetric=False)
    _, symmetric, _ = _ep_and_autograd(tmp_path / "two", 0.1)
    hidden = [i for i, n in enumerate(names) if n.startswith("layers.0.")]
    err = lambda g, i: ((g[i] - exact[i]).norm() / exact[i].norm()).item()  # noqa: E731
    assert all(err(one_sided, i) > 3 * err(symmetric, i) for i in hidden)


def test_evaluation_predicts_from_the_free_fixed_point(tmp_path):
    trainer = new_trainer("ep", tmp_path, [*SMALL, "rules.ep.free_steps=200"])
    rule, model = rule_plugin(trainer), trainer.model
    x = trainer.data.test.x[:32]
    settled = rule.bioscale_predict(model=model, x=x)
    assert not torch.allclose(settled, model(x))  # the top-down terms moved the states
    again = rule._settle(model, rule._start(model, x), x, 200, 0.0, None)
    torch.testing.assert_close(settled, model.ops[-1](again[-1]))
    start = rule._start(model, x)  # settled: one more sweep moves the states 100 x less than the first did
    first = (rule._settle(model, start, x, 1, 0.0, None)[-1] - start[-1]).norm()
    last = (rule._settle(model, again, x, 1, 0.0, None)[-1] - again[-1]).norm()
    assert last < first / 100, (last, first)


def test_ep_keeps_the_rule_contract(tmp_path):
    check_rule_contract("ep", tmp_path, ["rules.ep.free_steps=15", "rules.ep.nudged_steps=6"])


def test_ep_refuses_a_convolutional_net_naming_the_layer(tmp_path):
    blocks = "model.blocks=[{type: conv, channels: 4, kernel: 3}]"
    result = run_cli("train", "rule=ep", blocks, "trainer.epochs=1", f"output_dir={tmp_path}")
    assert result.returncode == 2 and "ep: layer 1" in result.stderr and "Conv2dOp" in result.stderr


class _Partial:
    """Settles nothing and forgets the readout's bias: a contract error naming what is missing."""

    def __init__(self, config):
        pass

    def bioscale_parameter_grads(self, step):
        return {n: p.detach().clone() for n, p in step.model.named_parameters() if n != "layers.2.op.bias"}


def test_parameter_grads_must_cover_every_parameter(tmp_path):
    from bioscale import RuleConfig, hookimpl
    from bioscale.errors import RuleContractError
    from bioscale.testing import fake_entry

    class Partial(_Partial):
        Config = RuleConfig
        bioscale_parameter_grads = hookimpl(_Partial.bioscale_parameter_grads)

    trainer = new_trainer(fake_entry(Partial, "partial"), tmp_path, SMALL)
    x, y = trainer.data.train.x[:16], trainer.data.train.y[:16]
    with pytest.raises(RuleContractError, match="bioscale_parameter_grads.*layers.2.op.bias"):
        trainer.train_step(x, y, 0, frozenset({"forward"}), 0.0)


class _Misshapen:
    """Gives every parameter a gradient, one of them wrong as the test says; predicts one row too few."""

    def __init__(self, config):
        pass

    fault = "shape"

    def bioscale_parameter_grads(self, step):
        grads = {n: torch.zeros_like(p) for n, p in step.model.named_parameters()}
        bias = grads["layers.2.op.bias"]
        grads["layers.2.op.bias"] = bias[:-1] if self.fault == "shape" else bias.half()
        return grads

    def bioscale_predict(self, model, x):
        return model(x)[:-1]


@pytest.mark.parametrize("fault, message", [("shape", r"shape \(9,\)"), ("dtype", "dtype torch.float16")])
def test_parameter_grads_are_checked_like_the_parameters(tmp_path, fault, message):
    from bioscale import RuleConfig, hookimpl
    from bioscale.errors import RuleContractError
    from bioscale.testing import fake_entry

    class Misshapen(_Misshapen):
        Config = RuleConfig
        bioscale_parameter_grads = hookimpl(_Misshapen.bioscale_parameter_grads)
        bioscale_predict = hookimpl(_Misshapen.bioscale_predict)

    Misshapen.fault = fault
    trainer = new_trainer(fake_entry(Misshapen, "misshapen"), tmp_path, SMALL)
    x, y = trainer.data.train.x[:16], trainer.data.train.y[:16]
    expected = r"expected a tensor of shape \(10,\), dtype torch.float32"
    with pytest.raises(
        RuleContractError, match=rf"bioscale_parameter_grads \[layers.2.op.bias\].*{message}.*{expected}"
    ):
        trainer.train_step(x, y, 0, frozenset({"forward"}), 0.0)
    with pytest.raises(RuleContractError, match=r"bioscale_predict.*shape \(15, 10\).*expected.*shape \(16, 10\)"):
        trainer.rule_hooks.predict(trainer.model, x)


def test_mix_refuses_a_rule_that_settles_the_net_itself(tmp_path):
    from bioscale.errors import ConfigError

    with pytest.raises(ConfigError, match="ep settle"):
        new_trainer("mix", tmp_path, [*SMALL, "rules.mix.layers=[fa,fa,ep]"])
