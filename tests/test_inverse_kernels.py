"""The stacked inverse kernel (rulekit.inverse_kernels.StackedKernel) computes what single-layer
kernels compute, and the flat parameter storage it reads the forward weights through."""

import pytest
import torch
from bioscale.architectures import activations
from bioscale.flat_parameters import can_flatten, flatten_parameters
from bioscale.rulekit.inverse_kernels import StackedReader, stacked_view
from bioscale.rulekit.noise import NoiseSource
from bioscale.step import forward_step
from bioscale.testing import new_trainer, rule_plugin
from omegaconf import OmegaConf

INVERSE = frozenset({"inverse"})
EQUAL_WIDTHS = ["model.widths=[24,24,24,24,24]"]


class SequenceNoise(NoiseSource):
    """Noise stub (unshared draws): the next values of one fixed sequence, in request order,
    whatever the shapes asked for, so the grouped path (one draw for the group) and the
    per-layer path (one draw per layer, same order) get the same numbers."""

    def __init__(self, total: int = 1 << 16):
        super().__init__(torch.Generator(), "cpu", shared=False)
        self.values = torch.randn(total, generator=torch.Generator().manual_seed(5))
        self.position = 0

    def normal_like(self, t, std):
        n = t.numel()
        out = self.values[self.position : self.position + n].reshape(t.shape) * std
        self.position += n
        return out.clone()


def inverse_update(rule, step, units, noise=None):
    """One inverse update with the given training units and ``noise`` (default: the sequence
    noise); the Adam step is skipped so the gradient can be read. Returns (losses, flat gradient)."""
    rule.units, rule.noise, step_fn = units, noise or SequenceNoise(), rule.optimizer.step
    rule.optimizer.step = lambda step: None
    try:
        losses = rule.bioscale_update_inverse(step)
    finally:
        rule.optimizer.step = step_fn
    return losses, torch.cat([f.grad for f in rule.flats])


@pytest.mark.parametrize("name", ["dtp", "sdtp", "aosdtp"])
def test_stacked_inverse_update_equals_the_single_layer_update(tmp_path, name):
    trainer = new_trainer(name, tmp_path, EQUAL_WIDTHS)
    rule = rule_plugin(trainer)
    L = trainer.model.num_layers
    groups = [u for u in rule.units if u.stacked]
    assert [g.layers for g in groups] == [list(range(2, L))]  # every inverse below the top, one group
    data = trainer.data.train
    step = forward_step(trainer.model, data.x[:32], data.y[:32], 0, 0, INVERSE)
    grouped_losses, grouped_grad = inverse_update(rule, step, rule.units)
    single_losses, single_grad = inverse_update(rule, step, rule._training_units(trainer.model, stack=False))
    assert grouped_losses.keys() == single_losses.keys() == {int(k) for k in rule.inverses}
    for l in single_losses:
        torch.testing.assert_close(grouped_losses[l], single_losses[l], rtol=1e-5, atol=1e-7)
    assert single_grad.abs().sum() > 0
    torch.testing.assert_close(grouped_grad, single_grad, rtol=1e-5, atol=1e-7)


def shared_noise(seed):
    return NoiseSource(torch.Generator().manual_seed(seed), "cpu", shared=True)


@pytest.mark.parametrize("name", ["dtp", "sdtp", "aosdtp"])
def test_shared_noise_gives_stacked_and_single_kernels_the_same_update(tmp_path, name):
    """With shared noise both paths draw one (B, n) ε from the same generator state (the group
    broadcasts it, the per-layer path reuses it layer after layer), so they agree exactly as
    the unshared paths do with a common noise sequence."""
    trainer = new_trainer(name, tmp_path, EQUAL_WIDTHS)
    rule = rule_plugin(trainer)
    assert any(u.stacked for u in rule.units)
    data = trainer.data.train
    step = forward_step(trainer.model, data.x[:32], data.y[:32], 0, 0, INVERSE)
    grouped_losses, grouped = inverse_update(rule, step, rule.units, shared_noise(3))
    single_losses, single = inverse_update(
        rule, step, rule._training_units(trainer.model, stack=False), shared_noise(3)
    )
    assert single.abs().sum() > 0
    torch.testing.assert_close(grouped, single, rtol=1e-5, atol=1e-7)
    for l in single_losses:
        torch.testing.assert_close(grouped_losses[l], single_losses[l], rtol=1e-5, atol=1e-7)
    _, reseeded = inverse_update(rule, step, rule.units, shared_noise(4))
    assert not torch.allclose(reseeded, grouped)  # the noise does reach the update


def test_grouped_weights_are_views_of_the_checkpointed_parameters(tmp_path):
    trainer = new_trainer("sdtp", tmp_path, EQUAL_WIDTHS)
    rule = rule_plugin(trainer)
    (group,) = [u for u in rule.units if u.stacked]
    for i, l in enumerate(group.layers):
        g = rule.inverses[str(l)]
        assert group.weight[i].data_ptr() == g.weight.data_ptr() and torch.equal(group.weight[i], g.weight)
        assert group.bias_grad[i].data_ptr() == g.bias.grad.data_ptr()
    with torch.no_grad():
        rule.inverses[str(group.layers[1])].weight.add_(1.0)  # e.g. a checkpoint load copying into the parameter
    assert torch.equal(group.weight[1], rule.inverses[str(group.layers[1])].weight)


def test_unequal_widths_and_conv_layers_take_single_kernels(tmp_path):
    trainer = new_trainer("sdtp", tmp_path, ["model.widths=[24,16,16,16]"])
    units = rule_plugin(trainer).units
    groups = [u.layers for u in units if u.stacked]
    assert groups == [[3, 4]]  # layer 2 maps 24 -> 16, layers 3 and 4 map 16 -> 16, 5 is the top
    assert [u.layers for u in units if not u.stacked] == [[2], [5]]


def test_a_rule_overriding_read_must_declare_stackable():
    from bioscale.rulekit import TargetPropagation

    with pytest.raises(TypeError, match="overrides read: declare stackable"):

        class Forgetful(TargetPropagation):
            def read(self, l, h_out, h_in):
                return 2 * h_out


def test_a_rule_declaring_itself_not_stackable_opts_out_of_stacking(tmp_path):
    trainer = new_trainer("sdtp", tmp_path, EQUAL_WIDTHS)
    base = rule_plugin(trainer)

    class Scaled(type(base)):
        stackable = False

        def read(self, l, h_out, h_in):
            return 2 * super().read(l, h_out, h_in)

    rule = Scaled(base.config)
    rule.bioscale_setup(trainer.model, torch.Generator().manual_seed(0), tuple(range(1, trainer.model.num_layers)))
    assert not any(u.stacked for u in rule.units)
    assert [u.layers for u in rule.units] == [[int(k)] for k in rule.inverses]


@pytest.mark.parametrize("sigma_of_layer_3, groups", [(0.1, [[2, 3, 4, 5]]), (0.7, [])])
def test_a_group_shares_one_noise_std(tmp_path, sigma_of_layer_3, groups):
    """A rule giving one inverse below the top its own noise std gets those layers trained
    one by one (each with its own std); equal stds keep the group, at that std."""
    trainer = new_trainer("sdtp", tmp_path, [*EQUAL_WIDTHS, "rules.sdtp.sigma=0.1"])
    base = rule_plugin(trainer)

    class PerLayerNoise(type(base)):
        def inverse_sigma(self, l):
            return sigma_of_layer_3 if l == 3 else self.config.sigma

    rule = PerLayerNoise(base.config)
    rule.bioscale_setup(trainer.model, torch.Generator().manual_seed(0), tuple(range(1, trainer.model.num_layers)))
    assert [u.layers for u in rule.units if u.stacked] == groups
    assert [u.layers[0] for u in rule.units if not u.stacked] == ([6] if groups else [2, 3, 4, 5, 6])
    seen = []

    class Recorder(NoiseSource):
        def perturb(self, clean, std, stacked=False):
            seen.append(std)
            return clean.clone()

    rule.noise = Recorder(torch.Generator(), "cpu")
    step = forward_step(trainer.model, trainer.data.train.x[:8], trainer.data.train.y[:8], 0, 0, INVERSE)
    rule.bioscale_update_inverse(step)
    assert seen == ([0.1, 0.1] if groups else [0.1, sigma_of_layer_3, 0.1, 0.1, 0.1])


def test_stacked_view_needs_equally_spaced_equal_tensors():
    flat = torch.arange(30.0)
    parts = [flat[0:6].view(2, 3), flat[10:16].view(2, 3), flat[20:26].view(2, 3)]
    view = stacked_view(parts)
    assert view.shape == (3, 2, 3) and all(torch.equal(view[i], p) for i, p in enumerate(parts))
    assert stacked_view([flat[0:6].view(2, 3), flat[10:16].view(2, 3), flat[22:28].view(2, 3)]) is None
    assert stacked_view([flat[0:6].view(2, 3), flat[10:16].view(3, 2)]) is None
    assert stacked_view([flat[0:6].view(2, 3), torch.zeros(2, 3)]) is None


def test_flatten_parameters_keeps_values_and_makes_views_of_one_storage():
    layers = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    before = {k: v.clone() for k, v in layers.state_dict().items()}
    flat = flatten_parameters(list(layers.parameters()))
    assert flat.numel() == sum(p.numel() for p in layers.parameters())
    for k, v in layers.state_dict().items():
        assert torch.equal(v, before[k]) and v.untyped_storage().data_ptr() == flat.untyped_storage().data_ptr()
    for p in layers.parameters():
        assert p.grad is not None and p.grad.untyped_storage().data_ptr() == flat.grad.untyped_storage().data_ptr()
    with torch.no_grad():
        layers[1].weight.add_(1.0)  # writes through to the flat storage
    assert torch.equal(flat.detach()[16:32], before["1.weight"].reshape(-1) + 1.0)


def test_trainer_model_weights_of_equal_layers_stack_without_a_copy(tmp_path):
    """The trainer flattens the model's parameters, so an inverse group reads the equal hidden
    layers' forward weights as one strided view; a model that is not flat gets a copy with the
    same values."""
    trainer = new_trainer("sdtp", tmp_path, EQUAL_WIDTHS)
    ops = [trainer.model.ops[l - 1] for l in (2, 3, 4, 5)]
    for name in ("weight", "bias"):
        view = StackedReader(ops, name)()
        assert view.untyped_storage().data_ptr() == trainer.flat_parameters.untyped_storage().data_ptr()
        assert torch.equal(view, torch.stack([getattr(op, name).detach() for op in ops]))
    loose = [torch.nn.Linear(5, 5) for _ in range(3)]
    copy = StackedReader(loose, "weight")()
    assert copy.untyped_storage().data_ptr() != loose[0].weight.untyped_storage().data_ptr()
    assert torch.equal(copy, torch.stack([m.weight.detach() for m in loose]))


def test_stacked_reader_keeps_its_view_until_the_parameters_move():
    layers = [torch.nn.Linear(5, 5) for _ in range(3)]
    flatten_parameters([p for m in layers for p in m.parameters()])
    read = StackedReader(layers, "weight")
    first = read()
    assert read() is first  # kept: same storage, same place
    with torch.no_grad():
        layers[2].weight.mul_(2.0)
    assert torch.equal(read(), torch.stack([m.weight.detach() for m in layers]))  # a view sees new values
    layers[1].weight.data = torch.ones(5, 5)  # moved out of the flat storage: no view possible
    again = read()
    assert again is not first and torch.equal(again, torch.stack([m.weight.detach() for m in layers]))
    flatten_parameters([p for m in layers for p in m.parameters()])  # flat again, at new places
    view = read()
    assert torch.equal(view, torch.stack([m.weight.detach() for m in layers]))
    assert view.untyped_storage().data_ptr() == layers[0].weight.untyped_storage().data_ptr()


def test_flatten_parameters_refuses_what_it_cannot_flatten():
    mixed = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))]
    assert not can_flatten([]) and not can_flatten(mixed)
    with pytest.raises(ValueError, match="non-empty"):
        flatten_parameters([])
    with pytest.raises(ValueError, match="one dtype"):
        flatten_parameters(mixed)


def test_trainer_keeps_a_mixed_dtype_model_as_it_is(tmp_path, monkeypatch):
    """A model whose parameters cannot share one storage is built with separate storages
    instead of failing (the trainer flattens only what ``can_flatten``)."""
    from bioscale import run_model as trainer_module  # where the trainer builds its network

    real = trainer_module.build_network

    def output_layer_in_float64(*args, **kwargs):
        net = real(*args, **kwargs)
        net.layer(net.num_layers).op.double()  # the output layer in float64
        return net

    monkeypatch.setattr(trainer_module, "build_network", output_layer_in_float64)
    trainer = new_trainer("bp", tmp_path, [])
    assert trainer.flat_parameters is None


def test_run_records_which_cpu_tanh_form_it_used(tmp_path):
    trainer = new_trainer("bp", tmp_path, [])
    info = OmegaConf.load(trainer.run_dir / "config.yaml").run_info
    assert info.cpu_tanh == activations.CPU_TANH in ("torch", "sigmoid")
