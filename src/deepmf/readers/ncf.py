"""The NCF/DeepCF leave-one-out files: ``NAME.train.rating``, ``.test.rating``, ``.negative``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from deepmf.data import Dataset, Interactions, Vocabulary
from deepmf.errors import DataError
from deepmf.readers._delimited import INT64_MAX, check_file, fail, int_problem, read_fields
from deepmf.readers.formats import ncf_files

_PAIR = re.compile(r"^\((\d+),(\d+)\)$")


def read_ncf(base: Path) -> Dataset:
    """Read ``<base>.train.rating``, ``<base>.test.rating`` and ``<base>.test.negative``.

    Ids are the files' own 0-based integers (identity vocabularies over ``0..max``). The
    logs are implicit; timestamps are kept where a file has them.
    """
    train_path, test_path, negative_path = ncf_files(base)
    train = _read_rating_file(train_path)
    test = _read_rating_file(test_path)
    pairs, negatives = _read_negatives(negative_path)
    _check_pairs(negative_path, test_path, pairs, test)
    n_values = len(train) + len(test) + negatives.size
    n_users = _id_space("user", n_values, (train_path, train["user"]), (test_path, test["user"]))
    n_items = _id_space("item", n_values, (train_path, train["item"]), (test_path, test["item"]),
                        (negative_path, pd.Series(negatives.max(axis=1, initial=-1))))

    def interactions(frame: pd.DataFrame) -> Interactions:
        times = frame["timestamp"].to_numpy() if "timestamp" in frame else None
        return Interactions(
            frame["user"].to_numpy(), frame["item"].to_numpy(), None, times, n_users, n_items
        )

    train_log, test_log = interactions(train), interactions(test)
    return Dataset(
        name=f"ncf:{base.name}",
        interactions=train_log.concat(test_log),
        users=Vocabulary(np.arange(n_users)),
        items=Vocabulary(np.arange(n_items)),
        given={"given": (train_log, test_log)},
        test_negatives=negatives,
        source=str(base.parent),
    )


def _read_rating_file(path: Path) -> pd.DataFrame:
    """``user\\titem[\\trating[\\ttimestamp]]`` lines; the rating is dropped (implicit data)."""
    check_file(path)
    with open(path, "rb") as handle:
        width = handle.readline().count(b"\t") + 1
    if not 2 <= width <= 4:
        raise DataError(f"{path}: line 1: expected 2 to 4 tab-separated fields, got {width}")
    usecols = [0, 1] + ([3] if width == 4 else [])
    names = ["user", "item"] + (["timestamp"] if width == 4 else [])
    frame = read_fields(
        path, sep="\t", usecols=usecols, names=names, n_fields=width,
        dtypes={"user": np.int64, "item": np.int64, "timestamp": np.int64},
        int_columns=usecols,
    )
    if (frame[["user", "item"]].to_numpy() < 0).any():
        row = int(np.flatnonzero((frame[["user", "item"]].to_numpy() < 0).any(axis=1))[0])
        raise DataError(f"{path}: line {row + 1}: negative id")
    return frame


MAX_SPARE_IDS = 1_000_000
"""How far the id space may exceed ten times the ids a set's files hold (ids are dense)."""


def _id_space(kind: str, n_values: int, *columns: tuple[Path, pd.Series]) -> int:
    """``1 + the largest id``; ``DataError`` where that is absurd for data this size (the
    files' ids index arrays directly, so an id of 10**12 would ask for terabytes)."""
    size = 1 + max(int(ids.max()) for _, ids in columns)
    limit = 10 * n_values + MAX_SPARE_IDS
    if size > limit:
        path, ids = max(columns, key=lambda c: int(c[1].max()))
        row = int(ids.to_numpy().argmax())
        raise DataError(f"{path}: line {row + 1}: {kind} id {size - 1:,} would make an id space "
                        f"of {size:,} {kind}s for {n_values:,} ids in all (at most {limit:,}); "
                        "NCF ids are dense numbers from 0")
    return size


def _read_negatives(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(user,item)\\tneg1\\t...`` lines -> pairs ``int64[n, 2]``, negatives ``int64[n, k]``."""
    check_file(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid utf-8 text (byte {exc.start + 1})") from None
    lines = text.splitlines()
    width = max((line.count("\t") for line in lines), default=0) + 1
    try:
        frame = pd.read_csv(
            path, sep="\t", header=None, names=range(width), engine="c",
            dtype={0: str, **{c: np.float64 for c in range(1, width)}},
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise fail(path, _locate_negative(lines), exc) from None
    pairs = frame[0].str.extract(_PAIR.pattern)
    if pairs.isna().to_numpy().any():
        raise fail(path, _locate_negative(lines), "bad (user,item) pair")
    values = frame.iloc[:, 1:].to_numpy()
    while values.shape[1] and np.isnan(values[:, -1]).all():  # trailing tabs
        values = values[:, :-1]
    filled = np.nan_to_num(values, nan=-1.0)
    bad = (filled != np.floor(filled)) | (values < 0) | (filled > INT64_MAX)
    if bad.any():
        raise fail(path, _locate_negative(lines), "negative ids must be integers >= 0")
    return pairs.to_numpy(np.int64), filled.astype(np.int64)


def _locate_negative(lines: list[str]) -> str | None:
    row = 0
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        row += 1
        first, *rest = line.rstrip("\t ").split("\t")
        if not _PAIR.match(first):
            return f"line {lineno}: expected '(user,item)' first, got {first!r}"
        bad = next((f for f in rest if int_problem(f) or int(f) < 0), None)
        if bad is not None:
            return f"line {lineno}: negative item {bad!r} is not an item id (an integer >= 0)"
    return None


def _check_pairs(negative_path, test_path, pairs: np.ndarray, test: pd.DataFrame) -> None:
    expected = test[["user", "item"]].to_numpy()
    if len(pairs) != len(expected):
        raise DataError(
            f"{negative_path}: {len(pairs)} lines but {test_path.name} has {len(expected)}"
        )
    differs = (pairs != expected).any(axis=1)
    if differs.any():
        row = int(np.flatnonzero(differs)[0])
        raise DataError(
            f"{negative_path}: line {row + 1}: pair ({pairs[row, 0]},{pairs[row, 1]}) does not "
            f"match line {row + 1} of {test_path.name} ({expected[row, 0]},{expected[row, 1]})"
        )
