"""Immutable interaction data with dense integer ids.

Everything below the CLI works with users and items numbered ``0..n-1``. The mapping
from the raw ids found in files to those indices lives in a :class:`Vocabulary`, made
once when data is read and stored with every trained model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from deepmf.errors import DataError


def gather_rows(indptr: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the stored entries of some CSR rows are, without a Python loop.

    Args:
        indptr: the CSR's row pointer, ``int64[n_rows + 1]``.
        rows: the rows wanted, ``int64[R]`` (repeats allowed).

    Returns:
        ``(positions, counts)``: ``positions`` indexes the CSR's ``indices``/``data`` for
        every entry of ``rows[0]``, then ``rows[1]``, ...; ``counts[r]`` is the length of
        ``rows[r]``, so entry ``e`` belongs to batch row ``repeat_interleave(arange(R),
        counts)[e]``.
    """
    starts = indptr[rows]
    counts = indptr[rows + 1] - starts  # [R]
    shift = torch.repeat_interleave(starts - (counts.cumsum(0) - counts), counts)  # [nnz]
    return torch.arange(len(shift), device=rows.device) + shift, counts


DENSE_IDS = 4  # ids below this many times their count: encoded by a table indexed by id


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """Raw id <-> dense index, in both directions.

    Attributes:
        ids: raw ids in index order (``ids[i]`` is the raw id of index ``i``).
    """

    ids: np.ndarray

    def __post_init__(self):
        if not pd.Index(self.ids).is_unique:
            raise DataError("vocabulary ids must be unique")

    @classmethod
    def from_values(cls, values) -> tuple["Vocabulary", np.ndarray]:
        """Build a vocabulary of the distinct values, sorted, and encode ``values`` with it.

        Whole numbers from 0 up to a few times their count (MovieLens' ids, most logs'
        numeric ids) are encoded through a table indexed by the id: 0.1 s for 20M ids,
        where hashing them took 0.9-1.4 s."""
        values = np.asarray(values)
        if values.dtype.kind in "iu" and len(values) and values.min() >= 0 and \
                values.max() < DENSE_IDS * len(values):
            present = np.zeros(int(values.max()) + 1, dtype=bool)
            present[values] = True
            index = np.cumsum(present, dtype=np.int64) - 1
            return cls(np.flatnonzero(present).astype(values.dtype)), index[values]
        codes, uniques = pd.factorize(pd.Series(values), sort=True)
        return cls(np.asarray(uniques)), codes.astype(np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def _index(self) -> pd.Index:
        return pd.Index(self.ids)

    def lookup(self, raw) -> np.ndarray:
        """Indices of raw ids; ``-1`` where a raw id is unknown.

        Raw ids are matched by value, and a string such as ``"42"`` also finds the
        integer id 42, so ids typed on a command line or in a URL work.
        """
        raw = np.atleast_1d(np.asarray(raw, dtype=object))
        codes = self._index.get_indexer(raw)
        if self.ids.dtype.kind in "iu" and (codes < 0).any():
            as_int = pd.to_numeric(pd.Series(raw), errors="coerce")
            retry = self._index.get_indexer(as_int.fillna(-(2**62)).astype(np.int64))
            codes = np.where(codes < 0, retry, codes)
        return codes.astype(np.int64)

    @cached_property
    def _codes(self) -> dict:
        """Raw id -> index for single lookups, also keyed by the id's text."""
        ids = self.ids.tolist()
        table = {str(raw): index for index, raw in enumerate(ids)}
        table.update((raw, index) for index, raw in enumerate(ids))
        return table

    def index(self, raw_id) -> int:
        """Index of one raw id (or its text, as typed in a URL); ``KeyError`` when unknown."""
        try:
            code = self._codes.get(raw_id, self._codes.get(str(raw_id)))
        except TypeError:  # unhashable
            code = None
        if code is None:
            raise KeyError(raw_id)
        return code

    def raw(self, indices) -> np.ndarray:
        return self.ids[np.asarray(indices, dtype=np.int64)]

    def to_list(self) -> list:
        return self.ids.tolist()


def distinct(values: np.ndarray, counts: bool = False):
    """The sorted distinct values (and, with ``counts``, how often each occurs), as
    ``np.unique`` gives them: by NumPy's vectorized sort, 0.25 s for 15M int64 keys, where
    ``np.unique`` (NumPy 2, which hashes before sorting) took 25 s on this machine."""
    ordered = np.sort(values)
    first = np.flatnonzero(np.r_[len(ordered) > 0, ordered[1:] != ordered[:-1]])
    return (ordered[first], np.diff(np.r_[first, len(ordered)])) if counts else ordered[first]


def latest_rows(groups: np.ndarray, n_groups: int, order_key: np.ndarray | None,
                rows: np.ndarray) -> np.ndarray:
    """For each of ``n_groups`` groups, which of ``rows`` (row numbers, one per entry of
    ``groups``) is its latest: the greatest ``order_key``, ties (and without a key, all)
    to the greatest row number; -1 for a group without rows. Per-group maxima, without
    sorting: 0.1 s for 15M rows, where sorting them by group, key and row took 7 s."""
    if order_key is not None and len(groups):  # each group's rows at its greatest key
        latest = np.full(n_groups, order_key.min(), dtype=order_key.dtype)
        np.maximum.at(latest, groups, order_key)
        at_latest = order_key == latest[groups]
        groups, rows = groups[at_latest], rows[at_latest]
    last = np.full(n_groups, -1, dtype=np.int64)
    np.maximum.at(last, groups, rows)
    return last


def _as_int64(name: str, values) -> np.ndarray:
    array = np.ascontiguousarray(values)
    if array.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.dtype.kind not in "iu":
        raise DataError(f"{name} must hold integers, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


@dataclass(frozen=True, eq=False)
class Interactions:
    """A log of (user, item[, rating][, timestamp]) rows over dense ids.

    Attributes:
        users: user index of each row, ``int64[n]`` in ``0..n_users-1``.
        items: item index of each row, ``int64[n]`` in ``0..n_items-1``.
        ratings: rating of each row (``float32[n]``) or ``None`` for implicit logs.
        timestamps: time of each row (``int64[n]``) or ``None``.
        n_users: size of the user id space (may exceed the users present).
        n_items: size of the item id space.
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    n_users: int = -1
    n_items: int = -1

    def __post_init__(self):
        users = _as_int64("users", self.users)
        items = _as_int64("items", self.items)
        if len(users) != len(items):
            raise DataError(f"users and items differ in length ({len(users)} != {len(items)})")
        object.__setattr__(self, "users", users)
        object.__setattr__(self, "items", items)
        if self.ratings is not None:
            ratings = np.ascontiguousarray(self.ratings, dtype=np.float32)
            if len(ratings) != len(users):
                raise DataError("ratings and users differ in length")
            if not np.isfinite(ratings).all():
                raise DataError("ratings must be finite numbers")
            object.__setattr__(self, "ratings", ratings)
        if self.timestamps is not None:
            timestamps = _as_int64("timestamps", self.timestamps)
            if len(timestamps) != len(users):
                raise DataError("timestamps and users differ in length")
            object.__setattr__(self, "timestamps", timestamps)
        for name, ids, size in (("users", users, "n_users"), ("items", items, "n_items")):
            n = getattr(self, size)
            if n < 0:
                n = int(ids.max()) + 1 if len(ids) else 0
                object.__setattr__(self, size, n)
            if len(ids) and (ids.min() < 0 or ids.max() >= n):
                raise DataError(f"{name} must lie in 0..{n - 1}")

    def __len__(self) -> int:
        return len(self.users)

    @property
    def is_explicit(self) -> bool:
        return self.ratings is not None

    def take(self, rows) -> "Interactions":
        """A new object holding the given rows (indices or boolean mask); id spaces kept."""
        return replace(
            self,
            users=self.users[rows],
            items=self.items[rows],
            ratings=None if self.ratings is None else self.ratings[rows],
            timestamps=None if self.timestamps is None else self.timestamps[rows],
        )

    def concat(self, other: "Interactions") -> "Interactions":
        """Rows of both logs (same id spaces) in one object."""
        def join(a, b):
            return None if a is None or b is None else np.concatenate([a, b])

        return Interactions(
            np.concatenate([self.users, other.users]),
            np.concatenate([self.items, other.items]),
            join(self.ratings, other.ratings),
            join(self.timestamps, other.timestamps),
            max(self.n_users, other.n_users),
            max(self.n_items, other.n_items),
        )

    def implicit(self, min_rating: float | None = None) -> "Interactions":
        """Positives only: rows with rating >= ``min_rating`` (all rows if None), no ratings."""
        rows = slice(None)
        if min_rating is not None and self.ratings is not None:
            rows = self.ratings >= min_rating
        return replace(self.take(rows), ratings=None)

    @cached_property
    def csr(self) -> sp.csr_matrix:
        """``n_users x n_items`` binary matrix of observed pairs (duplicates collapsed)."""
        data = np.ones(len(self), dtype=np.float32)
        matrix = sp.csr_matrix(
            (data, (self.users, self.items)), shape=(self.n_users, self.n_items)
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        matrix.sort_indices()
        return matrix

    @cached_property
    def pair_keys(self) -> np.ndarray:
        """Sorted unique ``user * n_items + item`` keys, for vectorized membership tests."""
        return distinct(self.users * self.n_items + self.items)

    def contains(self, users, items) -> np.ndarray:
        """Boolean mask: is each (user, item) pair present in this log?"""
        keys = np.asarray(users, dtype=np.int64) * self.n_items + np.asarray(items, dtype=np.int64)
        if len(self.pair_keys) == 0:
            return np.zeros(keys.shape, dtype=bool)
        pos = np.minimum(np.searchsorted(self.pair_keys, keys), len(self.pair_keys) - 1)
        return self.pair_keys[pos] == keys

    @cached_property
    def user_counts(self) -> np.ndarray:
        return np.bincount(self.users, minlength=self.n_users)

    @cached_property
    def item_counts(self) -> np.ndarray:
        return np.bincount(self.items, minlength=self.n_items)


@dataclass(frozen=True, eq=False)
class Dataset:
    """Interactions plus what a reader knows about them.

    Attributes:
        name: short name (``ml-100k``, ``ncf:ml-1m``, a file name...).
        interactions: the whole log over dense ids.
        users: raw user id vocabulary.
        items: raw item id vocabulary.
        item_info: per-item metadata indexed by dense item index (``title``, ``genres``), or None.
        rating_range: (lowest, highest) possible rating, or None for implicit logs.
        given: predefined splits by name (``u1``..``u5``, ``ua``, ``ub``, ``given``), each a
            ``(train, test)`` pair over the same vocabularies.
        test_negatives: for the NCF files, ``int64[n_test, n_neg]`` negatives aligned with the
            rows of ``given["given"][1]``; ``-1`` pads rows with fewer negatives.
        source: where the files were found.
    """

    name: str
    interactions: Interactions
    users: Vocabulary
    items: Vocabulary
    item_info: pd.DataFrame | None = None
    rating_range: tuple[float, float] | None = None
    given: dict[str, tuple[Interactions, Interactions]] = field(default_factory=dict)
    test_negatives: np.ndarray | None = None
    source: str = ""

    @property
    def n_users(self) -> int:
        return self.interactions.n_users

    @property
    def n_items(self) -> int:
        return self.interactions.n_items

    def restrict_users(self, keep: np.ndarray) -> "Dataset":
        """The rows of the users where ``keep`` (``bool[n_users]``) holds, in the log, every
        given split and the test negatives; vocabularies and id spaces unchanged."""
        keep = np.asarray(keep, dtype=bool)
        given = {name: (train.take(keep[train.users]), test.take(keep[test.users]))
                 for name, (train, test) in self.given.items()}
        negatives = self.test_negatives
        if negatives is not None and "given" in self.given:
            negatives = negatives[keep[self.given["given"][1].users]]
        return replace(self, interactions=self.interactions.take(keep[self.interactions.users]),
                       given=given, test_negatives=negatives)
