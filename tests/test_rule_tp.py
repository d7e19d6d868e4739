"""The target-propagation family: DTP, SDTP, AO-SDTP, and DFA."""

import pytest
import torch
import torch.nn.functional as F
from bioscale.credit import assign_credit
from bioscale.errors import CheckpointError, ConfigError
from bioscale.step import StepContext, forward_step
from bioscale.testing import check_rule_contract, model_weights, new_trainer, resume_trainer, rule_plugin
from conftest import save_signed

FORWARD = frozenset({"forward"})
INVERSE = frozenset({"inverse"})
LINEAR = ["model.widths=[64,64,64]", "model.activation=identity"]


def bp_grads_wrt_hidden(model, x, y):
    """∂ℓ/∂h_l of each example's own loss (sum over the batch), by autograd through the whole net."""
    hs, h = [], x
    for layer in model.layers:
        h = layer(h)[1]
        h.retain_grad()
        hs.append(h)
    F.cross_entropy(hs[-1], y, reduction="sum").backward()
    return {l: hs[l - 1].grad.detach() for l in range(1, len(hs))}


def dtp_targets(trainer, x, y):
    step = forward_step(trainer.model, x, y, 0, 0, FORWARD)
    trace = {}
    assign_credit(trainer.rule_hooks, step, trace)
    return step, trace["targets"]


def set_linear_dtp(trainer, weights):
    """Hidden weights ``weights[l]``, zero biases, inverses g_l = exact f_l⁻¹ (linear, no bias)."""
    dtp = rule_plugin(trainer)
    with torch.no_grad():
        for l, w in weights.items():
            trainer.model.layer(l).op.weight.copy_(w)
            trainer.model.layer(l).op.bias.zero_()
        for key, g in dtp.inverses.items():
            w = weights[int(key)]
            g.weight.copy_(torch.linalg.inv(w).t())  # input_vjp(h, V) = h V = (W⁻¹ hᵀ)ᵀ
            g.bias.zero_()


def cosines(trainer, step, targets):
    grads = bp_grads_wrt_hidden(trainer.model, step.x, step.y)
    return {
        l: F.cosine_similarity((targets[l] - step.h[l]).flatten(), -grads[l].flatten(), dim=0).item() for l in targets
    }


def test_dtp_targets_follow_bp_for_orthogonal_linear_layers_with_exact_inverses(tmp_path):
    trainer = new_trainer("dtp", tmp_path, [*LINEAR, "rules.dtp.alpha=0.001", "rules.dtp.inverse_activation=identity"])
    gen = torch.Generator().manual_seed(0)
    orthogonal = {l: torch.linalg.qr(torch.randn(64, 64, generator=gen))[0] for l in (1, 2, 3)}
    set_linear_dtp(trainer, orthogonal)
    step, targets = dtp_targets(trainer, trainer.data.train.x[:100], trainer.data.train.y[:100])
    assert set(targets) == {1, 2, 3}
    cos = cosines(trainer, step, targets)
    assert all(c > 0.99 for c in cos.values()), cos


def test_dtp_targets_leave_the_bp_direction_for_non_orthogonal_layers(tmp_path):
    trainer = new_trainer("dtp", tmp_path, [*LINEAR, "rules.dtp.alpha=0.001", "rules.dtp.inverse_activation=identity"])
    gen = torch.Generator().manual_seed(0)
    skewed = {}
    for l in (1, 2, 3):
        q1, q2 = (torch.linalg.qr(torch.randn(64, 64, generator=gen))[0] for _ in range(2))
        skewed[l] = q1 @ torch.diag(torch.logspace(-1, 1, 64)) @ q2  # singular values 0.1 .. 10
    set_linear_dtp(trainer, skewed)
    step, targets = dtp_targets(trainer, trainer.data.train.x[:100], trainer.data.train.y[:100])
    cos = cosines(trainer, step, targets)
    assert cos[3] > 0.99  # the penultimate target is a gradient step in every case
    assert cos[2] < 0.9 and cos[1] < 0.9, cos


@pytest.mark.parametrize("rule", ["dtp", "sdtp", "aosdtp"])
def test_inverse_training_lowers_reconstruction_error(tmp_path, rule):
    trainer = new_trainer(rule, tmp_path)
    x, y = trainer.data.train.x[:256], trainer.data.train.y[:256]
    fixed = forward_step(trainer.model, x, y, 0, 0, INVERSE)
    before = trainer.rule_hooks.inverse_error(fixed)
    assert set(before) == set(rule_plugin(trainer).inverse_layers(trainer.model))
    for xb, yb in trainer.data.train.batches(64, torch.Generator().manual_seed(0)):
        trainer.train_step(xb, yb, 0, INVERSE, 0.0)
    after = trainer.rule_hooks.inverse_error(fixed)
    for l in before:
        assert after[l] < before[l], (l, before[l], after[l])
    # (SDTP's top inverse reads only 10 class probabilities and cannot get close; the rest must)
    assert sum(after.values()) < 0.8 * sum(before.values())


@pytest.mark.parametrize("rule", ["sdtp", "aosdtp"])
def test_simplified_rules_never_take_a_task_gradient_at_a_hidden_layer(tmp_path, monkeypatch, rule):
    trainer = new_trainer(rule, tmp_path)

    def forbidden(*args, **kwargs):
        raise AssertionError("a task-loss gradient was propagated below the output layer")

    monkeypatch.setattr(StepContext, "layer_vjp", forbidden)
    monkeypatch.setattr(torch.autograd, "grad", forbidden)
    monkeypatch.setattr(torch.autograd, "backward", forbidden)
    monkeypatch.setattr(torch.Tensor, "backward", forbidden)
    before = model_weights(trainer)
    for xb, yb in trainer.data.train.batches(64, torch.Generator().manual_seed(0)):
        trainer.train_step(xb, yb, 0, FORWARD, 0.0)  # forward updates: targets only
    after = model_weights(trainer)
    assert all(not torch.equal(before[k], after[k]) for k in before)


def test_dtp_does_take_one_layer_of_bp_for_its_penultimate_target(tmp_path, monkeypatch):
    trainer = new_trainer("dtp", tmp_path)
    calls = []
    original = StepContext.layer_vjp
    monkeypatch.setattr(
        StepContext, "layer_vjp", lambda self, l, g, weight=None: calls.append(l) or original(self, l, g, weight)
    )
    x, y = trainer.data.train.x[:64], trainer.data.train.y[:64]
    trainer.train_step(x, y, 0, FORWARD, 0.0)
    assert calls == [trainer.model.num_layers]


def test_aosdtp_auxiliary_weights_never_change(tmp_path):
    trainer = new_trainer("aosdtp", tmp_path, ["rules.aosdtp.aux_units=40", "rules.aosdtp.schedule=parallel"])
    aux = rule_plugin(trainer).aux_weight
    assert aux.shape == (40, 32)
    initial = aux.clone()
    trainer.fit()
    assert torch.equal(aux, initial)
    state = torch.load(trainer.run_dir / "checkpoint.pt", weights_only=True)
    assert torch.equal(state["rule"]["aux_weight"], initial)
    assert state["rule"]["inverses"]["3.weight"].shape == (10 + 40, 32)


def test_aosdtp_aux_gain_scales_the_same_random_draw(tmp_path):
    base = ["rules.aosdtp.aux_units=40", "rules.aosdtp.schedule=parallel"]
    plain = rule_plugin(new_trainer("aosdtp", tmp_path / "a", base)).aux_weight
    scaled = rule_plugin(new_trainer("aosdtp", tmp_path / "b", base + ["rules.aosdtp.aux_gain=3.0"])).aux_weight
    assert not torch.equal(plain, scaled)
    torch.testing.assert_close(scaled, 3.0 * plain)
    bound = (6.0 / (32 + 40)) ** 0.5  # Glorot-uniform bound of R: 32 penultimate units, 40 features
    assert plain.abs().max() <= bound and scaled.abs().max() > bound


def test_aosdtp_top_sigma_sets_the_noise_of_the_top_inverse_only(tmp_path):
    """One inverse step on the same batch: the top inverse sees only ``top_sigma``'s noise
    (the same draws whatever ``sigma`` is), the lower inverses only ``sigma``'s."""
    base = ["rules.aosdtp.aux_units=40", "rules.aosdtp.schedule=parallel"]
    runs = {
        "a": ["rules.aosdtp.sigma=0.5", "rules.aosdtp.top_sigma=0.0"],
        "b": ["rules.aosdtp.sigma=0.0", "rules.aosdtp.top_sigma=0.0"],
        "c": ["rules.aosdtp.sigma=0.5"],
    }
    after = {}
    for name, extra in runs.items():
        trainer = new_trainer("aosdtp", tmp_path / name, base + extra)
        trainer.train_step(trainer.data.train.x[:64], trainer.data.train.y[:64], 0, INVERSE, 0.0)
        after[name] = {k: g.weight.detach().clone() for k, g in rule_plugin(trainer).inverses.items()}
    top = str(trainer.model.num_layers)
    assert torch.equal(after["a"][top], after["b"][top])
    assert not torch.equal(after["a"][top], after["c"][top])  # default: top_sigma = sigma
    for k in after["a"]:
        if k != top:
            assert torch.equal(after["a"][k], after["c"][k]) and not torch.equal(after["a"][k], after["b"][k])


def test_aosdtp_top_inverse_lr_scale_scales_only_the_top_inverse_step(tmp_path):
    """Adam's first step is ``lr · g / (|g| + eps)``: scaling g_L's lr by 3 triples its
    weight change and leaves every lower inverse's change as it was."""
    base = [
        "rules.aosdtp.aux_units=40",
        "rules.aosdtp.schedule=parallel",
        "rules.aosdtp.inverse_optimizer.schedule=constant",
    ]
    change = {}
    for scale in ("1.0", "3.0"):
        trainer = new_trainer("aosdtp", tmp_path / scale, base + [f"rules.aosdtp.top_inverse_lr_scale={scale}"])
        inverses = rule_plugin(trainer).inverses
        before = {k: g.weight.detach().clone() for k, g in inverses.items()}
        trainer.train_step(trainer.data.train.x[:64], trainer.data.train.y[:64], 0, INVERSE, 0.0)
        change[scale] = {k: g.weight.detach() - before[k] for k, g in inverses.items()}
    top = str(trainer.model.num_layers)
    assert change["1.0"][top].abs().max() > 0
    torch.testing.assert_close(change["3.0"][top], 3.0 * change["1.0"][top], rtol=1e-4, atol=1e-9)
    for k in change["1.0"]:
        if k != top:
            torch.testing.assert_close(change["3.0"][k], change["1.0"][k], rtol=0, atol=0)


def _inverse_adam_state_as(state: dict, layout: str, sizes: list, top_scale: float) -> dict:
    """``state`` (an inverse Adam state dict) rewritten in an older or other grouping of the
    same moments: ``one_flat`` (one group over one flat tensor, before the top inverse had
    its own), ``one_group`` (one group over both flats) or ``two_groups`` (lr scales 1 and
    ``top_scale``, as written before a scale of 1 shared one group)."""
    order = [i for g in state["param_groups"] for i in g["params"]]
    joined = {k: torch.cat([state["state"][i][k] for i in order]) for k in ("exp_avg", "exp_avg_sq")}
    step = state["state"][order[0]]["step"]
    group = {k: v for k, v in state["param_groups"][0].items() if k not in ("params", "lr_scale")}
    if layout == "one_flat":
        return {"state": {0: {"step": step, **joined}}, "param_groups": [{**group, "params": [0]}]}
    parts = {i: {"step": step, **{k: v.split(sizes)[i] for k, v in joined.items()}} for i in range(2)}
    if layout == "one_group":
        return {"state": parts, "param_groups": [{**group, "params": [0, 1]}]}
    return {
        "state": parts,
        "param_groups": [{**group, "params": [0], "lr_scale": 1.0}, {**group, "params": [1], "lr_scale": top_scale}],
    }


@pytest.mark.parametrize(
    "rule, extra, top_scale, layouts",
    [
        ("sdtp", [], 1.0, ["one_flat", "two_groups"]),
        (
            "aosdtp",
            ["rules.aosdtp.aux_units=40", "rules.aosdtp.top_inverse_lr_scale=0.3"],
            0.3,
            ["one_flat", "one_group"],
        ),
    ],
)
def test_tp_inverse_adam_state_of_another_grouping_is_refused(tmp_path, rule, extra, top_scale, layouts):
    """A checkpoint whose inverse Adam state groups the flat parameters otherwise than this
    version does (no migration between layouts) is refused as a checkpoint error on resume,
    and the checkpoint file is left as it was."""
    trainer = new_trainer(rule, tmp_path / "run", [f"rules.{rule}.schedule=parallel", *extra])
    trainer.fit(stop_after=1)
    path = trainer.run_dir / "checkpoint.pt"
    good = torch.load(path, weights_only=True)
    sizes = [f.numel() for f in rule_plugin(trainer).flats]
    for layout in layouts:
        foreign = _inverse_adam_state_as(good["rule"]["optimizer"], layout, sizes, top_scale)
        save_signed({**good, "rule": {**good["rule"], "optimizer": foreign}}, path)
        before = path.read_bytes()
        with pytest.raises(CheckpointError, match="does not match this run"):
            resume_trainer(trainer.run_dir)
        assert path.read_bytes() == before


def test_tp_inverse_adam_groups_follow_the_top_lr_scale(tmp_path):
    """One Adam group over both flat parameters when the top inverse's lr is not scaled
    (one fused kernel call per step), two when it is."""
    plain = rule_plugin(new_trainer("sdtp", tmp_path / "a", []))
    scaled = rule_plugin(
        new_trainer("aosdtp", tmp_path / "b", ["rules.aosdtp.aux_units=40", "rules.aosdtp.top_inverse_lr_scale=0.3"])
    )
    assert [len(g["params"]) for g in plain.optimizer.adam.param_groups] == [2]
    assert [(len(g["params"]), g["lr_scale"]) for g in scaled.optimizer.adam.param_groups] == [(1, 1.0), (1, 0.3)]


@pytest.mark.parametrize(
    "key, value, message", [("top_sigma", "-0.1", "must be >= 0"), ("top_inverse_lr_scale", "0.0", "must be > 0")]
)
def test_aosdtp_bad_top_inverse_setting_is_refused_before_training(tmp_path, key, value, message):
    with pytest.raises(ConfigError, match=f"rules.aosdtp.{key} {message}"):
        new_trainer("aosdtp", tmp_path, [f"rules.aosdtp.{key}={value}"])
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("activation", ["tanh", "identity"])
def test_aosdtp_aux_features_use_aux_activation(tmp_path, activation):
    trainer = new_trainer(
        "aosdtp", tmp_path, ["rules.aosdtp.aux_units=40", f"rules.aosdtp.aux_activation={activation}"]
    )
    plugin = rule_plugin(trainer)
    h = torch.randn(16, 32)
    linear = h @ plugin.aux_weight.t()
    torch.testing.assert_close(plugin.aux(h), torch.tanh(linear) if activation == "tanh" else linear)


def test_aosdtp_unknown_aux_activation_is_refused_before_training(tmp_path):
    with pytest.raises(ConfigError, match="rules.aosdtp.aux_activation: unknown activation 'swish'; valid: .*identity"):
        new_trainer("aosdtp", tmp_path, ["rules.aosdtp.aux_activation=swish"])
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("gain", ["0.0", "-1.0"])
def test_aosdtp_non_positive_aux_gain_is_refused_before_training(tmp_path, gain):
    with pytest.raises(ConfigError, match="rules.aosdtp.aux_gain must be > 0"):
        new_trainer("aosdtp", tmp_path, [f"rules.aosdtp.aux_gain={gain}"])
    assert not any(tmp_path.iterdir())  # refused before any run folder is made


@pytest.mark.parametrize("rule", ["dtp", "sdtp", "aosdtp"])
def test_alternating_passes_touch_only_their_own_parameters(tmp_path, rule):
    trainer = new_trainer(rule, tmp_path, [f"rules.{rule}.schedule=alternating"])
    tp = rule_plugin(trainer)
    assert trainer.rule_hooks.epoch_passes(0) == [INVERSE, FORWARD]
    inverse = lambda: {k: v.clone() for k, v in tp.inverses.state_dict().items()}  # noqa: E731
    x, y = trainer.data.train.x[:64], trainer.data.train.y[:64]
    m0, i0 = model_weights(trainer), inverse()
    trainer.train_step(x, y, 0, INVERSE, 0.0)
    m1, i1 = model_weights(trainer), inverse()
    assert all(torch.equal(m0[k], m1[k]) for k in m0)
    assert all(not torch.equal(i0[k], i1[k]) for k in i0)
    trainer.train_step(x, y, 0, FORWARD, 0.0)
    m2, i2 = model_weights(trainer), inverse()
    assert all(torch.equal(i1[k], i2[k]) for k in i1)
    assert all(not torch.equal(m1[k], m2[k]) for k in m1)


def test_parallel_schedule_updates_both_every_step(tmp_path):
    trainer = new_trainer("dtp", tmp_path, ["rules.dtp.schedule=parallel"])
    assert trainer.rule_hooks.epoch_passes(0) == [frozenset({"forward", "inverse"})]


def test_dfa_with_exact_downstream_products_is_bp_for_a_linear_network(tmp_path):
    trainer = new_trainer("dfa", tmp_path, ["model.widths=[40,30,20]", "model.activation=identity"])
    dfa = rule_plugin(trainer)
    L = trainer.model.num_layers
    with torch.no_grad():
        for l in range(1, L):
            product = trainer.model.layer(L).op.weight
            for k in range(L - 1, l, -1):
                product = product @ trainer.model.layer(k).op.weight
            dfa.feedback[l].copy_(product)  # e D_l = e W_L ... W_{l+1} = BP's signal at h_l
    x, y = trainer.data.train.x[:50], trainer.data.train.y[:50]
    probe = trainer.probe_gradients(x, y)
    for name, mine, ref in zip(probe["names"], probe["rule"], probe["exact"]):
        torch.testing.assert_close(mine, ref, rtol=1e-4, atol=1e-6, msg=name)


def test_dfa_sends_the_output_error_directly(tmp_path, monkeypatch):
    trainer = new_trainer("dfa", tmp_path)
    monkeypatch.setattr(
        StepContext, "layer_vjp", lambda *a, **k: (_ for _ in ()).throw(AssertionError("backward pass"))
    )
    x, y = trainer.data.train.x[:64], trainer.data.train.y[:64]
    step = forward_step(trainer.model, x, y, 0, 0, FORWARD)
    trace = {}
    assign_credit(trainer.rule_hooks, step, trace)
    dfa = rule_plugin(trainer)
    for l, signal in trace["signals"].items():
        torch.testing.assert_close(signal, step.output_grad @ dfa.feedback[l])


def test_dfa_shared_feedback_uses_one_matrix(tmp_path):
    trainer = new_trainer("dfa", tmp_path, ["rules.dfa.feedback=shared", "model.widths=[32,16]"])
    dfa = rule_plugin(trainer)
    torch.testing.assert_close(dfa.feedback[2], dfa.feedback[1][:, :16])
    check_rule_contract("dfa", tmp_path / "contract", ["rules.dfa.feedback=shared"])


@pytest.mark.parametrize("rule", ["sdtp", "aosdtp"])
def test_sdtp_targets_the_label_distribution_of_the_task_loss(tmp_path, rule):
    """With trainer.label_smoothing ε, the penultimate target is built from the smoothed label
    distribution (the smoothed loss's minimiser), not from the one-hot label."""
    eps = 0.3
    trainer = new_trainer(rule, tmp_path, [f"trainer.label_smoothing={eps}", f"rules.{rule}.schedule=parallel"])
    x, y = trainer.data.train.x[:40], trainer.data.train.y[:40]
    step = forward_step(trainer.model, x, y, 0, 0, FORWARD, label_smoothing=eps)
    trace = {}
    assign_credit(trainer.rule_hooks, step, trace)
    plugin, L = rule_plugin(trainer), step.num_layers
    g = plugin.inverses[str(L)]
    q = (1 - eps) * F.one_hot(y, step.logits.shape[1]).float() + eps / step.logits.shape[1]
    p = F.softmax(step.logits, dim=1)
    if rule == "aosdtp":
        z = plugin.aux(step.h[L - 1])
        q, p = torch.cat([q, z], 1), torch.cat([p, z], 1)
    expected = step.h[L - 1] + g(q) - g(p)
    torch.testing.assert_close(trace["targets"][L - 1], expected, rtol=1e-5, atol=1e-6)
    onehot_target = step.h[L - 1] + g(torch.cat([F.one_hot(y, 10).float(), q[:, 10:]], 1)) - g(p)
    assert not torch.allclose(trace["targets"][L - 1], onehot_target, atol=1e-4)


@pytest.mark.parametrize(
    "rule, tokens",
    [
        ("dfa", []),
        ("dtp", ["rules.dtp.schedule=parallel"]),
        ("dtp", ["rules.dtp.schedule=alternating"]),
        ("sdtp", ["rules.sdtp.schedule=parallel"]),
        ("sdtp", ["rules.sdtp.schedule=alternating"]),
        ("aosdtp", ["rules.aosdtp.schedule=parallel", "rules.aosdtp.aux_units=64"]),
        ("aosdtp", ["rules.aosdtp.schedule=alternating"]),
    ],
)
def test_each_rule_learns_and_resumes_exactly(tmp_path, rule, tokens):
    # the kit's 512 digits in batches of 16: 32 steps an epoch, enough to learn
    summary = check_rule_contract(rule, tmp_path, [*tokens, "trainer.batch_size=16", f"rules.{rule}.optimizer.lr=0.01"])
    assert summary["final_test_error"] < 60  # chance is 90 %


@pytest.mark.parametrize("kind", ["linear", "conv", "lc"])
def test_inverse_models_closed_form_gradients_match_autograd(kind):
    from bioscale.architectures import Conv2dOp, LinearOp, LocallyConnected2d
    from bioscale.rulekit import DenseInverse, LayerInverse

    gen = torch.Generator().manual_seed(0)
    op = {
        "linear": lambda: LinearOp((12,), 7),
        "conv": lambda: Conv2dOp((3, 8, 8), 4, 3, 2),
        "lc": lambda: LocallyConnected2d(3, 4, 3, 2, None, (8, 8)),
    }[kind]()
    op.reset_parameters(gen)
    for g, inp in (
        (LayerInverse(op, "tanh", gen), torch.randn(5, *op.out_shape)),
        (DenseInverse(6, op.in_shape, "tanh", gen), torch.randn(5, 6)),
    ):
        with torch.no_grad():
            g.bias.normal_(generator=gen)
        out = g(inp)
        assert out.shape == (5, *op.in_shape)
        grad_out = torch.randn_like(out)
        ref_w, ref_b = torch.autograd.grad(out, [g.weight, g.bias], grad_out)
        mine = g.param_grads(inp, out.detach(), grad_out)
        torch.testing.assert_close(mine["weight"], ref_w, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(mine["bias"], ref_b, rtol=1e-4, atol=1e-5)
        written = {"weight": torch.full_like(g.weight, 3.0), "bias": torch.full_like(g.bias, 3.0)}
        g.write_param_grads(inp, out.detach(), grad_out, written)  # overwrites, the TP update's path
        torch.testing.assert_close(written["weight"], ref_w, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(written["bias"], ref_b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("rule", ["dtp", "sdtp", "aosdtp"])
def test_unknown_inverse_activation_is_a_config_error_naming_the_key(tmp_path, rule):
    with pytest.raises(ConfigError, match=rf"^rules\.{rule}\.inverse_activation: unknown activation 'swish'"):
        new_trainer(rule, tmp_path, [f"rules.{rule}.inverse_activation=swish"])
    assert not any(tmp_path.iterdir())
