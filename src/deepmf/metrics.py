"""Evaluation metrics as pure functions over tensors.

Rating metrics take predictions and targets. Ranking metrics take a hit matrix
``hits: bool[U, K]`` (``hits[u, j]``: the item ranked ``j + 1`` for user ``u`` is relevant)
and, where needed, ``n_relevant: int[U]``, the number of relevant items of each user.
Ranking metrics return one value per user; the caller averages. Users with
``n_relevant == 0`` must not be passed (the evaluators skip them): their recall, NDCG and
mAP are undefined.
"""

from __future__ import annotations

import torch


def rmse(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Root mean squared error, ``sqrt(mean((pred - target)^2))``."""
    return float(torch.sqrt(torch.mean((pred.double() - target.double()) ** 2)))


def mae(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean absolute error, ``mean(|pred - target|)``."""
    return float(torch.mean(torch.abs(pred.double() - target.double())))


def _discounts(k: int, device: torch.device) -> torch.Tensor:
    """``1 / log2(rank + 1)`` for ranks ``1..k``."""
    return 1.0 / torch.log2(torch.arange(2, k + 2, device=device, dtype=torch.float64))


def hit_rate(hits: torch.Tensor) -> torch.Tensor:
    """Hit rate @K: ``1`` if any of the top K items is relevant, else ``0``.

    Args:
        hits: ``bool[U, K]`` hit matrix.

    Returns:
        ``float64[U]``.
    """
    return hits.any(dim=1).double()


def ndcg(hits: torch.Tensor, n_relevant: torch.Tensor) -> torch.Tensor:
    """NDCG @K: ``DCG / IDCG`` with ``DCG = sum_j hits[j] / log2(j + 1)`` (rank ``j`` 1-based).

    ``IDCG = sum_{j=1}^{min(n_relevant, K)} 1 / log2(j + 1)``, the DCG of a perfect list.

    Args:
        hits: ``bool[U, K]`` hit matrix.
        n_relevant: ``int[U]``, each ``>= 1``.

    Returns:
        ``float64[U]`` in ``[0, 1]``.
    """
    gains = _discounts(hits.shape[1], hits.device)  # [K]
    dcg = (hits.double() * gains).sum(dim=1)
    ideal = torch.cat([gains.new_zeros(1), gains.cumsum(0)])  # ideal[m] = IDCG of m hits
    return dcg / ideal[n_relevant.clamp(max=hits.shape[1])]


def mrr(hits: torch.Tensor) -> torch.Tensor:
    """Reciprocal rank @K: ``1 / rank`` of the first relevant item, ``0`` if none in the top K.

    Args:
        hits: ``bool[U, K]`` hit matrix.

    Returns:
        ``float64[U]``.
    """
    first = hits.int().argmax(dim=1)  # index of the first hit (0 when there is none)
    return torch.where(hits.any(dim=1), 1.0 / (first + 1).double(), 0.0)


def average_precision(hits: torch.Tensor, n_relevant: torch.Tensor) -> torch.Tensor:
    """Average precision @K: ``sum_j precision@j * hits[j] / min(n_relevant, K)``.

    ``precision@j = (number of hits in ranks 1..j) / j``; mAP@K is its mean over users.

    Args:
        hits: ``bool[U, K]`` hit matrix.
        n_relevant: ``int[U]``, each ``>= 1``.

    Returns:
        ``float64[U]`` in ``[0, 1]``.
    """
    ranks = torch.arange(1, hits.shape[1] + 1, device=hits.device, dtype=torch.float64)
    prec = hits.double().cumsum(dim=1) / ranks  # [U, K] precision@j
    return (prec * hits).sum(dim=1) / n_relevant.clamp(max=hits.shape[1]).double()


def recall(hits: torch.Tensor, n_relevant: torch.Tensor) -> torch.Tensor:
    """Recall @K: ``(number of hits in the top K) / n_relevant``.

    Args:
        hits: ``bool[U, K]`` hit matrix.
        n_relevant: ``int[U]``, each ``>= 1``.

    Returns:
        ``float64[U]``.
    """
    return hits.sum(dim=1).double() / n_relevant.double()


def precision(hits: torch.Tensor, k: int | None = None) -> torch.Tensor:
    """Precision @K: ``(number of hits in the top K) / K``.

    Args:
        hits: ``bool[U, K']`` hit matrix; ``K'`` may be smaller than ``k`` when fewer
            candidates than ``k`` exist.
        k: the cut-off ``K`` (default ``hits.shape[1]``).

    Returns:
        ``float64[U]``.
    """
    return hits.sum(dim=1).double() / (hits.shape[1] if k is None else k)
