"""bf16 parity of the target rules (issue 33, F2): a target carries its signal in the displacement
``t - h``, often below bf16's spacing near ``|h|`` (2⁻⁹ to 2⁻⁸ for ``|h|`` in [0.25, 1)); formed in
bf16 it cancels. Every target difference is formed in float32, so on the same weights a target
rule's signal under bf16 points where its fp32 signal points, and a bf16 run ends where fp32 does.

Net: ``mnist_fc`` with 4 hidden layers of 256 (tanh), the rules' ``mnist_fc`` recipes. Signals: 1,024
shipped digits. Runs: real MNIST (skipped without ``../shared/data``)."""

import pytest
from bioscale.testing import new_trainer
from bioscale.testing.contract import MAX_BF16_ANGLE_LOSS, bf16_angle_loss

NET = ["model=mnist_fc", "model.widths=[256,256,256,256]", "data.limit_train=1024", "trainer.threads=1"]
TARGET_RULES = {
    "dtp": ["rules.dtp.schedule=parallel"],
    "sdtp": ["rules.sdtp.schedule=parallel"],
    "aosdtp": ["rules.aosdtp.schedule=parallel"],
    "ddtp": [],
    "ldrl": [],
    "mix": ["rules.mix.layers=[dtp,dtp,sdtp,fa,sdtp]"],  # a target rule below a signal rule (mix's target_above)
}
# 1 - cos of the bf16 signal against the fp32 one, per hidden layer, on this machine (AMD EPYC, torch 2.14.1), under
# the kit's limit of 1e-4: with the targets formed in float32 at most 1.7e-5 (DTP); formed in bf16 (before the fix)
# 2e-4 (DDTP) to 0.44 (DTP, layer 1)


@pytest.mark.parametrize("rule", sorted(TARGET_RULES))
def test_a_target_rules_bf16_signal_points_where_its_fp32_signal_points(tmp_path, rule):
    trainer = new_trainer(rule, tmp_path, [*NET, *TARGET_RULES[rule], "trainer.epochs=2", "trainer.checkpoint=false"])
    trainer.fit()  # two fp32 epochs: the displacements have shrunk to where bf16 rounding bites
    loss = bf16_angle_loss(trainer)  # on its first 256 training digits
    assert max(loss.values()) < MAX_BF16_ANGLE_LOSS, f"{rule}: 1 - cos(bf16 signal, fp32 signal) by layer: {loss}"


RUN_SETTINGS = {  # SDTP's and DDTP's recipes barely move in 3 short epochs: a larger forward lr, so the runs learn
    "dtp": ["rules.dtp.schedule=parallel"],
    "sdtp": ["rules.sdtp.schedule=parallel", "rules.sdtp.optimizer.lr=1e-3", "rules.sdtp.inverse_optimizer.lr=1e-3"],
    "ddtp": ["rules.ddtp.optimizer.lr=1e-3"],
}


def _best_error(data_root, out_dir, rule: str, precision: str, seed: int) -> float:
    data = [
        "data=mnist",
        f"data.root={data_root}",
        "data.limit_train=2048",
        "trainer.epochs=3",
        "trainer.checkpoint=false",
    ]
    tokens = [*NET[:2], *NET[3:], *data, *RUN_SETTINGS[rule], f"trainer.precision={precision}", f"seed={seed}"]
    summary = new_trainer(rule, out_dir / f"{precision}-{seed}", tokens).fit()
    assert summary["status"] == "completed"
    return summary["best_test_error"]


@pytest.mark.parametrize("rule", sorted(RUN_SETTINGS))
def test_a_bf16_run_ends_within_the_seed_spread_of_the_fp32_run(tmp_path, shared_data, rule):
    """Real MNIST, 2,048 training examples, 3 epochs, the same data and seed: the bf16 run's best test error
    is within the fp32 seed spread |fp32 seed 0 - fp32 seed 1| plus a quarter point (25 of the 10,000 test
    digits) of the fp32 run's. Before the fix DTP missed it: bf16 14.02 against fp32 12.94 / 13.19."""
    fp32 = [_best_error(shared_data, tmp_path, rule, "fp32", seed) for seed in (0, 1)]
    bf16 = _best_error(shared_data, tmp_path, rule, "bf16", 0)
    spread = abs(fp32[0] - fp32[1])
    assert abs(bf16 - fp32[0]) <= spread + 0.25, f"{rule}: bf16 {bf16}, fp32 seeds 0 / 1 {fp32}"
