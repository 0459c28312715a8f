"""Side labels of users and items from what MovieLens ships (for ``bayes-mf``).

Users: age (by decade), gender, occupation and the first digit of the zip code, from
ml-100k's ``u.user`` or ml-1m's ``users.dat`` next to the ratings. Items: genres and the
release year (by five years) from the title, from :attr:`Dataset.item_info`. Each entity
gets a list of labels such as ``["age:20", "gender:M", "occupation:writer", "zip:9"]``:
JSON-serialisable, so the lists travel in a checkpoint's ``model_args``. These are static
metadata, never derived from ratings, so they cannot leak test pairs.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from deepmf.data import Dataset

_USER_FILES = {  # file name -> (separator, column names in file order)
    "u.user": ("|", ["user", "age", "gender", "occupation", "zip"]),
    "users.dat": ("::", ["user", "gender", "age", "occupation", "zip"]),
}
_YEAR = re.compile(r"\((\d{4})\)\s*$")


def user_labels(dataset: Dataset) -> list[list[str]] | None:
    """Labels of every user (``[]`` for users the file lacks), or None without a file."""
    folder = Path(dataset.source)
    for name, (sep, columns) in _USER_FILES.items():
        path = folder / name
        if path.is_file():
            table = pd.read_csv(path, sep=sep, names=columns, engine="python",
                                encoding="latin-1", dtype=str)
            break
    else:
        return None
    table["age"] = (pd.to_numeric(table["age"], errors="coerce") // 10 * 10).astype("Int64")
    table["zip"] = table["zip"].str[:1]
    codes = dataset.users.lookup(table["user"].to_numpy())
    labels: list[list[str]] = [[] for _ in range(dataset.n_users)]
    fields = ("age", "gender", "occupation", "zip")
    for code, row in zip(codes, table[list(fields)].itertuples(index=False)):
        if code >= 0:
            labels[code] = [f"{f}:{v}" for f, v in zip(fields, row) if not pd.isna(v)]
    return labels


def item_labels(dataset: Dataset) -> list[list[str]] | None:
    """Genres and release period of every item, or None without item metadata."""
    info = dataset.item_info
    if info is None:
        return None
    genres = info["genres"].fillna("").str.split("|")
    years = pd.to_numeric(info["title"].fillna("").str.extract(_YEAR)[0], errors="coerce")
    periods = (years // 5 * 5).astype("Int64")
    return [[f"genre:{g}" for g in row if g] + ([] if pd.isna(p) else [f"year:{p}"])
            for row, p in zip(genres, periods)]


def side_features(dataset: Dataset) -> dict[str, list[list[str]] | None]:
    """``{"user_features": ..., "item_features": ...}``, ready for ``BayesMF(**...)``."""
    users, items = user_labels(dataset), item_labels(dataset)
    if users is not None and not any(users):
        users = None
    if items is not None and not any(np.fromiter((len(r) for r in items), int)):
        items = None
    return {"user_features": users, "item_features": items}
