"""The training loop: an epoch of passes over batches, one step, evaluation, the NaN check.

Every credit decision is delegated to the rule (``assign_credit``); nothing here syncs with the
host inside a step except every ``trainer.log_every`` steps (progress bar and NaN/inf check).
See ARCHITECTURE.md for the step pseudocode.
"""

from __future__ import annotations

from typing import Any

import torch

from .credit import assign_credit, write_layer_grads
from .errors import DivergenceError
from .evaluation import evaluate
from .optim import scheduled_lr, set_lr
from .progress import Progress
from .step_modes import autocast
from .trainer_fields import TrainerFields


class TrainingLoop(TrainerFields):
    """Trainer mixin: epochs, steps and evaluation. Reads ``cfg``, ``data``, ``model``,
    ``parallel``, ``device``, ``precision``, ``rule_hooks``, ``observers``, ``run``,
    ``optimizer``, ``flat_parameters`` and the compiled ``_forward_step`` / ``_credit``;
    advances ``global_step`` and draws from ``data_generator``."""

    def train_epoch(self, epoch: int, progress: Progress) -> dict:
        """One epoch (all passes the rule asks for); returns host-side training statistics."""
        cfg = self.cfg.trainer
        train = self.data.train
        n_train = len(train)
        nb = train.num_batches(cfg.batch_size)
        rows = self.parallel.rows if self.parallel.active else None
        passes = self.rule_hooks.epoch_passes(epoch)
        progress.start_epoch(epoch, cfg.epochs, nb * len(passes), self.global_step)
        zero = lambda dtype: torch.zeros((), dtype=dtype, device=self.device)  # noqa: E731
        loss_sum, wrong, seen = zero(torch.float64), zero(torch.int64), 0
        inverse_sums: dict = {}
        inverse_steps = 0
        lr = None
        for phases in passes:
            for i, (x, y) in enumerate(
                train.batches(cfg.batch_size, self.data_generator, self.data.augment, rows=rows)
            ):
                n_global = min(cfg.batch_size, n_train - i * cfg.batch_size)
                step, losses = self.train_step(x, y, epoch, phases, (epoch + i / nb) / cfg.epochs, n_global)
                if losses:
                    inverse_steps += 1
                    for layer, value in losses.items():
                        inverse_sums[layer] = inverse_sums.get(layer, 0) + value.detach().double()
                if "forward" in phases:
                    lr = self.optimizer.param_groups[0]["lr"]
                    loss_sum.add_(step.loss, alpha=y.shape[0])
                    wrong.add_(step.logits.argmax(1).ne_(y).sum())
                    seen += y.shape[0]
                self.global_step += 1
                self.observers.step_end(self.run, step)
                del step  # its activations go before the next batch's forward, not after it
                if self.global_step % cfg.log_every == 0:
                    self._check_finite(loss_sum, epoch)
                    progress.update(self.global_step, float(loss_sum) / max(seen, 1) if seen else None)
        if self.parallel.active:  # every rank's sums; inverse losses: the mean of the ranks' means
            layers = sorted(inverse_sums)
            packed = self.parallel.sum_(
                torch.stack(
                    [
                        loss_sum,
                        wrong.double(),
                        torch.tensor(float(seen), dtype=torch.float64, device=loss_sum.device),
                        *(inverse_sums[k] for k in layers),
                    ]
                )
            )
            loss_sum, wrong, seen = packed[0], packed[1], int(packed[2])
            inverse_sums = {k: v / self.parallel.world_size for k, v in zip(layers, packed[3:])}
        self._check_finite(loss_sum, epoch, reduced=True)
        if inverse_sums:
            self._check_finite(sum(inverse_sums.values()), epoch, what="inverse loss", reduced=True)
        stats: dict[str, Any] = {"passes": ["+".join(sorted(p)) for p in passes]}
        if seen:
            stats.update(train_loss=float(loss_sum) / seen, train_error=100.0 * float(wrong) / seen, lr=lr)
        if inverse_sums:
            stats["inverse_loss"] = {str(k): float(v) / inverse_steps for k, v in sorted(inverse_sums.items())}
        return stats

    def train_step(self, x, y, epoch: int, phases: frozenset, progress: float, global_batch_size: int | None = None):
        """One step on batch ``x`` ``(B, *in_shape)``, ``y`` ``(B,)``: inverse update and/or
        forward update as ``phases`` says. Returns the step and the rule's inverse losses.
        ``global_batch_size``: data parallelism: the rows of the global batch ``x`` is this rank's share of."""
        share: tuple = ()
        if self.parallel.active:
            assert global_batch_size is not None  # data parallelism: train_epoch gives the global batch's rows
            share = (self.parallel.rows(global_batch_size), global_batch_size, self.parallel)
        with autocast(self.device, self.precision):
            step = self._forward_step(
                self.model, x, y, epoch, self.global_step, phases, self.label_smoothing, *share, update_stats=True
            )
            step.progress, step.planned_epochs = progress, self.planned_epochs
            losses = self.rule_hooks.update_inverse(step) if "inverse" in phases else None
            grads = self._credit(step) if "forward" in phases else None
        if "forward" in phases:
            if self.parallel.active:  # one all-reduce of the flat gradient buffer
                step.reduce_gradients(self._forward_grad_buffers())
            assert grads is not None  # assigned above in the forward phase
            with torch.no_grad():  # e.g. a rule's learned feedback steps here
                self.rule_hooks.after_forward_grads(step, grads)
            set_lr(self.optimizer, scheduled_lr(self.optimizer_cfg, progress, self.planned_epochs))
            self.optimizer.step()
        return step, losses

    @property
    def _predict(self):
        return self.rule_hooks.predict if self.rule_hooks.implements("bioscale_predict") else None

    def _assign_and_write(self, step) -> list:
        """The rule's credit assignment for ``step`` written into the forward ``.grad`` tensors;
        returns the signals ``[None, δa_1, ..., δa_L]`` (all None unless the rule's ``after_forward_grads``
        takes ``grads``: each, and its layer's forward tensors, go once the layer is passed)."""
        found = self.rule_hooks.parameter_grads(step)
        if found is not None:  # the rule settled the net itself (EP): its gradients, as given
            with torch.no_grad():
                for name, param in self.model.named_parameters():
                    if param.grad is None:
                        param.grad = found[name].clone()
                    else:
                        param.grad.copy_(found[name])
            return [None] * (step.num_layers + 1)
        dests = self._grad_dests

        def write(l: int, grad_a) -> None:  # overwrites every .grad: no zero_grad needed
            write_layer_grads(step, l, grad_a, dests)

        # a rule whose after_forward_grads takes ``grads``, or an observer of every step, keeps the whole
        # step; else it goes layer by layer
        release = not self.rule_hooks.reads_step_after_credit and not self.observers.watches_steps
        return assign_credit(self.rule_hooks, step, on_signal=write, release=release)

    def _forward_grad_buffers(self) -> list:
        """The forward gradients as few tensors as possible: the flat buffer, else each ``.grad``."""
        if self.flat_parameters is not None:
            return [self.flat_parameters.grad]
        return [p.grad for p in self.model.parameters()]

    def _check_finite(self, value: torch.Tensor, epoch: int, what: str = "loss", reduced: bool = False) -> None:
        """Stop with ``DivergenceError`` on a non-finite ``value``; data-parallel ranks decide
        together (``value`` is summed over ranks first unless ``reduced``)."""
        if self.parallel.active and not reduced:
            value = self.parallel.sum_(value.detach().clone())
        if not bool(torch.isfinite(value)):
            kept = (
                f"the last good checkpoint (epoch {self.epoch}) is kept in {self.run_dir}"
                if self.epoch
                else "no checkpoint was written"
            )
            raise DivergenceError(
                f"{what} became {float(value)} during epoch {epoch + 1} (step {self.global_step}) with "
                f"{self.rule_hooks.origin}; training stopped, {kept}. Try a smaller learning rate."
            )

    def evaluate_epoch(self) -> dict:
        """Test (and validation) loss and error of the current weights, no grad."""
        cfg = self.cfg.trainer
        top_k = self.data.top_k
        result = {}
        with autocast(self.device, self.precision):  # a rule that settles its net predicts from it
            test = evaluate(self.model, self.data.test, cfg.eval_batch_size, top_k, self.parallel, self._predict)
        result["test_loss"], result["test_error"] = test["loss"], test["error"]
        if "top5_error" in test:
            result["test_top5_error"] = test["top5_error"]
        if self.data.val is not None:
            with autocast(self.device, self.precision):
                val = evaluate(self.model, self.data.val, cfg.eval_batch_size, top_k, self.parallel, self._predict)
            result["val_loss"], result["val_error"] = val["loss"], val["error"]
        return result
