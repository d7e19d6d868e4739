"""How AO-SDTP's top inverse ``g_L(o, z)`` points the penultimate target, for finished runs.

The penultimate target moves ``h_{L-1}`` by ``g_L(ô, z) - g_L(o, z) ≈ D (ô - softmax o) V_o``
(``V_o``: the rows of ``g_L``'s weight that read ``softmax(o)``, ``(classes, n_pen)``; ``D``
the tanh slope), while BP moves it along ``(ô - softmax o) W_o`` (``W_o``: the output layer's
weight, ``(classes, n_pen)``). So the target follows BP as far as ``V_o`` is parallel to
``W_o``. For each run folder (its ``checkpoint.pt`` at the end of training) this prints:

- ``dVo``, ``dVz``: how far ``V_o`` and the ``z`` rows ``V_z`` moved from their initial
  values, relative to their initial norm (the initial values are redrawn from the run's seed);
- ``cos(Vo,Wo)``: cosine between the flattened ``V_o`` and ``W_o`` at the end;
- ``cos(Vo0,Wo)``: the same with ``V_o``'s initial value, i.e. how far the output layer has
  aligned with the fixed random start of the feedback (as weights do under feedback alignment);
- ``cos(Vo0,Wo0)``: both initial values (unrelated draws: near 0).

    python tools/top_inverse_alignment.py RUN_DIR [RUN_DIR ...]

Reads only; writes nothing. No gradients (``torch.no_grad``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from bioscale.checkpoint import load_checkpoint
from bioscale.commands.resume import load_run_config
from bioscale.run_dir import CHECKPOINT
from bioscale.testing import rule_plugin
from bioscale.trainer import Trainer


def cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return F.cosine_similarity(a.flatten(), b.flatten(), dim=0).item()


@torch.no_grad()
def alignment(run_dir: str) -> dict:
    # the run's own config, built twice without training: ``start`` keeps the seeded draws the
    # run began with, ``final`` loads the checkpoint (not ``Trainer.resume``, which rewrites
    # the run's config.yaml)
    cfg, spec = load_run_config(Path(run_dir), [])
    final = Trainer(cfg, spec, [])
    final.load_state(load_checkpoint(Path(run_dir) / CHECKPOINT, final.identity()), Path(run_dir) / CHECKPOINT)
    start = Trainer(cfg, spec, [], data=final.data)
    L = final.model.num_layers
    classes = final.model.layer(L).op.weight.shape[0]
    V, V0 = rule_plugin(final).inverses[str(L)].weight, rule_plugin(start).inverses[str(L)].weight
    W, W0 = final.model.layer(L).op.weight, start.model.layer(L).op.weight
    Vo, Vz, Vo0, Vz0 = V[:classes], V[classes:], V0[:classes], V0[classes:]
    return {
        "dVo": ((Vo - Vo0).norm() / Vo0.norm()).item(),
        "dVz": ((Vz - Vz0).norm() / Vz0.norm()).item(),
        "cos(Vo,Wo)": cos(Vo, W),
        "cos(Vo0,Wo)": cos(Vo0, W),
        "cos(Vo0,Wo0)": cos(Vo0, W0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()
    for run in args.runs:
        row = alignment(run)
        print(run, "  ".join(f"{k} {v:.3f}" for k, v in row.items()))


if __name__ == "__main__":
    main()
