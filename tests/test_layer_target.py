"""The core's side of ``LayerTarget``: a layer given an input is run again there, and its signal, σ' and
weight gradient are those of ``‖f(input) - t‖² / B`` (the output layer: the task loss at ``f_L(input)``),
against autograd; the layers below get their signal from that evaluation."""

import torch
import torch.nn.functional as F
from bioscale import LayerTarget, RuleConfig, hookimpl
from bioscale.testing import fake_entry, make_step, new_trainer

SHIFT = 0.1


def _moved(h: torch.Tensor) -> torch.Tensor:
    """A fixed stand-in for a settled state: ``h`` moved by a deterministic pattern."""
    return h.float() + SHIFT * torch.sin(torch.arange(h[0].numel(), dtype=torch.float32)).reshape(h[0].shape)


class GivenInputs:
    """Layer 2 and the output layer learn at moved inputs; layer 2's target is its moved output plus 0.05."""

    Config = RuleConfig

    def __init__(self, config):
        pass

    @hookimpl
    def bioscale_output_target(self, step):
        return LayerTarget(None, _moved(step.h[2]))

    @hookimpl
    def bioscale_layer_target(self, step, layer, target_above):
        if layer != 3:
            return None
        x1 = _moved(step.h[1])
        layer2 = step.model.layer(2)
        return LayerTarget(layer2.activation(layer2.op(x1)) + 0.05, x1)

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        return step.layer_vjp(layer, grad_above)


def test_a_layer_given_an_input_learns_there_as_autograd_says(tmp_path):
    trainer = new_trainer(fake_entry(GivenInputs, "given"), tmp_path, ["model.widths=[16,12]"])
    x, y = trainer.data.train.x[:32], trainer.data.train.y[:32]
    step = make_step(trainer, x, y)
    x1, x2 = _moved(step.h[1]), _moved(step.h[2])
    probe = trainer.probe_gradients(x, y)
    mine = dict(zip(probe["names"], probe["rule"]))
    model, B = trainer.model, x.shape[0]
    params = dict(model.named_parameters())
    with torch.enable_grad():
        layer2, layer3 = model.layer(2), model.layer(3)
        with torch.no_grad():
            target = layer2.activation(layer2.op(x1)) + 0.05
        local = (layer2.activation(layer2.op(x1)) - target).square().sum() / B
        top = F.cross_entropy(layer3.op(x2), y)
        want = {
            **dict(zip(["layers.1.op.weight", "layers.1.op.bias"], torch.autograd.grad(local, [params["layers.1.op.weight"], params["layers.1.op.bias"]]))),
            **dict(zip(["layers.2.op.weight", "layers.2.op.bias"], torch.autograd.grad(top, [params["layers.2.op.weight"], params["layers.2.op.bias"]]))),
        }  # fmt: skip
    for name, ref in want.items():
        torch.testing.assert_close(mine[name], ref, rtol=1e-5, atol=1e-7, msg=name)
    # layer 1 gets BP's signal from layer 2's evaluation at its given input, at its own forward
    with torch.enable_grad():
        a2 = layer2.op(x1).detach().requires_grad_(True)
        g = torch.autograd.grad((layer2.activation(a2) - target).square().sum() / B, a2)[0]
        h1 = model.layer(1).activation(model.layer(1).op(x))
        ref = torch.autograd.grad(
            (h1 * (g @ params["layers.1.op.weight"]).detach()).sum(), params["layers.0.op.weight"]
        )[0]
    torch.testing.assert_close(mine["layers.0.op.weight"], ref, rtol=1e-5, atol=1e-7)
