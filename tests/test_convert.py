"""A user's plain torch module as a bioscale net (architectures/convert.py): BP through the
converted net gives autograd's gradients of the module's own parameters; what is not an accepted
form is refused naming the module."""

import pytest
import torch
import torch.nn.functional as F
from bioscale.architectures.convert import from_module
from bioscale.credit import assign_credit, local_weight_grads
from bioscale.step import forward_step
from torch import nn


class Block(nn.Module):
    """He et al.'s basic block, written as a PyTorch user writes it."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        return F.relu(out + (x if self.proj is None else self.proj(x)))


class SmallResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.blocks = nn.Sequential(Block(4, 4, 1), Block(4, 8, 2))
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


def small_vgg() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ELU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, 16),
        nn.Tanh(),
        nn.Linear(16, 10),
    )


class Backprop:
    """BP's credit hooks as the trainer calls them (the facade's names)."""

    def output_target(self, step):
        return None

    def layer_target(self, step, layer, target_above):
        return None

    def feedback_signal(self, step, layer, grad_above):
        return step.layer_vjp(layer, grad_above)


@pytest.mark.parametrize("make", [small_vgg, SmallResNet], ids=["vgg_like", "resnet_like"])
def test_bp_through_the_converted_net_gives_the_modules_autograd_gradients(make):
    torch.manual_seed(0)
    module = make()
    net = from_module(module, (1, 8, 8), 10)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    step = forward_step(net, x, y, 0, 0, frozenset({"forward"}))
    mine = {}
    for l, found in enumerate(local_weight_grads(step, assign_credit(Backprop(), step))[1:]):
        mine.update({net.source_names[f"layers.{l}.{name}"]: g for name, g in found.items()})
    params = dict(module.named_parameters())
    expected = torch.autograd.grad(F.cross_entropy(module(x), y), list(params.values()))
    assert set(mine) == set(params)  # every parameter of the module, once
    for (name, _), ref in zip(params.items(), expected):
        torch.testing.assert_close(mine[name], ref, rtol=1e-4, atol=1e-6, msg=name)


def test_the_converted_resnet_has_identity_and_projection_skips():
    net = from_module(SmallResNet(), (1, 8, 8), 10)
    assert net.structures()["skip"] and net.structures()["batchnorm"] == list(range(1, net.num_layers))
    projection = next(l for l in range(1, net.num_layers + 1) if net.source(l) != l - 1)
    assert net.layer(projection).activation.name == "identity" and projection in net.skips


def test_the_module_is_left_as_it_was():
    module = SmallResNet()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    net = from_module(module, (1, 8, 8), 10)
    with torch.no_grad():
        next(net.parameters()).add_(1.0)
    for k, v in module.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize(
    "module,fragment",
    [
        (nn.Sequential(nn.Flatten(), nn.Dropout(), nn.Linear(64, 10)), "module '1' (Dropout): Dropout is not a layer"),
        (nn.Sequential(nn.Conv2d(1, 4, 3, dilation=2), nn.Flatten(), nn.Linear(64, 10)), "module '0' (Conv2d)"),
        (
            nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(144, 10)),
            "module '2' (BatchNorm2d): batch norm must come right after a weight module",
        ),
        (
            nn.Sequential(nn.Conv2d(1, 4, 3), nn.AvgPool2d(2), nn.Tanh(), nn.Flatten(), nn.Linear(36, 10)),
            "an activation after pooling",
        ),
        (nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.Softmax(dim=1)), "Softmax is not a layer"),
        (nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.ReLU()), "the output must be an nn.Linear's logits"),
        (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Linear(6, 10)), "must be flattened first"),
    ],
    ids=[
        "dropout",
        "dilation",
        "norm_after_activation",
        "activation_after_avg_pool",
        "softmax",
        "relu_output",
        "no_flatten",
    ],
)
def test_what_is_not_an_accepted_form_is_refused_naming_it(module, fragment):
    with pytest.raises(ValueError, match="cannot convert") as info:
        from_module(module, (1, 8, 8), 10)
    assert fragment in str(info.value)


def test_a_module_fx_cannot_trace_is_refused_plainly():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            return self.fc(x.flatten(1)) if x.sum() > 0 else self.fc(x.flatten(1))

    with pytest.raises(ValueError, match="cannot trace Branchy.forward with torch.fx"):
        from_module(Branchy(), (1, 8, 8), 10)
