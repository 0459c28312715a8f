"""MovieLens releases: one table of formats (adding a release is adding a row) and their parsers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from deepmf.data import Dataset, Interactions, Vocabulary
from deepmf.errors import DataError
from deepmf.readers._delimited import check_file, fail, locate_error, read_fields
from deepmf.readers.formats import MOVIELENS, MovieLensFormat


def read_ratings(path, fmt: MovieLensFormat) -> pd.DataFrame:
    """A MovieLens ratings file -> columns ``user``, ``item`` (int64), ``rating`` (float32),
    ``timestamp`` (int64). Strict: field counts, integer ids and the rating range are checked."""
    path = Path(path)
    names = ["user", "item", "rating", "timestamp"]
    dtypes = {"user": np.int64, "item": np.int64, "rating": np.float32, "timestamp": np.int64}
    return read_fields(path, sep=fmt.sep, usecols=range(4), names=names, dtypes=dtypes,
                       n_fields=4, int_columns=(0, 1, 3), rating_range=fmt.rating_range,
                       encoding=fmt.encoding, header=fmt.header)


def read_movies(path, fmt: MovieLensFormat) -> pd.DataFrame:
    """Movie metadata indexed by raw movie id, columns ``title`` and ``genres`` (``A|B``).

    Strict about the movie ids, which must be integers (the line of the first that is not
    is named), lenient about the rest: a missing title or genre is empty, and ``u.item``
    without its ``u.genre`` gives titles without genres.
    """
    path = Path(path)
    check_file(path)
    try:
        if fmt.movies_kind == "csv":
            frame = pd.read_csv(path, encoding=fmt.encoding, dtype=str, keep_default_na=False)
            frame = frame.rename(columns={"movieId": "item"})[["item", "title", "genres"]]
            lines = frame.index.to_numpy() + 2  # after the header
        elif fmt.movies_kind == "dat":
            raw = path.read_bytes()
            try:
                text = raw.decode(fmt.encoding)
            except UnicodeDecodeError:  # not the encoding the table expects: read as latin-1
                text = raw.decode("latin-1")
            rows = pd.Series(text.splitlines())
            rows = rows[rows.str.strip() != ""]
            frame = rows.str.split("::", n=2, expand=True).reindex(columns=range(3))
            frame.columns = ["item", "title", "genres"]
            lines = frame.index.to_numpy() + 1
        else:
            frame, lines = _read_u_item(path, fmt)
    except DataError:
        raise
    except (ValueError, KeyError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot read movies ({' '.join(str(exc).split())})") from None
    frame["item"] = _movie_ids(path, frame["item"], lines)
    for column in ("title", "genres"):  # a column of missing values reads as float
        frame[column] = frame[column].astype(object).where(frame[column].notna(), "")
    frame["genres"] = frame["genres"].replace("(no genres listed)", "")
    return frame.set_index("item")[["title", "genres"]]


def _movie_ids(path: Path, ids: pd.Series, lines: np.ndarray) -> np.ndarray:
    text = ids.astype(object).where(ids.notna(), "").astype(str).str.strip()
    good = text.str.fullmatch(r"[+-]?[0-9]{1,18}").to_numpy(bool)
    if not good.all():
        row = int(np.flatnonzero(~good)[0])
        raise DataError(f"{path}: line {lines[row]}: movie id {text.iloc[row]!r} is not an "
                        "integer")
    return text.astype(np.int64).to_numpy()


def _genre_names(path: Path, fmt: MovieLensFormat) -> list[str]:
    """``u.genre``'s names in index order (``name|index`` lines)."""
    check_file(path)
    try:
        genres = pd.read_csv(path, sep="|", header=None, encoding=fmt.encoding, quoting=3,
                             dtype={0: str, 1: np.int64}, usecols=[0, 1])
    except (ValueError, OverflowError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: not name|index lines ({' '.join(str(exc).split())})") from None
    return genres.sort_values(1)[0].astype(str).tolist()


def _read_u_item(path: Path, fmt: MovieLensFormat) -> tuple[pd.DataFrame, np.ndarray]:
    """``id|title|release|video release|url|flag...``: one 0/1 flag per ``u.genre`` line."""
    genre_path = path.parent / "u.genre"
    names = _genre_names(genre_path, fmt) if genre_path.exists() else []
    try:
        table = pd.read_csv(path, sep="|", header=None, encoding=fmt.encoding, quoting=3,
                            dtype=str, keep_default_na=False)
    except pd.errors.ParserError as exc:
        raise fail(path, locate_error(path, sep="|", encoding=fmt.encoding), exc) from None
    lines = table.index.to_numpy() + 1
    if table.shape[1] < 5 + len(names):
        raise DataError(f"{path}: {table.shape[1]} fields a line; u.item has id, title, two "
                        f"dates, a URL and {len(names)} genre flags")
    flags = table.iloc[:, table.shape[1] - len(names):]
    valid = flags.isin(["0", "1"]).to_numpy().all(axis=1)
    if not valid.all():
        row = int(np.flatnonzero(~valid)[0])
        raise DataError(f"{path}: line {lines[row]}: genre flags must be 0 or 1")
    marks = np.where(flags.to_numpy() == "1", np.asarray([n + "|" for n in names], object), "")
    joined = marks.sum(axis=1) if len(names) else np.full(len(table), "", object)
    return pd.DataFrame({"item": table[0], "title": table[1],
                         "genres": pd.Series(joined, dtype=object).str.rstrip("|")}), lines


def read_movielens(name: str, folder: Path) -> Dataset:
    """Read the MovieLens release ``name`` from ``folder``."""
    fmt = MOVIELENS[name]
    frame = read_ratings(folder / fmt.ratings, fmt)
    users, user_codes = Vocabulary.from_values(frame["user"].to_numpy())
    items, item_codes = Vocabulary.from_values(frame["item"].to_numpy())
    log = Interactions(user_codes, item_codes, frame["rating"].to_numpy(),
                       frame["timestamp"].to_numpy(), len(users), len(items))
    info = None
    if (folder / fmt.movies).is_file():
        movies = read_movies(folder / fmt.movies, fmt)
        movies = movies[~movies.index.duplicated()]
        info = movies.reindex(items.ids).fillna("").reset_index(drop=True)
    given = {}
    for fold in fmt.folds:
        base, test = folder / f"{fold}.base", folder / f"{fold}.test"
        if base.is_file() and test.is_file():
            given[fold] = (_encode(base, fmt, users, items), _encode(test, fmt, users, items))
    return Dataset(name, log, users, items, info, fmt.rating_range, given, None, str(folder))


def _encode(path: Path, fmt, users: Vocabulary, items: Vocabulary) -> Interactions:
    frame = read_ratings(path, fmt)
    user_codes, item_codes = users.lookup(frame["user"]), items.lookup(frame["item"])
    unknown = (user_codes < 0) | (item_codes < 0)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise DataError(f"{path}: line {row + 1}: user or item not in {fmt.ratings}")
    return Interactions(user_codes, item_codes, frame["rating"].to_numpy(),
                        frame["timestamp"].to_numpy(), len(users), len(items))
