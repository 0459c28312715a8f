"""Learning tasks: what a batch is, what the loss is, and how to validate.

A task turns an :class:`~deepmf.data.Interactions` log into device tensors once, and each
epoch slices a fresh random permutation of them into batches: no per-sample Python.
"""

from __future__ import annotations

import numpy as np
import torch

from deepmf.batching import ranking_batches, rating_batches
from deepmf.data import Interactions
from deepmf.distributed import SINGLE, Shard, mean_over_shards
from deepmf.errors import ConfigError
from deepmf.evaluate import evaluate_ratings, evaluate_sampled
from deepmf.losses import RANKING_LOSSES, bpr, mse
from deepmf.models.compiled import first_size_compiled
from deepmf.models.fused import bce_grad, fusable, mse_grad
from deepmf.optim import lookup_shares
from deepmf.sampling import NegativeSampler, drawing_on


def _tensor(array, device, dtype=None) -> torch.Tensor:
    return torch.tensor(array, dtype=dtype, device=device)  # a copy: inputs may be read-only


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ConfigError("batch_size must be at least 1")


def _shard_rows(log: Interactions, shard: Shard) -> Interactions:
    """Every ``world``-th row, for validating on a shard (all rows in one process)."""
    return log if shard.world == 1 else log.take(slice(shard.rank, None, shard.world))


class RatingTask:
    """Explicit feedback: regress ratings with MSE plus L2 on the rows each batch uses.

    Validation reports ``valid_rmse`` (the monitored metric) and ``valid_mae`` on held-out
    ratings, with predictions clipped to the rating range, and ``train_rmse`` for the
    training curves: the RMSE of the epoch's own predictions, each batch's taken just
    before its step (as a training loss is reported), which costs nothing, where scoring
    every training row again after each epoch cost a sixth of the epoch. Before any
    epoch (a pre-trained start) it is the full pass.
    """

    monitor = "valid_rmse"
    higher_is_better = False

    def __init__(
        self, train: Interactions, valid: Interactions | None, *, batch_size: int,
        device: torch.device, reg: float = 0.0, clip: tuple[float, float] | None = None,
        shard: Shard = SINGLE, compiled: bool = False,
    ):
        if train.ratings is None:
            raise ConfigError("the rating task needs ratings")
        _check_batch_size(batch_size)
        self.train, self.valid, self.shard = train, valid, shard
        self.batch_size, self.device, self.reg, self.clip = batch_size, device, reg, clip
        self.compiled = compiled
        self.users = _tensor(train.users, device)
        self.items = _tensor(train.items, device)
        self.ratings = _tensor(train.ratings, device, torch.float32)
        self._squares, self._count = 0.0, 0  # the epoch's squared errors so far

    def lookup_shares(self) -> tuple[float, float]:
        """About the share of the user rows and of the item rows one batch looks up."""
        return lookup_shares(self.train.n_users, self.train.n_items, self.batch_size)

    def _tally(self, squares: torch.Tensor, count: int) -> None:
        self._squares, self._count = self._squares + squares.detach(), self._count + count

    def batches(self, generator):
        self._squares, self._count = 0.0, 0
        yield from rating_batches((self.users, self.items, self.ratings), self.batch_size,
                                  drawing_on(self.device, generator), self.shard)

    def loss(self, model, batch):
        users, items, ratings = batch
        if not self.reg:
            error = mse(model(users, items), ratings)
            self._tally(error * len(ratings), len(ratings))
            return error
        predictions, penalty = model.scores_and_penalty(users, items)
        error = mse(predictions, ratings)
        self._tally(error * len(ratings), len(ratings))
        return error + self.reg * penalty

    def fused_step(self, model):
        """A function of a batch that returns its loss with every gradient set, without
        autograd, where the model has such a step (:mod:`deepmf.models.fused`); else None."""
        grads = getattr(model, "fused_grads", None)
        if grads is None or not fusable(model, self.users, self.compiled):
            return None

        def step(batch):
            users, items, ratings = batch
            n = len(ratings)

            def dloss(scores, part):  # this part's share of the mean squared error
                share, d, squares = mse_grad(scores, ratings[part], n)
                self._tally(squares, len(d))
                return share, d

            return grads(users, items, dloss, self.reg)

        if not self.compiled:
            return step
        compiled = model.compiled_grads("mse", self.reg)

        def whole(batch):
            users, items, ratings = batch
            loss, squares = compiled(users, items, ratings)
            self._tally(squares, len(ratings))
            return loss

        return first_size_compiled(whole, step)

    def validate(self, model) -> dict[str, float]:
        record, count = {}, 0
        if self._count:  # the epoch's own predictions (see the class docstring)
            record = {"train_rmse": float(self._squares / self._count) ** 0.5}
            count = self._count
        elif getattr(model, "trainer", "sgd") == "sgd":  # sweeps report their own fit
            train = _shard_rows(self.train, self.shard)
            record = {"train_rmse": evaluate_ratings(model, train, clip=self.clip)["rmse"]}
            count = len(train)
        if record:
            record = mean_over_shards(record, count, self.shard)
        if self.valid is not None and len(self.valid):
            valid = _shard_rows(self.valid, self.shard)
            scores = evaluate_ratings(model, valid, clip=self.clip)
            record.update(mean_over_shards({"valid_rmse": scores["rmse"],
                                            "valid_mae": scores["mae"]}, len(valid), self.shard))
        return record


class RankingTask:
    """Implicit feedback: every observed pair is a positive; negatives are redrawn each epoch.

    With ``loss="bce"`` each positive comes with ``num_neg`` sampled negatives labelled 0
    (the pointwise log loss of NCF); with ``loss="bpr"`` each positive is paired with
    ``num_neg`` negatives and ranked above them. Validation ranks each validation item
    among ``valid_negatives`` (sampled protocol) and monitors ``valid_hr@K``.
    """

    higher_is_better = True

    def __init__(
        self, train: Interactions, valid: Interactions | None, *, batch_size: int,
        device: torch.device, num_neg: int = 4, loss: str = "bce", reg: float = 0.0,
        valid_negatives=None, k: int = 10, prefix: str = "valid", shard: Shard = SINGLE,
        compiled: bool = False,
    ):
        if loss not in RANKING_LOSSES:
            raise ConfigError(f"unknown loss {loss!r} for ranking; choose from "
                              f"{', '.join(RANKING_LOSSES)}")
        _check_batch_size(batch_size)
        if num_neg < 1:
            raise ConfigError("num_neg must be at least 1")
        self.train, self.valid, self.valid_negatives = train, valid, valid_negatives
        self.batch_size, self.device, self.num_neg, self.reg = batch_size, device, num_neg, reg
        self.loss_name, self.k, self.prefix, self.shard = loss, k, prefix, shard
        self.compiled = compiled
        # drawn on a thread beside the steps (deepmf.prefetch); each process has its core
        self.draws_ahead = device.type == "cpu" and shard.world == 1
        self.monitor = f"{prefix}_hr@{k}"
        self.users = _tensor(train.users, device)
        self.items = _tensor(train.items, device)
        self.sampler = NegativeSampler(train).to(device)

    def batches(self, generator):
        return ranking_batches(self.users, self.items, self.sampler, k=self.num_neg,
                               size=self.batch_size, pairwise=self.loss_name == "bpr",
                               generator=drawing_on(self.device, generator), shard=self.shard)

    def lookup_shares(self) -> tuple[float, float]:
        """About the share of the user rows and of the item rows one batch looks up: the
        users of its positives (and with bce of its anchors), their items and the negatives."""
        return lookup_shares(self.train.n_users, self.train.n_items, self.batch_size,
                             self.num_neg, anchors=self.loss_name == "bce")

    def loss(self, model, batch):
        """The batch's loss, plus ``reg`` times the penalty on the rows of its positive
        pairs (BPR) or of all its pairs (BCE), from the same forward pass."""
        users, items, target = batch
        if self.loss_name == "bce":
            if not self.reg:
                return RANKING_LOSSES["bce"](model(users, items), target)
            logits, penalty = model.scores_and_penalty(users, items)
            return RANKING_LOSSES["bce"](logits, target) + self.reg * penalty
        n_neg = target.shape[1]
        negative_users, negatives = users.repeat_interleave(n_neg), target.reshape(-1)
        if not self.reg:
            scores = model(torch.cat([users, negative_users]), torch.cat([items, negatives]))
            return bpr(scores[: len(users)], scores[len(users):].view(-1, n_neg))
        positive, penalty = model.scores_and_penalty(users, items)
        negative = model(negative_users, negatives).view(-1, n_neg)
        return bpr(positive, negative) + self.reg * penalty

    def fused_step(self, model):
        """A function of a batch that returns its BCE loss with every gradient set, without
        autograd, where the model has such a step (:mod:`deepmf.models.fused`); else None."""
        grads = getattr(model, "fused_grads", None)
        if grads is None or self.loss_name != "bce" or not fusable(model, self.users,
                                                                   self.compiled):
            return None

        def step(batch):
            users, items, labels = batch
            n = len(labels)

            def dloss(logits, part):  # this part's share of the mean log loss
                return bce_grad(logits, labels[part], n)[:2]

            return grads(users, items, dloss, self.reg)

        compiled = model.compiled_grads("bce", self.reg) if self.compiled else None
        return first_size_compiled(compiled and (lambda batch: compiled(*batch)[0]), step)

    def validate(self, model) -> dict[str, float]:
        if self.valid is None or not len(self.valid):
            return {}
        valid = _shard_rows(self.valid, self.shard)
        negatives = np.asarray(self.valid_negatives)[self.shard.rank::self.shard.world]
        scores = mean_over_shards(evaluate_sampled(model, valid, negatives, k=self.k),
                                  len(valid), self.shard)
        return {f"{self.prefix}_{name}": value for name, value in scores.items()}
