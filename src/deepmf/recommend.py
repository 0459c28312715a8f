"""Use a trained model: top-K recommendations, similar items, pair scores, user histories.

The functions at the top work on dense ids, batch-first (the contract of implicit):
``recommend(model, users, k, exclude) -> (items[B, k], scores[B, k])``, all built on the
models' ``score_all``. :class:`TrainedModel` loads a run directory once, keeps what serving
needs in memory (model, seen rows, vocabularies, titles, normalised item vectors) and
translates raw ids at the edge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from deepmf.checkpoint import load_checkpoint
from deepmf.data import Interactions, Vocabulary
from deepmf.errors import DataError, DeepMFError
from deepmf.models import Recommender

CHECKPOINTS = "checkpoints"


class UnknownIdError(DeepMFError, LookupError):
    """A raw user or item id the model was not trained with."""

    def __init__(self, kind: str, raw, known: int):
        self.kind, self.raw = kind, raw
        super().__init__(f"unknown {kind} {raw!r} (the model knows {known:,} {kind}s)")


def seen_pairs(csr: sp.csr_matrix, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(batch row, item) of every stored entry of the CSR rows ``users``, without a loop."""
    starts, ends = csr.indptr[users], csr.indptr[users + 1]
    lengths = ends - starts
    rows = np.repeat(np.arange(len(users)), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return rows, csr.indices[np.repeat(starts, lengths) + offsets]


def top_k(scores: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` columns per row, dropping trailing columns that are ``-inf`` in every row.

    Rows with fewer finite scores than the returned width are padded with item ``-1`` and
    score ``-inf``.
    """
    values, items = torch.topk(scores, min(k, scores.shape[1]), dim=1)
    values, items = values.float().cpu().numpy(), items.cpu().numpy()
    valid = np.isfinite(values)
    if not valid.all():
        width = int(valid.sum(1).max()) if len(values) else 0
        items, values = np.where(valid, items, -1)[:, :width], values[:, :width]
    return items, values


@torch.inference_mode()
def recommend(model: Recommender, users, k: int = 10, exclude: sp.csr_matrix | None = None):
    """Top-``k`` items for each user (dense ids), best first.

    Args:
        model: a trained model.
        users: dense user indices, ``int[B]``.
        k: list length; if a user has fewer than ``k`` items left after exclusion, the rest
            of that row is padded with item ``-1`` and score ``-inf``.
        exclude: ``n_users x n_items`` CSR of items to leave out (what each user has seen).

    Returns:
        ``(items int64[B, k], scores float32[B, k])`` as numpy arrays.
    """
    users = np.asarray(users, dtype=np.int64).reshape(-1)
    device = next(model.parameters(), torch.empty(0)).device
    scores = model.score_all(torch.from_numpy(users).to(device)).float()  # [B, I]
    if exclude is not None:
        rows, cols = (torch.from_numpy(a.astype(np.int64)).to(device)
                      for a in seen_pairs(exclude, users))
        # out of place: score_all may return a view of model state (ItemPop's counts)
        scores = scores.index_put((rows, cols), torch.tensor(float("-inf"), device=device))
    return top_k(scores, k)


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
def score_pairs(model: Recommender, users, items) -> np.ndarray:
    """The model's score of each (user, item) pair, dense ids."""
    device = next(model.parameters(), torch.empty(0)).device
    as_tensor = lambda a: torch.as_tensor(np.asarray(a, dtype=np.int64), device=device)  # noqa: E731
    return model(as_tensor(users), as_tensor(items)).float().cpu().numpy()


@dataclass(frozen=True)
class Scored:
    """One item of a result list, with what the dataset says about it."""

    item: int | str
    score: float | None
    title: str | None = None
    genres: tuple[str, ...] = ()
    rating: float | None = None
    timestamp: int | None = None


@dataclass(frozen=True, eq=False)
class History:
    """Each user's training rows, most recent first: ``items[indptr[u]:indptr[u + 1]]``."""

    indptr: np.ndarray
    items: np.ndarray
    ratings: np.ndarray | None = None
    timestamps: np.ndarray | None = None

    @classmethod
    def from_seen(cls, seen: Interactions, log: Interactions | None = None) -> "History":
        """The seen rows, with ratings and times taken from ``log`` (the full data) if given."""
        if log is None or log.timestamps is None:
            csr = seen.csr
            return cls(csr.indptr.astype(np.int64), csr.indices.astype(np.int64))
        rows = log.take(seen.contains(log.users, log.items))
        order = np.lexsort((-rows.timestamps, rows.users))
        users = rows.users[order]
        indptr = np.searchsorted(users, np.arange(seen.n_users + 1))
        ratings = None if rows.ratings is None else rows.ratings[order]
        return cls(indptr, rows.items[order], ratings, rows.timestamps[order])


class TrainedModel:
    """A run directory loaded once for recommending and serving; raw ids in, raw ids out.

    Args:
        run_dir: a folder written by ``deepmf train``.
        split: which checkpoint of the run to use (default: the first in sorted order,
            ``u1`` of a ``folds`` run).
        data_dir: where to find the dataset for ratings and dates in user histories; if it
            cannot be found, histories list the seen items without them.
        load_data: set False to skip reading the dataset at all.
    """

    def __init__(self, run_dir: str | Path, split: str | None = None, data_dir=None,
                 load_data: bool = True, device: str = "cpu"):
        from deepmf.rundir import load_run

        self.run_dir = Path(run_dir)
        self.config, self.metrics = load_run(self.run_dir)
        self.splits = sorted(p.name for p in (self.run_dir / CHECKPOINTS).glob("*") if p.is_dir())
        if not self.splits:
            raise DataError(f"{self.run_dir}: no checkpoints in {CHECKPOINTS}/")
        if split is not None and split not in self.splits:
            raise DataError(f"{self.run_dir}: no checkpoint for split {split!r}; "
                            f"choose from {', '.join(self.splits)}")
        self.split = split or self.splits[0]
        self.name, self.model, self.seen = load_checkpoint(
            self.run_dir / CHECKPOINTS / self.split, device)
        self.users, self.items = read_vocab(self.run_dir / "vocab.json")
        if (len(self.users), len(self.items)) != (self.seen.n_users, self.seen.n_items):
            raise DataError(f"{self.run_dir}: vocab.json does not match the checkpoint")
        self.exclude = self.seen.csr
        self.titles, self.genres = read_item_info(self.run_dir / "items.csv", len(self.items))
        self.raw_users, self.raw_items = self.users.to_list(), self.items.to_list()
        self._user_codes, self._item_codes = id_table(self.raw_users), id_table(self.raw_items)
        vectors = self.model.item_vectors()
        self.item_vectors = None if vectors is None else normalized_item_vectors(self.model)
        self.popular = np.argsort(-self.seen.item_counts, kind="stable")
        log = self._read_log(data_dir) if load_data else None
        self.history_table = History.from_seen(self.seen, log)

    def _read_log(self, data_dir) -> Interactions | None:
        from deepmf.readers import load_dataset

        c = self.config
        try:
            data = load_dataset(c.dataset, data_dir or c.data_dir, sep=c.sep, user_col=c.user_col,
                                item_col=c.item_col, rating_col=c.rating_col,
                                time_col=c.time_col, download=False)
        except (DeepMFError, OSError):
            return None
        same = (np.array_equal(data.users.ids, self.users.ids)
                and np.array_equal(data.items.ids, self.items.ids))
        return data.interactions if same else None

    # -- raw ids at the edge -------------------------------------------------------------

    def user_index(self, raw) -> int:
        code = self._user_codes.get(raw, self._user_codes.get(str(raw)))
        if code is None:
            raise UnknownIdError("user", raw, len(self.users))
        return code

    def item_indices(self, raw_items) -> np.ndarray:
        codes = []
        for raw in raw_items:
            code = self._item_codes.get(raw, self._item_codes.get(str(raw)))
            if code is None:
                raise UnknownIdError("item", raw, len(self.items))
            codes.append(code)
        return np.asarray(codes, dtype=np.int64)

    def _scored(self, item: int, score: float, **extra) -> Scored:
        return Scored(self.raw_items[item], score, self.titles[item], self.genres[item], **extra)

    def _lists(self, items: np.ndarray, scores: np.ndarray) -> list[list[Scored]]:
        return [[self._scored(i, s) for i, s in zip(row.tolist(), vals.tolist()) if i >= 0]
                for row, vals in zip(items, scores)]

    def recommend(self, raw_users, k: int = 10, exclude_seen: bool = True) -> list[list[Scored]]:
        """Top-``k`` per raw user id; ``UnknownIdError`` for an id the model does not know."""
        return self.recommend_indices([self.user_index(u) for u in raw_users], k, exclude_seen)

    def recommend_indices(self, users, k: int = 10, exclude_seen: bool = True):
        """As :meth:`recommend`, for dense user indices."""
        items, scores = recommend(self.model, users, k, self.exclude if exclude_seen else None)
        return self._lists(items, scores)

    def popular_items(self, k: int = 10) -> list[Scored]:
        """The fallback for unknown users: most-seen items, scored by their training count."""
        counts = self.seen.item_counts
        return [self._scored(i, float(counts[i])) for i in self.popular[:k].tolist()]

    def similar(self, raw_items, k: int = 10) -> list[list[Scored]]:
        """Nearest items by cosine of the model's item vectors, per raw item id."""
        if self.item_vectors is None:
            raise DeepMFError(f"model {self.name} has no item embeddings, so no similar items")
        return self._lists(*similar_items(self.item_vectors, self.item_indices(raw_items), k))

    def score(self, raw_user, raw_items) -> list[Scored]:
        """The model's score of each given item for one user (a rating or a logit)."""
        user, items = self.user_index(raw_user), self.item_indices(raw_items)
        scores = score_pairs(self.model, np.full(len(items), user), items)
        return [self._scored(i, s) for i, s in zip(items.tolist(), scores.tolist())]

    def seen_mask(self, raw_user, raw_items) -> list[bool]:
        user, items = self.user_index(raw_user), self.item_indices(raw_items)
        return self.seen.contains(np.full(len(items), user), items).tolist()

    def history(self, raw_user, limit: int = 20) -> list[Scored]:
        """A user's training rows, most recent first when the data has times."""
        user = self.user_index(raw_user)
        h = self.history_table
        rows = range(h.indptr[user], min(h.indptr[user + 1], h.indptr[user] + limit))
        return [self._scored(
            int(h.items[r]), None,
            rating=None if h.ratings is None else float(h.ratings[r]),
            timestamp=None if h.timestamps is None else int(h.timestamps[r]),
        ) for r in rows]

    def n_seen(self, raw_user) -> int:
        user = self.user_index(raw_user)
        return int(self.history_table.indptr[user + 1] - self.history_table.indptr[user])

    def describe(self) -> dict:
        """What ``GET /model`` reports: model, data, split used, metrics, counts."""
        split_note = None
        if len(self.splits) > 1:
            split_note = (f"run has checkpoints {', '.join(self.splits)}; serving "
                          f"{self.split} (the first in sorted order)")
        return {
            "model": self.name, "dataset": self.metrics.get("dataset", self.config.dataset),
            "task": self.metrics.get("task"), "split": self.split, "splits": self.splits,
            "split_note": split_note, "metrics": self.metrics.get("test", {}),
            "n_users": len(self.users), "n_items": len(self.items),
            "n_interactions": len(self.seen), "has_titles": any(self.titles),
            "has_item_vectors": self.item_vectors is not None,
            "has_ratings": self.history_table.ratings is not None,
        }


def id_table(raw_ids: list) -> dict:
    """Raw id -> dense index, also keyed by the id's text so that ``"42"`` finds 42."""
    table = {str(raw): index for index, raw in enumerate(raw_ids)}
    table.update((raw, index) for index, raw in enumerate(raw_ids))
    return table


def read_vocab(path: Path) -> tuple[Vocabulary, Vocabulary]:
    try:
        vocab = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: missing; the run directory is incomplete") from None
    return Vocabulary(np.asarray(vocab["users"])), Vocabulary(np.asarray(vocab["items"]))


def read_item_info(path: Path, n_items: int) -> tuple[list, list]:
    """Titles (None where unknown) and genre tuples per dense item index, from items.csv."""
    titles, genres = [None] * n_items, [()] * n_items
    if not path.is_file():
        return titles, genres
    info = pd.read_csv(path, index_col="index", keep_default_na=False, dtype={"item": str})
    for index, title, genre in zip(info.index.tolist(), info.get("title", [""] * len(info)),
                                   info.get("genres", [""] * len(info))):
        if 0 <= index < n_items:
            titles[index] = str(title) or None
            genres[index] = tuple(g for g in str(genre).split("|") if g)
    return titles, genres
