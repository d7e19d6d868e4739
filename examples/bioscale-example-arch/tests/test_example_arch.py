"""The example architectures, installed: found by name, selected with ``model=NAME``, built for data."""

import torch
from bioscale.architectures import Network
from bioscale.architectures.convert import from_module
from bioscale.config import build_run_config
from bioscale.discovery import ARCHITECTURES_GROUP, discover
from bioscale_example_arch import build_convnet, build_torch_resnet


def test_both_architectures_are_installed_under_their_names():
    found = discover(ARCHITECTURES_GROUP)
    for name in ("example_mlp", "example_convnet", "example_torch_resnet"):
        assert found[name].distribution == "bioscale-example-arch" and found[name].load().description


def test_the_config_architecture_sets_the_model_section():
    model = build_run_config(["model=example_mlp"]).model
    assert model.preset == "example_mlp" and list(model.widths) == [64, 32] and model.activation == "tanh"


def test_the_build_architecture_fits_any_image_shape_and_draws_from_the_generator():
    for in_shape in ((1, 16, 16), (3, 9, 7)):
        net = build_convnet(in_shape, 5, torch.Generator().manual_seed(0))
        assert isinstance(net, Network) and net(torch.zeros(2, *in_shape)).shape == (2, 5)
    again = build_convnet((1, 16, 16), 5, torch.Generator().manual_seed(0))
    first = build_convnet((1, 16, 16), 5, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), again.parameters()))
    assert build_run_config(["model=example_convnet"]).model.preset == "example_convnet"


def test_the_plain_torch_module_converts_with_its_residual_block_and_batch_norm():
    module = build_torch_resnet((1, 16, 16), 10, torch.Generator().manual_seed(0))
    net = from_module(module, (1, 16, 16), 10)
    found = net.structures()
    assert found["skip"] and found["batchnorm"] and found["pooling"]
    module.eval(), net.eval()
    x = torch.randn(3, 1, 16, 16)
    torch.testing.assert_close(net(x), module(x))
