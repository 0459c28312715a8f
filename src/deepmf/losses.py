"""Loss functions: plain functions of predictions and targets, never owned by a model."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error, ``mean((ŷ - y)^2)``, for rating prediction."""
    return F.mse_loss(pred, target)


def bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Pointwise log loss of NCF: ``-mean(y log σ(s) + (1-y) log(1-σ(s)))``."""
    return F.binary_cross_entropy_with_logits(logits, labels)


def bpr(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """Bayesian personalised ranking: ``-mean(log σ(s_pos - s_neg))`` over (pos, neg) pairs.

    ``positive`` is ``[B]`` and ``negative`` ``[B, n_neg]``; each negative pairs with its row's
    positive.
    """
    return -F.logsigmoid(positive.unsqueeze(-1) - negative).mean()


RANKING_LOSSES = {"bce": bce, "bpr": bpr}
"""Losses of the implicit (ranking) task, by the name a config gives them."""
