"""Loading a data set from its spec: which reader, and the one-row-per-pair policy."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from deepmf.data import Dataset, Interactions, Vocabulary, latest_rows
from deepmf.errors import DataError
from deepmf.readers import LOG_SUFFIXES, _find_ncf, _places, cache_dir, data_dirs, find_movielens
from deepmf.readers.download import ensure_release
from deepmf.readers.formats import MOVIELENS, TableFormat
from deepmf.readers.movielens import read_movielens
from deepmf.readers.ncf import read_ncf
from deepmf.readers.synthetic import parse_synthetic, synthetic
from deepmf.readers.table import read_log


def load(spec: str, data_dir, table: TableFormat, download: bool) -> Dataset:
    """The data set ``spec`` names, as its reader gives it."""
    if spec in MOVIELENS:
        folder = find_movielens(spec, data_dir)
        if folder is None:
            if not download:
                raise DataError(
                    f"dataset {spec} not found (looked for {spec}/{MOVIELENS[spec].ratings} "
                    f"in: {_places(data_dir)}) and downloading is off"
                )
            fmt = MOVIELENS[spec]
            folder = ensure_release(fmt.url, fmt.md5, cache_dir(), fmt.folder, fmt.ratings,
                                    places=data_dirs(data_dir))
        return read_movielens(spec, folder)
    if spec.startswith("ncf:"):
        return read_ncf(_find_ncf(spec[4:], data_dir))
    if spec.startswith("synthetic:"):
        return synthetic(**parse_synthetic(spec[len("synthetic:"):]))
    path = Path(spec).expanduser()
    candidates = [path]
    if not path.is_absolute():
        candidates += [d / path for d in data_dirs(data_dir)]
    found = next((p for p in candidates if p.exists()), None)
    if found is not None and found.is_dir():
        raise DataError(f"{found}: a directory, not a data file; give a log file, a dataset "
                        "name (with --data-dir for the folder above it) or ncf:PATH/NAME")
    if found is None:
        if path.suffix.lower() in LOG_SUFFIXES or os.sep in spec:
            raise DataError(f"{spec}: no such file (also looked in: {_places(data_dir)})")
        raise DataError(
            f"unknown dataset {spec!r}; choose from {', '.join(MOVIELENS)}, ncf:PATH/NAME, "
            "synthetic:users=U,items=I,interactions=N, or give a file path"
        )
    return _read_file(found, table)


def _read_file(path: Path, fmt: TableFormat) -> Dataset:
    frame = read_log(path, fmt)
    users, user_codes = Vocabulary.from_values(frame["user"].to_numpy())
    items, item_codes = Vocabulary.from_values(frame["item"].to_numpy())
    ratings = frame["rating"].to_numpy() if "rating" in frame else None
    times = frame["timestamp"].to_numpy() if "timestamp" in frame else None
    log = Interactions(user_codes, item_codes, ratings, times, len(users), len(items))
    span = None if ratings is None else \
        fmt.rating_range or (float(ratings.min()), float(ratings.max()))
    return Dataset(path.name, log, users, items, rating_range=span, source=str(path))


def latest_per_pair(dataset: Dataset) -> Dataset:
    """The data set with one row per (user, item) pair: its latest (greatest timestamp,
    ties to the later row; without timestamps the last in the file). So no pair can be on
    both sides of a split, and a rating that was changed counts once, as it ends.

    Repeated pairs are found by sorting the pairs' keys (NumPy's vectorized sort: 0.6 s
    for 20M keys, where hashing them with pandas took 3.5-4 s); each one's latest row by
    per-pair maxima (:func:`deepmf.data.latest_rows`), without sorting them by time."""
    log = dataset.interactions
    keys = log.users * log.n_items + log.items
    by_key = np.argsort(keys)
    ordered = keys[by_key]
    same = ordered[1:] == ordered[:-1]  # neighbours in key order that are one pair
    if not same.any():  # the common case
        return dataset
    repeated = np.zeros(len(keys), dtype=bool)
    repeated[1:] |= same
    repeated[:-1] |= same
    rows, pairs = by_key[repeated], ordered[repeated]  # the rows of repeated pairs, grouped
    del by_key, ordered, same, repeated
    group = np.cumsum(np.r_[True, pairs[1:] != pairs[:-1]]) - 1
    times = None if log.timestamps is None else log.timestamps[rows]
    keep = np.ones(len(log), dtype=bool)
    keep[rows] = False
    keep[latest_rows(group, int(group[-1]) + 1, times, rows)] = True
    return replace(dataset, interactions=log.take(np.flatnonzero(keep)))
