"""Error and loss of a model on a data split, with one host sync at the end."""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def evaluate(model, split, batch_size: int, top_k: tuple = (1,)) -> dict:
    """``{"loss": mean CE, "error": top-1 error %, "top5_error": % (if 5 in top_k)}``."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    wrong = {k: torch.zeros((), dtype=torch.int64, device=device) for k in top_k}
    n = 0
    for x, y in split.batches(batch_size):
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
        kmax = max(top_k)
        top = logits.topk(min(kmax, logits.shape[1]), dim=1).indices
        for k in top_k:
            wrong[k] += (top[:, :k] != y[:, None]).all(dim=1).sum()
        n += y.shape[0]
    model.train(was_training)
    result = {"loss": float(loss_sum) / max(n, 1), "error": 100.0 * float(wrong[top_k[0]]) / max(n, 1)}
    if 5 in wrong:
        result["top5_error"] = 100.0 * float(wrong[5]) / max(n, 1)
    return result
