"""The building blocks rules rely on, checked against autograd: op transposes and local
weight gradients, activation derivatives from outputs, the closed-form loss gradient."""

import pytest
import torch
import torch.nn.functional as F
from bioscale.architectures import Conv2dOp, LinearOp, LocallyConnected2d, activations, make_activation
from bioscale.architectures.ops import AffineOp
from bioscale.step import cross_entropy_and_grad

torch.manual_seed(0)


def initialised(op):
    op.reset_parameters(torch.Generator().manual_seed(0))
    return op


OPS = [
    lambda: initialised(LinearOp((3, 4, 4), 7)),
    lambda: initialised(LinearOp((20,), 5)),
    lambda: initialised(Conv2dOp((3, 8, 8), 4, kernel_size=3, stride=1)),
    lambda: initialised(Conv2dOp((3, 9, 9), 5, kernel_size=5, stride=2)),
    lambda: initialised(Conv2dOp((2, 8, 8), 3, kernel_size=3, stride=2)),
    lambda: initialised(LocallyConnected2d(3, 4, 3, 1, None, (6, 6))),
    lambda: initialised(LocallyConnected2d(2, 5, 5, 2, None, (9, 9))),
    lambda: initialised(LocallyConnected2d(3, 4, 3, 2, 0, (8, 7))),
]


@pytest.mark.parametrize("make_op", OPS)
def test_input_vjp_and_param_grads_match_autograd(make_op):
    op = make_op()
    with torch.no_grad():
        op.bias.normal_()
    x = torch.randn(6, *op.in_shape, requires_grad=True)
    out = op(x)
    assert out.shape[1:] == op.out_shape
    g = torch.randn_like(out)
    gx, gw, gb = torch.autograd.grad(out, [x, op.weight, op.bias], g)
    with torch.no_grad():
        torch.testing.assert_close(op.input_vjp(g), gx, rtol=1e-5, atol=1e-5)
        grads = op.param_grads(x.detach(), g)
    torch.testing.assert_close(grads["weight"], gw, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads["bias"], gb, rtol=1e-5, atol=1e-5)
    # with another weight, input_vjp is the transpose of the op that has that weight
    other = op.new_weight(torch.Generator().manual_seed(1))
    assert other.shape == op.weight.shape and not torch.equal(other, op.weight)
    with torch.no_grad():
        op.weight.copy_(other)
    gx2 = torch.autograd.grad(op(x), x, g)[0]
    torch.testing.assert_close(op.input_vjp(g, weight=other), gx2, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make_op", OPS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_write_param_grads_overwrites_with_param_grads(make_op, layout):
    """The in-place write the trainer uses gives param_grads' values, whatever was in ``out``
    and whatever the memory format of the input and of the output gradient."""
    op = make_op()
    x = torch.randn(6, *op.in_shape)
    g = torch.randn(6, *op.out_shape)
    if layout == "channels_last" and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    if layout == "channels_last" and g.dim() == 4:
        g = g.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        op(x)  # a training-mode forward: the LC layer caches this input's patches
        expected = op.param_grads(x, g)
        out = {name: torch.full_like(p, 7.0) for name, p in op.named_parameters(recurse=False)}
        op.write_param_grads(x, g, out)
        op.write_param_grads(x, g, out)  # twice: overwritten, not accumulated
    for name in expected:
        torch.testing.assert_close(out[name], expected[name], rtol=1e-5, atol=1e-5, msg=name)
    generic = {name: torch.zeros_like(p) for name, p in op.named_parameters(recurse=False)}
    AffineOp.write_param_grads(op, x, g, generic)
    for name in expected:
        torch.testing.assert_close(generic[name], expected[name], rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize("make_op", OPS)
def test_write_weight_grad_overwrites_with_weight_grad(make_op):
    op = make_op()
    x, g = torch.randn(6, *op.in_shape), torch.randn(6, *op.out_shape)
    with torch.no_grad():
        expected = op.weight_grad(x, g)
        out = torch.full_like(op.weight, 7.0)
        op.write_weight_grad(x, g, out)
        op.write_weight_grad(x, g, out)
        generic = torch.zeros_like(op.weight)
        AffineOp.write_weight_grad(op, x, g, generic)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(generic, expected, rtol=1e-5, atol=1e-5)


def test_generic_param_grads_fallback_uses_autograd():
    op = initialised(LinearOp((4,), 3))
    x, g = torch.randn(5, 4), torch.randn(5, 3)
    generic = AffineOp.param_grads(op, x, g)
    closed = op.param_grads(x, g)
    torch.testing.assert_close(generic["weight"], closed["weight"])
    torch.testing.assert_close(generic["bias"], closed["bias"])


def test_glorot_bounds_and_generator_reproducibility():
    op = initialised(LinearOp((300,), 100))
    bound = (6 / 400) ** 0.5
    w1 = op.new_weight(torch.Generator().manual_seed(3))
    w2 = op.new_weight(torch.Generator().manual_seed(3))
    assert torch.equal(w1, w2)
    assert w1.abs().max() <= bound and w1.abs().max() > 0.9 * bound
    assert abs(w1.std().item() - bound / 3**0.5) < 0.01


@pytest.mark.parametrize("name", ["tanh", "relu", "sigmoid", "identity"])
def test_activation_backward_from_output_matches_autograd(name):
    act = make_activation(name)
    a = torch.randn(4, 9, requires_grad=True)
    h = act(a)
    g = torch.randn_like(h)
    (expected,) = torch.autograd.grad(h, a, g)
    torch.testing.assert_close(act.backward(h.detach(), g), expected)


@pytest.mark.parametrize("form", ["torch", "sigmoid"])
def test_tanh_is_tanh_in_both_grad_modes(monkeypatch, form):
    """Both CPU forms (torch.tanh, 2σ(2a)-1) are tanh to float32 precision, and each gives the
    same output with and without autograd and in place (so a rule's closed form and an
    autograd reference see one forward)."""
    monkeypatch.setattr(activations, "CPU_TANH", form)
    act = make_activation("tanh")
    a = torch.linspace(-12, 12, 20001)
    with torch.no_grad():
        fast = act(a)
        in_place = act.forward_(a.clone())
    graph = act(a.clone().requires_grad_())
    assert torch.equal(fast, graph.detach()) and torch.equal(fast, in_place)
    torch.testing.assert_close(fast, torch.tanh(a), rtol=0, atol=3e-7)
    assert fast.abs().max() <= 1.0
    assert torch.equal(fast, torch.tanh(a)) == (form == "torch")


@pytest.mark.parametrize(
    "vendor, mkl, form",
    [
        ("GenuineIntel", True, "torch"),
        ("AuthenticAMD", True, "sigmoid"),
        ("GenuineIntel", False, "sigmoid"),
        ("", True, "sigmoid"),
    ],
)
def test_cpu_tanh_form_follows_vendor_and_mkl(vendor, mkl, form):
    """torch's CPU tanh is MKL's, fast on Intel CPUs only: the sigmoid form everywhere else."""
    assert activations.choose_cpu_tanh(vendor, mkl) == form


def test_cpuinfo_field_reads_a_field_or_gives_none(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n")
    real_path = activations.Path
    monkeypatch.setattr(activations, "Path", lambda p: info if p == "/proc/cpuinfo" else real_path(p))
    assert activations.cpuinfo_field("vendor_id") == "AuthenticAMD"
    assert activations.cpuinfo_field("model name") == "AMD EPYC 7B13"
    assert activations.cpuinfo_field("flags") is None
    monkeypatch.setattr(activations, "Path", lambda p: tmp_path / "missing")
    assert activations.cpuinfo_field("vendor_id") is None


def test_unknown_activation_names_valid_ones():
    with pytest.raises(ValueError, match="tanh"):
        make_activation("swish")


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_cross_entropy_and_grad_match_autograd(smoothing):
    logits = torch.randn(8, 10, requires_grad=True)
    y = torch.randint(0, 10, (8,))
    loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
    (expected,) = torch.autograd.grad(loss, logits)
    got_loss, got_grad = cross_entropy_and_grad(logits.detach(), y, smoothing)
    torch.testing.assert_close(got_loss, loss.detach())
    torch.testing.assert_close(got_grad, expected)
