"""Use a trained model on dense ids, batch-first (the contract of implicit).

``recommend(model, users, k, exclude) -> (items[B, k], scores[B, k])``, similar items and
pair scores, all built on the models' scoring contract. Raw ids and run directories are the
business of :class:`deepmf.experiment.trained.TrainedModel`, which calls these.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from deepmf.data import gather_rows
from deepmf.errors import DeepMFError
from deepmf.models.base import (
    Recommender,
    masked_scores,
    model_device,
    scorer_of,
    users_per_batch,
)


def seen_pairs(csr: sp.csr_matrix, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(batch row, item) of every stored entry of the CSR rows ``users``, without a loop."""
    positions, counts = gather_rows(torch.from_numpy(csr.indptr.astype(np.int64)),
                                    torch.from_numpy(np.asarray(users, dtype=np.int64)))
    rows = np.repeat(np.arange(len(users)), counts.numpy())
    return rows, csr.indices[positions.numpy()]


def top_k(scores: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` columns per row, dropping trailing columns that are ``-inf`` in every row.

    Rows with fewer finite scores than the returned width are padded with item ``-1`` and
    score ``-inf``.
    """
    values, items = torch.topk(scores, min(k, scores.shape[1]), dim=1)
    return _trimmed(values.float().cpu().numpy(), items.cpu().numpy())


def _trimmed(values: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``top_k``'s lists from full-width top columns: ``-inf`` entries become item ``-1``,
    and the columns that are ``-inf`` in every row are dropped."""
    valid = np.isfinite(values)
    if not valid.all():
        width = int(valid.sum(1).max()) if len(values) else 0
        items, values = np.where(valid, items, -1)[:, :width], values[:, :width]
    return items, values


@torch.inference_mode()
def recommend(model: Recommender, users, k: int = 10, exclude: sp.csr_matrix | None = None,
              batch_users: int | None = None, scorer=None):
    """Top-``k`` items for each user (dense ids), best first.

    The users are scored a batch at a time (the item side's work once, through
    ``model.scorer()``), keeping each batch's top ``k`` only, so memory does not grow with
    users × items.

    Args:
        model: a trained model.
        users: dense user indices, ``int[B]``.
        k: list length; if a user has fewer than ``k`` items left after exclusion, the rest
            of that row is padded with item ``-1`` and score ``-inf``.
        exclude: ``n_users x n_items`` CSR of items to leave out (what each user has seen).
        batch_users: users scored at a time (default: as many as keep a batch's scores
            within :data:`~deepmf.models.base.SCORE_ELEMENTS`, at most 1,024).
        scorer: the function ``model.scorer()`` returns, from a caller that recommends
            again and again with a model that no longer changes (a server); by default it
            is made here, its item side computed on every call.

    Returns:
        ``(items int64[B, k], scores float32[B, k])`` as numpy arrays.
    """
    users = np.asarray(users, dtype=np.int64).reshape(-1)
    device = model_device(model)
    score = scorer or scorer_of(model)
    step = batch_users or users_per_batch(getattr(model, "n_items", 1))
    tops = []
    for start in range(0, max(len(users), 1), step):  # one (empty) batch for no users
        batch = users[start : start + step]
        scores = score(torch.from_numpy(batch).to(device)).float()  # [b, I]
        if exclude is not None:
            rows, cols = (torch.from_numpy(a.astype(np.int64)).to(device)
                          for a in seen_pairs(exclude, batch))
            scores = masked_scores(model, scores, rows, cols)  # never into model state
        values, items = torch.topk(scores, min(k, scores.shape[1]), dim=1)
        tops.append((values.float().cpu().numpy(), items.cpu().numpy()))
    return _trimmed(np.concatenate([v for v, _ in tops]), np.concatenate([i for _, i in tops]))


def normalized_item_vectors(model: Recommender, name: str | None = None) -> torch.Tensor:
    """Unit-length item vectors of a model; ``DeepMFError`` for models without any."""
    vectors = model.item_vectors()
    if vectors is None:
        label = name or type(model).__name__
        raise DeepMFError(f"model {label} has no item embeddings, so no similar items")
    return torch.nn.functional.normalize(vectors.detach().float(), dim=1)


@torch.inference_mode()
def similar_items(model: Recommender | torch.Tensor, items, k: int = 10):
    """Most similar items (cosine of item vectors) to each item, the item itself left out.

    ``model`` may also be the tensor from :func:`normalized_item_vectors`, computed once.
    Returns ``(items int64[B, k], similarities float32[B, k])``.
    """
    vectors = model if isinstance(model, torch.Tensor) else normalized_item_vectors(model)
    items = torch.as_tensor(np.asarray(items, dtype=np.int64).reshape(-1), device=vectors.device)
    sims = vectors[items] @ vectors.T  # [B, I]
    sims[torch.arange(len(items), device=sims.device), items] = float("-inf")
    return top_k(sims, k)


@torch.inference_mode()
def score_pairs(model: Recommender, users, items, pairs=None) -> np.ndarray:
    """The model's score of each (user, item) pair, dense ids (through ``pairs``, the
    function ``model.pair_scorer()`` returns, where a caller keeps one)."""
    device = model_device(model)
    as_tensor = lambda a: torch.as_tensor(np.asarray(a, dtype=np.int64), device=device)  # noqa: E731
    return (pairs or model)(as_tensor(users), as_tensor(items)).float().cpu().numpy()
