"""Full ranking's parts: each user's top K unseen items and which are relevant, and the
screen that rules out, on the popular items alone, the users who cannot have a relevant
item in their top K (:func:`deepmf.evaluate.evaluate_full` puts them together)."""

from __future__ import annotations

import numpy as np
import torch

from deepmf.data import Interactions, distinct, gather_rows
from deepmf.errors import ConfigError, DataError
from deepmf.models.base import masked_scores, pair_scorer_of, users_per_batch

SCREEN_SHARE = 1 / 16
"""Share of the items (the most popular) full ranking screens users on. With a trained
``neumf`` on NCF ml-1m, the 231 most popular put 10 items above the test item for 90 % of
the users (115: 86 %, 926: 92 %): about a sixth of the pairs are scored in all."""
SCREEN_MARGIN = 1e-3
"""A screened item is above a relevant one only past ``SCREEN_MARGIN · (1 + |s|)``: ``s``
comes from the model's pair scores, which may round unlike its ``scorer``."""


def screen_size(model, n_items: int, k: int, screen: int | None) -> int:
    """How many popular items full ranking screens users on (0: none)."""
    if screen is None:
        share = int(n_items * SCREEN_SHARE)
        screen = share if getattr(model, "scores_subsets", False) and share >= 8 * k else 0
    if screen < 0:
        raise ConfigError(f"screen must be 0 or more items, got {screen}")
    if screen and (getattr(model, "n_items", None) != n_items or not hasattr(model, "scorer")):
        return 0  # plain modules score all items; the full pass reports a mismatch
    return min(int(screen), n_items)


def unresolved(model, score, train: Interactions, eval_users: torch.Tensor, ranker: "TopK",
               head: int, pairs_per_batch: int) -> torch.Tensor:
    """Indices into ``eval_users`` of the users whose top K may hold a relevant item: fewer
    than K of the ``head`` most popular (unseen) items above their best relevant item's
    score by the margin. NaN scores rule nobody out. A screen whose first batch of users
    rules out fewer than twice its share of the items stops there (``neumf`` untrained on
    ml-1m ruled out one user of 6,040, and screening them all cost 12 % more)."""
    device = eval_users.device
    users, items = ranker.relevant // ranker.n_items, ranker.relevant % ranker.n_items
    owner = torch.searchsorted(eval_users, users)
    best = torch.full((len(eval_users),), float("-inf"), device=device)
    pairs = pair_scorer_of(model)  # as sampled ranking scores its pairs, in such batches
    for i in range(0, len(users), pairs_per_batch):
        part = slice(i, i + pairs_per_batch)
        best.scatter_reduce_(0, owner[part], pairs(users[part], items[part]).float(), "amax")
    bar = best + SCREEN_MARGIN * (1 + best.abs())
    popular = np.argsort(-np.bincount(train.items, minlength=ranker.n_items), kind="stable")
    head_items = torch.from_numpy(popular[:head]).to(device)
    column = torch.full((ranker.n_items,), -1, dtype=torch.long, device=device)
    column[head_items] = torch.arange(head, device=device)
    keep = torch.ones(len(eval_users), dtype=torch.bool)
    step = users_per_batch(head)
    for i in range(0, len(eval_users), step):
        batch = eval_users[i : i + step]
        rows, cols = ranker.seen(batch)
        cols = column[cols]
        seen = cols >= 0
        scores = masked_scores(model, score(batch, head_items).float(), rows[seen], cols[seen])
        keep[i : i + step] = ((scores > bar[i : i + step, None]).sum(1) < ranker.k).cpu()
        if i == 0 and (~keep[:step]).float().mean() < 2 * head / ranker.n_items:
            break  # it does not pay (an untrained model's scores owe nothing to popularity)
    return torch.nonzero(keep).view(-1)


def relevant_keys(train: Interactions, test: Interactions, n_items: int) -> np.ndarray:
    """Sorted ``user * n_items + item`` keys of the distinct test pairs not in train."""
    relevant = distinct(test.users * n_items + test.items)
    users, items = relevant // n_items, relevant % n_items
    return relevant[~((items < train.n_items) & train.contains(users, items))]


class TopK:
    """Each user's top K unseen items, and which of them are relevant."""

    def __init__(self, train: Interactions, n_users: int, n_items: int, relevant: np.ndarray,
                 k: int, device: torch.device):
        csr = train.csr
        indptr = np.pad(csr.indptr.astype(np.int64), (0, max(0, n_users - train.n_users)),
                        "edge")  # covers test users unknown to train
        self.indptr = torch.from_numpy(indptr).to(device)
        self.indices = torch.from_numpy(csr.indices.astype(np.int64)).to(device)
        self.relevant = torch.from_numpy(relevant).to(device)
        self.n_items, self.k = n_items, min(k, n_items)

    def hits(self, users: torch.Tensor, scores: torch.Tensor, model) -> torch.Tensor:
        """``bool[B, K']``: is the j-th best unseen item of each user relevant? (``model``'s
        ``scores``, masked in place where it allows, :func:`masked_scores`)"""
        if scores.shape != (len(users), self.n_items):
            raise DataError(f"score_all returned shape {tuple(scores.shape)}, "
                            f"expected {(len(users), self.n_items)}")
        scores = masked_scores(model, scores, *self.seen(users))
        top = scores.topk(self.k, dim=1).indices  # [B, K']
        wanted = users[:, None] * self.n_items + top
        pos = torch.searchsorted(self.relevant, wanted).clamp(max=len(self.relevant) - 1)
        return (self.relevant[pos] == wanted).cpu()  # metrics run on the CPU

    def seen(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch row, item)`` of every training item of ``users``."""
        positions, counts = gather_rows(self.indptr, users)
        rows = torch.repeat_interleave(torch.arange(len(users), device=users.device), counts)
        return rows, self.indices[positions]
