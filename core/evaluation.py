"""Error and loss of a model on a data split, with one host sync at the end.

Data-parallel runs: each rank evaluates its share of the split and the sums are all-reduced,
so every rank returns the whole split's figures."""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def evaluate(model, split, batch_size: int, top_k: tuple = (1,), parallel=None, predict=None) -> dict:
    """``{"loss": mean CE, "error": top-1 error %, "top5_error": % (if 5 in top_k)}``.

    :param parallel: the run's ``DataParallel``; when active, this rank evaluates its shard.
    :param predict: ``predict(model, x)`` → logits or None (a rule's ``bioscale_predict``); None: ``model(x)``."""
    device = next(model.parameters()).device
    if parallel is not None and parallel.active:
        split = split.shard(parallel.rank, parallel.world_size)
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    wrong = {k: torch.zeros((), dtype=torch.int64, device=device) for k in top_k}
    n = 0
    for x, y in split.batches(batch_size):
        logits = None if predict is None else predict(model, x)
        if logits is None:
            logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
        kmax = max(top_k)
        top = logits.topk(min(kmax, logits.shape[1]), dim=1).indices
        for k in top_k:
            wrong[k] += (top[:, :k] != y[:, None]).all(dim=1).sum()
        n += y.shape[0]
    model.train(was_training)
    sums = torch.stack(
        [loss_sum, *(wrong[k].double() for k in top_k), torch.tensor(float(n), dtype=torch.float64, device=device)]
    )
    if parallel is not None:
        parallel.sum_(sums)
    host = sums.tolist()  # the one host read
    loss, counts, total = host[0], dict(zip(top_k, host[1:-1])), max(host[-1], 1)
    result = {"loss": loss / total, "error": 100.0 * counts[top_k[0]] / total}
    if 5 in counts:
        result["top5_error"] = 100.0 * counts[5] / total
    return result
