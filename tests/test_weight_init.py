"""``model.weight_init``: orthogonal forward weights per (out, in) matrix for every layer kind,
seeded, with Glorot as the unchanged default; bad names are refused."""

import pytest
import torch
from bioscale.architectures import Conv2dOp, LinearOp, LocallyConnected2d, build_network
from bioscale.config import build_run_config
from bioscale.testing.harness import new_trainer


def filter_matrices(op) -> torch.Tensor:
    """The op's weight as a batch of ``(out, in)`` matrices: one for a linear layer or a
    convolution (its filters as rows), one per output location for a locally connected layer."""
    w = op.weight.detach()
    if isinstance(op, LocallyConnected2d):
        return w.transpose(1, 2)  # (L, C_out, K)
    return w.reshape(1, w.shape[0], -1)


def assert_orthonormal(m: torch.Tensor) -> None:
    """``m`` ``(G, r, c)``: orthonormal rows when ``r <= c``, else orthonormal columns."""
    gram = m @ m.transpose(1, 2) if m.shape[1] <= m.shape[2] else m.transpose(1, 2) @ m
    eye = torch.eye(gram.shape[-1]).expand_as(gram)
    torch.testing.assert_close(gram, eye, atol=2e-5, rtol=0)


OPS = {
    "linear wide": lambda: LinearOp((3, 4, 4), 7),
    "linear tall": lambda: LinearOp((5,), 12),
    "conv": lambda: Conv2dOp((3, 8, 8), 4, kernel_size=3, stride=2),
    "lc": lambda: LocallyConnected2d(3, 4, 3, 1, None, (6, 6)),
    "lc tall": lambda: LocallyConnected2d(1, 16, 3, 2, None, (7, 7)),  # 16 outputs from 9 inputs
}


@pytest.mark.parametrize("make", OPS.values(), ids=OPS.keys())
def test_orthogonal_init_makes_every_filter_matrix_orthonormal(make):
    op = make()
    op.bias.data.fill_(1.0)
    op.reset_parameters(torch.Generator().manual_seed(3), "orthogonal")
    assert_orthonormal(filter_matrices(op))
    assert torch.count_nonzero(op.bias) == 0
    again = make()
    again.reset_parameters(torch.Generator().manual_seed(3), "orthogonal")
    assert torch.equal(op.weight, again.weight)  # seeded
    glorot = make()
    glorot.reset_parameters(torch.Generator().manual_seed(3))
    assert not torch.allclose(glorot.weight, op.weight)
    with pytest.raises(AssertionError):  # the check itself can fail: Glorot is not orthonormal
        assert_orthonormal(filter_matrices(glorot))


def test_lc_locations_are_orthogonalised_separately():
    op = OPS["lc"]()
    op.reset_parameters(torch.Generator().manual_seed(0), "orthogonal")
    w = filter_matrices(op)
    assert not torch.allclose(w[0], w[1])  # every location draws its own filters


def test_unknown_scheme_is_refused():
    with pytest.raises(ValueError, match="'he'.*glorot, orthogonal"):
        LinearOp((4,), 3).reset_parameters(None, "he")
    with pytest.raises(ValueError, match="'he'"):
        build_network((4,), 3, widths=[5], weight_init="he")


def test_trainer_builds_the_configured_init(tmp_path):
    default = new_trainer("bp", tmp_path / "a")
    explicit = new_trainer("bp", tmp_path / "b", ["model.weight_init=glorot"])
    ortho = new_trainer("bp", tmp_path / "c", ["model.weight_init=orthogonal"])
    for a, b, c in zip(default.model.layers, explicit.model.layers, ortho.model.layers):
        assert torch.equal(a.op.weight, b.op.weight)  # glorot is the default
        assert_orthonormal(filter_matrices(c.op))
    assert build_run_config([]).model.weight_init.value == "glorot"


@pytest.mark.parametrize("rule", ["dtp", "sdtp", "aosdtp", "ldrl"])  # every rule with an InverseConfig
def test_tp_inverse_init(tmp_path, rule):
    from bioscale.rulekit.inverse import LayerInverse
    from bioscale.testing.harness import rule_plugin

    default = rule_plugin(new_trainer(rule, tmp_path / "a")).inverses
    glorot = rule_plugin(new_trainer(rule, tmp_path / "b", [f"rules.{rule}.inverse_init=glorot"])).inverses
    ortho = rule_plugin(new_trainer(rule, tmp_path / "c", [f"rules.{rule}.inverse_init=orthogonal"])).inverses
    for key, inverse in ortho.items():
        assert torch.equal(default[key].weight, glorot[key].weight)  # glorot is the default
        if isinstance(inverse, LayerInverse):  # V shaped like the forward weight
            assert_orthonormal(filter_matrices(inverse))
        else:  # AO-SDTP's dense g_L: (n_in, n_out)
            assert_orthonormal(inverse.weight.detach()[None])
        assert not torch.allclose(inverse.weight, glorot[key].weight)
