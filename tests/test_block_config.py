"""A spatial block set whole on the command line (``model.blocks=[{...}]``) or passed to
``build_network``: a mistake names the block (index and type) and a block's valid keys."""

from __future__ import annotations

import dataclasses

import pytest
from bioscale.architectures.build import BLOCK_KEYS, build_network
from bioscale.config import build_run_config
from bioscale.config.schema import BlockConfig
from bioscale.errors import ConfigError
from conftest import run_cli

VALID = "valid keys of a model.blocks entry: type, channels, kernel, stride, padding"


@pytest.mark.parametrize(
    "blocks, fragment",
    [
        ("[{type: conv, channels: 8, kernal: 3}]", f"model.blocks[0] (conv): unknown key 'kernal'; {VALID}"),
        (
            "[{type: lc, channels: 8, kernel: 3}, {type: conv, channels: 4, strides: 2}]",
            f"model.blocks[1] (conv): unknown key 'strides'; {VALID}",
        ),
        ("[{channels: 8, size: 3}]", f"model.blocks[0]: unknown key 'size'; {VALID}"),
        (
            "[{type: cnv, channels: 8}]",
            "model.blocks[0] (cnv): bad value for 'type': Invalid value 'cnv', expected one of [conv, lc, residual]",
        ),
        ("[{type: conv, channels: many}]", "model.blocks[0] (conv): bad value for 'channels'"),
    ],
)
def test_a_bad_key_or_value_inside_a_block_names_the_block(tmp_path, blocks, fragment):
    with pytest.raises(ConfigError) as info:
        build_run_config(["rule=bp", f"model.blocks={blocks}"])
    assert fragment in str(info.value)
    assert "at the top level" not in str(info.value) and "output_dir" not in str(info.value)
    result = run_cli("train", "rule=bp", f"model.blocks={blocks}", f"output_dir={tmp_path / 'runs'}")
    assert result.returncode == 2 and fragment in result.stderr and not (tmp_path / "runs").exists()


def test_good_blocks_still_resolve():
    cfg = build_run_config(["rule=bp", "model.blocks=[{type: lc, channels: 8, kernel: 3}, {channels: 4}]"])
    assert [b.channels for b in cfg.model.blocks] == [8, 4] and cfg.model.blocks[1].kernel == 3


def test_build_network_names_a_bad_block_and_knows_the_config_keys():
    assert BLOCK_KEYS == tuple(f.name for f in dataclasses.fields(BlockConfig))
    with pytest.raises(ValueError, match=r"blocks\[1\] \(lc\): unknown key 'kernal'; valid keys of a block: type"):
        build_network(
            (1, 8, 8),
            10,
            blocks=[{"type": "conv", "channels": 2, "kernel": 3}, {"type": "lc", "channels": 2, "kernal": 3}],
        )
    with pytest.raises(ValueError, match=r"blocks\[0\] \(conv\): missing kernel"):
        build_network((1, 8, 8), 10, blocks=[{"type": "conv", "channels": 2}])
    assert build_network((1, 8, 8), 10, blocks=[{"type": "conv", "channels": 2, "kernel": 3}]).num_layers == 2
