"""Feedback alignment: B = W gives BP exactly; random B is fixed, seeded, checkpointed, and learns."""

import torch
from bioscale.testing import check_rule_contract, new_trainer, rule_plugin


def test_fa_with_feedback_equal_to_forward_weights_is_bp(tmp_path):
    trainer = new_trainer("fa", tmp_path, ["model.widths=[40,30,20]"])
    fa = rule_plugin(trainer)
    for l in range(2, trainer.model.num_layers + 1):
        fa.feedback[l].copy_(trainer.model.layer(l).op.weight.detach())
    x, y = trainer.data.train.x[:50], trainer.data.train.y[:50]
    probe = trainer.probe_gradients(x, y)
    for name, mine, ref in zip(probe["names"], probe["rule"], probe["exact"]):
        torch.testing.assert_close(mine, ref, rtol=1e-5, atol=1e-7, msg=name)


def test_fa_with_random_feedback_differs_from_bp_below_the_output(tmp_path):
    trainer = new_trainer("fa", tmp_path)
    x, y = trainer.data.train.x[:50], trainer.data.train.y[:50]
    probe = trainer.probe_gradients(x, y)
    by_name = dict(zip(probe["names"], zip(probe["rule"], probe["exact"])))
    out_w = f"layers.{trainer.model.num_layers - 1}.op.weight"
    torch.testing.assert_close(*by_name[out_w])  # the output layer is trained on the task loss
    mine, ref = by_name["layers.0.op.weight"]
    assert torch.nn.functional.cosine_similarity(mine.flatten(), ref.flatten(), 0) < 0.9


def test_fa_feedback_is_fixed_seeded_and_learns(tmp_path):
    a = new_trainer("fa", tmp_path / "a", ["trainer.epochs=3", "rules.fa.optimizer.lr=0.01"])
    b = new_trainer("fa", tmp_path / "b", ["seed=1"])
    fa_a, fa_b = rule_plugin(a), rule_plugin(b)
    again = rule_plugin(new_trainer("fa", tmp_path / "c"))
    initial = {l: w.clone() for l, w in fa_a.feedback.weights.items()}
    assert set(initial) == set(range(2, a.model.num_layers + 1))
    for l in initial:
        assert torch.equal(initial[l], again.feedback[l])  # same seed, same B
        assert not torch.equal(initial[l], fa_b.feedback[l])  # other seed, other B
        assert initial[l].shape == a.model.layer(l).op.weight.shape
    a.fit()
    for l in initial:
        assert torch.equal(initial[l], fa_a.feedback[l])  # never trained
    losses = [m["train_loss"] for m in a.history]
    assert losses[-1] < 0.6 * losses[0]
    state = torch.load(a.run_dir / "checkpoint.pt", weights_only=True)
    for l, w in initial.items():
        assert torch.equal(state["rule"]["feedback"][str(l)], w)


def test_fa_keeps_the_rule_contract(tmp_path):
    check_rule_contract("fa", tmp_path)
