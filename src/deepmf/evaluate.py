"""Evaluate a trained model: rating error, sampled ranking (NCF protocol) and full ranking.

Every evaluator puts the model in eval mode under ``torch.no_grad()``, restores its previous
training mode afterwards, and runs on the device of the model's first parameter or buffer
(CPU if it has none). Models follow one contract: ``model(users, items) -> scores[B]`` and
``model.score_all(users) -> scores[B, n_items]``, higher meaning better.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from deepmf import metrics
from deepmf.data import Interactions, distinct
from deepmf.errors import ConfigError, DataError
from deepmf.models.base import model_device, pair_scorer_of, scorer_of, users_per_batch
from deepmf.ranking import TopK, relevant_keys, screen_size, unresolved


@contextlib.contextmanager
def _inference(model: torch.nn.Module):
    """``model.eval()`` under ``no_grad`` for the block, then the previous mode again."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _check_k(k: int) -> None:
    if int(k) < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")


def evaluate_ratings(
    model: torch.nn.Module,
    test: Interactions,
    *,
    clip: tuple[float, float] | None = None,
    batch_size: int = 65536,
) -> dict[str, float]:
    """RMSE and MAE of the model's predicted ratings on the rows of ``test``.

    Args:
        model: explicit model; ``model(users, items)`` returns predicted ratings (with
            ``times``, each row's timestamp, for models whose ``uses_times`` is True).
        test: rows with ratings.
        clip: ``(lowest, highest)`` rating; predictions are clipped to it when given.
        batch_size: pairs scored per forward call.

    Returns:
        ``{"rmse": float, "mae": float}`` (NaN for an empty test log).
    """
    if test.ratings is None:
        raise DataError("rating evaluation needs a test log with ratings")
    if len(test) == 0:
        return {"rmse": float("nan"), "mae": float("nan")}
    device = model_device(model)
    users = torch.tensor(test.users).to(device)
    items = torch.tensor(test.items).to(device)
    timed = getattr(model, "uses_times", False) and test.timestamps is not None
    times = torch.tensor(test.timestamps).to(device) if timed else None
    with _inference(model):
        pred = torch.cat([
            (model(users[i : i + batch_size], items[i : i + batch_size],
                   times[i : i + batch_size]) if timed else
             model(users[i : i + batch_size], items[i : i + batch_size])).float().reshape(-1)
            for i in range(0, len(test), batch_size)
        ])
    if clip is not None:
        pred = pred.clamp(float(clip[0]), float(clip[1]))
    target = torch.tensor(test.ratings)
    pred = pred.cpu()  # metrics in float64, which not every device supports
    return {"rmse": metrics.rmse(pred, target), "mae": metrics.mae(pred, target)}


SAMPLED_PAIRS = 1 << 14
"""Pairs (test rows × their 1 + n_neg candidates) one batch of sampled ranking scores by
default: 162 rows against 100 negatives. A model's temporaries per pair are then a few MB,
which glibc serves from its heap again and again, where batches of 1,024 rows were mapped
afresh and faulted in page by page (17.4 against 4.6 s with ``biased-mf`` on ml-20m's
shape; ``benchmarks/sampled_ranking.py``, README "Results")."""


def evaluate_sampled(
    model: torch.nn.Module,
    test: Interactions,
    negatives: np.ndarray,
    *,
    k: int = 10,
    batch_size: int | None = None,
) -> dict[str, float]:
    """Sampled ranking, exactly as the NCF reference evaluator (He et al. 2017).

    Each test row's held-out item is ranked among that row's negatives, and the metrics are
    averaged over test rows. Two rules make the numbers comparable with the papers:

    * A negative equal to the held-out item is dropped, as is the padding value ``-1``
      (1-5% of users in the NCF/DeepCF files list their own held-out item among the 99).
    * Ties are pessimistic: a negative whose score equals the held-out item's score ranks
      above it, ``rank = #{valid negatives with score >= positive score}`` (0-based). This
      matters for held-out items that never occur in training (their scores often tie).

    With one relevant item: ``HR@K = [rank < K]``, ``NDCG@K = [rank < K] / log2(rank + 2)``,
    ``mAP@K = [rank < K] / (rank + 1)`` and ``mrr = 1 / (rank + 1)``, not truncated at K.

    Args:
        model: scores pairs with ``model(users, items)``.
        test: one row per held-out (user, item) pair.
        negatives: ``int64[len(test), n_neg]`` items to rank each held-out item against.
        k: cut-off.
        batch_size: test rows per forward call (each row scores ``1 + n_neg`` pairs;
            default: as many as make ``SAMPLED_PAIRS`` pairs).

    Returns:
        ``{"hr@K", "ndcg@K", "mrr", "map@K"}`` as floats (NaN for an empty test log).
    """
    _check_k(k)
    negatives = np.asarray(negatives)
    if negatives.ndim != 2 or negatives.shape[0] != len(test):
        raise DataError(
            f"negatives must have shape (n_test={len(test)}, n_neg), got {negatives.shape}"
        )
    keys = (f"hr@{k}", f"ndcg@{k}", "mrr", f"map@{k}")
    if len(test) == 0:
        return dict.fromkeys(keys, float("nan"))
    batch_size = batch_size or max(1, SAMPLED_PAIRS // (1 + negatives.shape[1]))
    rank = _sampled_ranks(model, test, negatives, batch_size)  # [n_test], 0-based
    hits = torch.arange(k) == rank[:, None]  # [n_test, K]
    one = torch.ones_like(rank)
    values = (
        metrics.hit_rate(hits),
        metrics.ndcg(hits, one),
        1.0 / (rank + 1).double(),
        metrics.average_precision(hits, one),
    )
    return {key: float(value.mean()) for key, value in zip(keys, values)}


def _sampled_ranks(model, test: Interactions, negatives: np.ndarray,
                   batch_size: int) -> torch.Tensor:
    """0-based rank of each held-out item among its row's valid negatives (ties above)."""
    device = model_device(model)
    users = torch.tensor(test.users).to(device)
    items = torch.tensor(test.items).to(device)
    negs = torch.from_numpy(negatives.astype(np.int64, copy=False)).to(device)
    ranks = []
    with _inference(model):
        pairs = pair_scorer_of(model)  # item-side work once for all batches
        for i in range(0, len(test), batch_size):
            rows = slice(i, i + batch_size)
            u, pos, neg = users[rows], items[rows], negs[rows]
            valid = (neg >= 0) & (neg != pos[:, None])  # [B, n_neg]
            candidates = torch.cat([pos[:, None], neg.clamp(min=0)], dim=1)  # [B, 1 + n_neg]
            flat_users = u[:, None].expand_as(candidates).reshape(-1)
            scores = pairs(flat_users, candidates.reshape(-1)).reshape(candidates.shape)
            ranks.append(((scores[:, 1:] >= scores[:, :1]) & valid).sum(dim=1))
    return torch.cat(ranks).cpu()


def evaluate_full(
    model: torch.nn.Module,
    train: Interactions,
    test: Interactions,
    *,
    k: int = 10,
    batch_users: int | None = None,
    screen: int | None = None,
) -> dict[str, float]:
    """Full ranking: each test user's top K among all items they did not train on.

    For batches of users, ``model.score_all`` scores every item; the user's training items
    are set to ``-inf`` and the top K taken. A user's relevant items are their distinct test
    items that are not training items of that user (a repeat of a training item can never be
    recommended, so it is not counted); users left with no relevant item are skipped, and
    metrics are averaged over the remaining users. Rows are scored independently, so results
    do not depend on ``batch_users``. With fewer than K candidate items, the lists are shorter
    and precision still divides by K.

    Models that score a subset of the items for less (``scores_subsets``: the factor and
    tower models, not ItemPop, DMF or BayesMF) are screened first: every user's unseen items
    among the ``screen`` most popular in ``train`` are scored, and a user with at least K of
    them above each of their relevant items (by a margin) has none in the top K, so all
    their metrics are 0 without ranking the rest; only the other users are ranked in full,
    exactly as without the screen (:func:`deepmf.ranking.unresolved`).

    Args:
        model: provides ``score_all(users) -> scores[B, n_items]``.
        train: items to exclude from each user's ranking.
        test: relevant items.
        k: cut-off.
        batch_users: users scored per ``score_all`` call (default: as many as keep a
            batch's scores within :data:`~deepmf.models.base.SCORE_ELEMENTS`, at most
            1,024).
        screen: items scored first (default: ``deepmf.ranking.SCREEN_SHARE`` of them where
            the model has ``scores_subsets`` and that is at least 8 K; 0: rank all in full).

    Returns:
        ``{"hr@K", "ndcg@K", "mrr", "map@K", "recall@K", "precision@K"}`` as floats, where
        ``mrr`` is truncated at K; NaN values when no user has a relevant item.
    """
    _check_k(k)
    n_items = max(train.n_items, test.n_items)
    keys = (f"hr@{k}", f"ndcg@{k}", "mrr", f"map@{k}", f"recall@{k}", f"precision@{k}")
    relevant = relevant_keys(train, test, n_items)
    eval_users, counts = distinct(relevant // n_items, counts=True)
    if len(eval_users) == 0:
        return dict.fromkeys(keys, float("nan"))
    n_relevant = torch.from_numpy(counts.astype(np.int64))
    device = model_device(model)
    batch_users = batch_users or users_per_batch(n_items)
    ranker = TopK(train, test.n_users, n_items, relevant, k, device)
    eval_users_t = torch.from_numpy(eval_users).to(device)
    hits = torch.zeros(len(eval_users), min(k, n_items), dtype=torch.bool)
    with _inference(model):
        # item-side work once for all batches (plain modules need only score_all)
        score = scorer_of(model)
        todo = torch.arange(len(eval_users))
        head = screen_size(model, n_items, k, screen)
        if head:
            todo = unresolved(model, score, train, eval_users_t, ranker, head, SAMPLED_PAIRS)
        for i in range(0, len(todo), batch_users):
            rows = todo[i : i + batch_users]
            users = eval_users_t[rows.to(device)]
            hits[rows] = ranker.hits(users, score(users).float(), model)  # on the CPU
    values = (metrics.hit_rate(hits), metrics.ndcg(hits, n_relevant), metrics.mrr(hits),
              metrics.average_precision(hits, n_relevant), metrics.recall(hits, n_relevant),
              metrics.precision(hits, k))
    return {key: float(value.mean()) for key, value in zip(keys, values)}
