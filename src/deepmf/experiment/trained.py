"""A run directory loaded for use: raw ids in, raw ids out, titles and histories attached.

:class:`TrainedModel` loads a run once, keeps what serving needs in memory (model, seen
rows, vocabularies, titles, normalised item vectors) and translates raw ids at the edge;
the work itself is done by the dense-id functions of :mod:`deepmf.recommend`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from deepmf.checkpoint import load_checkpoint
from deepmf.data import Interactions
from deepmf.errors import DataError, DeepMFError
from deepmf.experiment.rundir import RunDir
from deepmf.models.base import pair_scorer_of, scorer_of
from deepmf.recommend import normalized_item_vectors, recommend, score_pairs, similar_items


class UnknownIdError(DeepMFError, LookupError):
    """A raw user or item id the model was not trained with."""

    def __init__(self, kind: str, raw, known: int):
        self.kind, self.raw = kind, raw
        super().__init__(f"unknown {kind} {raw!r} (the model knows {known:,} {kind}s)")


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
        self.run_dir = Path(run_dir)
        run = RunDir(run_dir)
        self.config, self.metrics = run.load_config(), run.load_metrics()
        self.splits = run.splits()
        if not self.splits:
            raise DataError(f"{self.run_dir}: no checkpoints in {run.checkpoints.name}/")
        if split is not None and split not in self.splits:
            raise DataError(f"{self.run_dir}: no checkpoint for split {split!r}; "
                            f"choose from {', '.join(self.splits)}")
        self.split = split or self.splits[0]
        self.name, self.model, self.seen = load_checkpoint(run.checkpoint(self.split), device)
        self.users, self.items = run.load_vocab()
        if (len(self.users), len(self.items)) != (self.seen.n_users, self.seen.n_items):
            raise DataError(f"{self.run_dir}: vocab.json does not match the checkpoint")
        self.exclude = self.seen.csr
        self.titles, self.genres = run.load_item_info(len(self.items))
        self.raw_users, self.raw_items = self.users.to_list(), self.items.to_list()
        vectors = self.model.item_vectors()
        self.item_vectors = None if vectors is None else normalized_item_vectors(self.model)
        self.popular = np.argsort(-self.seen.item_counts, kind="stable")
        log = self._read_log(data_dir) if load_data else None
        self.history_table = History.from_seen(self.seen, log)

    def _read_log(self, data_dir) -> Interactions | None:
        from deepmf.readers import load_dataset  # only when histories need the ratings

        c = self.config
        try:
            data = load_dataset(c.dataset, data_dir or c.data_dir, table=c.table_format(),
                                download=False)
        except (DeepMFError, OSError):
            return None
        same = (np.array_equal(data.users.ids, self.users.ids)
                and np.array_equal(data.items.ids, self.items.ids))
        return data.interactions if same else None

    # -- raw ids at the edge -------------------------------------------------------------

    def user_index(self, raw) -> int:
        try:
            return self.users.index(raw)
        except KeyError:
            raise UnknownIdError("user", raw, len(self.users)) from None

    def item_indices(self, raw_items) -> np.ndarray:
        try:
            return np.asarray([self.items.index(raw) for raw in raw_items], dtype=np.int64)
        except KeyError as missing:
            raise UnknownIdError("item", missing.args[0], len(self.items)) from None

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
        items, scores = recommend(self.model, users, k, self.exclude if exclude_seen else None,
                                  scorer=self.scorer)
        return self._lists(items, scores)

    def top_table(self, raw_users=None, k: int = 10, exclude_seen: bool = True,
                  fallback: bool = False) -> pd.DataFrame:
        """The top ``k`` of many users (raw ids; None: every user) as one long table, each
        user's rows best first: ``user``, ``rank`` (from 1), ``item``, ``score`` and
        ``source``. An unknown id raises ``UnknownIdError``, or with ``fallback`` gets the
        most-seen items (scored by their training count, ``source`` "popular"). The users
        are scored a batch at a time (:func:`~deepmf.recommend.recommend`), so memory grows
        with users × ``k``, not users × items."""
        ids = np.asarray(self.users.ids)
        if raw_users is None:
            raw, users = ids, np.arange(len(ids))
        else:
            raw = np.asarray(raw_users, dtype=object)
            users = self.users.lookup(raw) if len(raw) else np.zeros(0, dtype=np.int64)
        known = users >= 0
        if not (known.all() or fallback):
            raise UnknownIdError("user", raw[np.argmin(known)], len(ids))
        items = np.full((len(users), k), -1, dtype=np.int64)
        scores = np.full((len(users), k), -np.inf, dtype=np.float32)
        if known.any():
            found, values = recommend(self.model, users[known], k,
                                      self.exclude if exclude_seen else None,
                                      scorer=self.scorer)
            items[known, : found.shape[1]], scores[known, : found.shape[1]] = found, values
        popular = self.popular[:k]
        items[~known, : len(popular)] = popular
        scores[~known, : len(popular)] = self.seen.item_counts[popular]
        rows, ranks = np.nonzero(items >= 0)  # row by row: each user's list in order
        user = np.where(known, ids[np.maximum(users, 0)], raw)  # the model's own ids
        if not known.all():  # and ids as typed: one type for the column, text
            user = user.astype(str)
        return pd.DataFrame({
            "user": user[rows],
            "rank": ranks + 1, "item": np.asarray(self.items.ids)[items[rows, ranks]],
            "score": scores[rows, ranks],
            "source": np.where(known[rows], "model", "popular")})

    # The model's scoring functions, each made on first use and kept: the model no longer
    # changes, so its item side (DeepCF's towers over sparse rows) is computed once, not
    # for every request (85 ms a request for ``cfnet-ml`` on ml-1m, 185 ms for ``dmf``,
    # when it was).

    @functools.cached_property
    def scorer(self):
        """The function ``model.scorer()`` returns, for :meth:`recommend`."""
        with torch.inference_mode():
            return scorer_of(self.model)

    @functools.cached_property
    def pair_scorer(self):
        """The function ``model.pair_scorer()`` returns, for :meth:`score`."""
        with torch.inference_mode():
            return pair_scorer_of(self.model)

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
        scores = score_pairs(self.model, np.full(len(items), user), items, self.pair_scorer)
        return [self._scored(i, s) for i, s in zip(items.tolist(), scores.tolist())]

    def seen_mask(self, raw_user, raw_items) -> list[bool]:
        user, items = self.user_index(raw_user), self.item_indices(raw_items)
        return self.seen.contains(np.full(len(items), user), items).tolist()

    def history(self, raw_user, limit: int = 20) -> list[Scored]:
        """A user's training rows, most recent first when the data has times."""
        user = self.user_index(raw_user)
        h = self.history_table
        limit = min(limit, len(self.items))  # no user has seen more (and 10**20 overflows)
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
