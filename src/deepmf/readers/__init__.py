"""Reading data sets: MovieLens by name, the NCF/DeepCF files, any log file, synthetic data.

Everything comes back as a :class:`~deepmf.data.Dataset` over dense ids. The MovieLens
formats are described by one table, :data:`MOVIELENS` (the idea of Surprise's
``BUILTIN_DATASETS``); adding a release is adding a row.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from deepmf.data import Dataset, Interactions, Vocabulary
from deepmf.errors import DataError
from deepmf.readers.download import ensure_release
from deepmf.readers.movielens import MOVIELENS, read_movielens
from deepmf.readers.ncf import ncf_files, read_ncf
from deepmf.readers.synthetic import parse_synthetic, synthetic
from deepmf.readers.table import TableFormat, read_log

LOG_SUFFIXES = (".csv", ".tsv", ".dat", ".txt", ".parquet")


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/deepmf``, else ``~/.cache/deepmf``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "deepmf"


def data_dirs(data_dir=None) -> list[Path]:
    """Directories searched, in order: ``data_dir``, ``$DEEPMF_DATA_DIR``, the cache dir."""
    dirs = [data_dir, os.environ.get("DEEPMF_DATA_DIR") or None, cache_dir()]
    return [Path(d).expanduser() for d in dirs if d is not None]


def find_movielens(name: str, data_dir=None) -> Path | None:
    """The folder holding ``name``'s ratings file, or None; ``DataError`` where that
    file's path exists but is not a file (it would otherwise be downloaded over)."""
    fmt = MOVIELENS[name]
    for root in data_dirs(data_dir):
        for folder in dict.fromkeys((name, fmt.folder)):
            ratings = root / folder / fmt.ratings
            if ratings.is_file():
                return root / folder
            if ratings.exists():
                raise DataError(f"{ratings}: not a file; {name} needs its ratings file there")
    return None


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
    both sides of a split, and a rating that was changed counts once, as it ends."""
    log = dataset.interactions
    keys = log.users * log.n_items + log.items
    if not pd.Series(keys).duplicated().any():  # hashing, no sort: the common case is free
        return dataset
    position = np.arange(len(log))
    order = np.lexsort((position, keys) if log.timestamps is None
                       else (position, log.timestamps, keys))
    last = np.ones(len(order), dtype=bool)
    last[:-1] = keys[order][:-1] != keys[order][1:]
    return replace(dataset, interactions=log.take(np.sort(order[last])))


def _places(data_dir) -> str:
    return ", ".join(str(d) for d in data_dirs(data_dir))


def load_dataset(
    spec: str,
    data_dir=None,
    *,
    table: TableFormat | None = None,
    download: bool = True,
    **columns,
) -> Dataset:
    """Load a data set by name (``ml-100k``...), ``ncf:PATH/NAME``, file path or ``synthetic:...``.

    Named sets and relative NCF paths are looked up in ``data_dir``, ``$DEEPMF_DATA_DIR``
    and the cache dir, in that order; MovieLens sets are then downloaded into the cache dir
    unless ``download=False``. How to read a file path is ``table`` (a
    :class:`~deepmf.readers.table.TableFormat`), or its fields as keywords
    (``user_col="who"``); they apply to file paths only.
    """
    dataset = _load(spec, data_dir, table or TableFormat(**columns), download)
    return dataset if spec.startswith("synthetic:") else latest_per_pair(dataset)


def _load(spec: str, data_dir, table: TableFormat, download: bool) -> Dataset:
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


def _find_ncf(base: str, data_dir) -> Path:
    given = Path(base).expanduser()
    candidates = [given] + ([d / given for d in data_dirs(data_dir)]
                            if not given.is_absolute() else [])
    for candidate in candidates:
        if ncf_files(candidate)[0].is_file():
            return candidate
    raise DataError(
        f"NCF dataset {base}: no {given.name}.train.rating at {given} or under: "
        f"{_places(data_dir)}"
    )


def known_datasets(data_dir=None) -> list[dict]:
    """Named data sets and NCF sets found on disk: ``name``, ``description``, ``found``."""
    rows = []
    for name, fmt in MOVIELENS.items():
        folder = find_movielens(name, data_dir)
        rows.append({"name": name, "description": fmt.description,
                     "found": None if folder is None else str(folder)})
    seen = set()
    for root in data_dirs(data_dir):
        for train in sorted((root / "deepcf").glob("*.train.rating")):
            base = train.parent / train.name[: -len(".train.rating")]
            if base.resolve() in seen:
                continue
            seen.add(base.resolve())
            rows.append({"name": f"ncf:{base}", "found": str(base),
                         "description": f"NCF/DeepCF leave-one-out files {base.name}"})
    return rows
