"""Reading data sets: MovieLens by name, the NCF/DeepCF files, any log file, synthetic data.

Everything comes back as a :class:`~deepmf.data.Dataset` over dense ids. The MovieLens
formats are described by one table, :data:`MOVIELENS` (the idea of Surprise's
``BUILTIN_DATASETS``); adding a release is adding a row.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from deepmf.data import Dataset, Interactions, Vocabulary
from deepmf.errors import DataError
from deepmf.readers_log import read_log
from deepmf.readers_ncf import ncf_files, read_ncf
from deepmf.readers_synthetic import parse_synthetic, synthetic
from deepmf.readers_text import check_file, read_fields

GROUPLENS = "https://files.grouplens.org/datasets/movielens/"
LOG_SUFFIXES = (".csv", ".tsv", ".dat", ".txt", ".parquet")


@dataclass(frozen=True)
class MovieLensFormat:
    """How one MovieLens release is laid out.

    Attributes:
        folder: top folder inside the release zip.
        ratings: ratings file (``user, item, rating, timestamp`` in that order).
        sep: field separator of ratings and movies files.
        header: whether the ratings file starts with a header line.
        rating_range: lowest and highest possible rating.
        movies: movie metadata file; ``movies_kind`` says its layout (``u.item``,
            ``dat`` = ``id::title::genres``, ``csv`` = ``movieId,title,genres``).
        url, md5: where to download the zip and its published MD5 (None: unknown, so
            the zip is never downloaded automatically).
    """

    description: str
    folder: str
    ratings: str
    sep: str
    header: bool
    rating_range: tuple[float, float]
    movies: str
    movies_kind: str
    encoding: str
    url: str
    md5: str | None
    folds: tuple[str, ...] = ()


def _csv_release(name: str, description: str, md5: str | None) -> MovieLensFormat:
    return MovieLensFormat(description, name, "ratings.csv", ",", True, (0.5, 5.0),
                           "movies.csv", "csv", "utf-8", f"{GROUPLENS}{name}.zip", md5)


MOVIELENS: dict[str, MovieLensFormat] = {
    "ml-100k": MovieLensFormat(
        "MovieLens 100K: 100,000 ratings 1-5, 943 users, 1,682 movies, folds u1-u5, ua, ub",
        "ml-100k", "u.data", "\t", False, (1.0, 5.0), "u.item", "u.item", "latin-1",
        f"{GROUPLENS}ml-100k.zip", "0e33842e24a9c977be4e0107933c0723",
        ("u1", "u2", "u3", "u4", "u5", "ua", "ub"),
    ),
    "ml-1m": MovieLensFormat(
        "MovieLens 1M: 1,000,209 ratings 1-5, 6,040 users, 3,706 movies",
        "ml-1m", "ratings.dat", "::", False, (1.0, 5.0), "movies.dat", "dat", "latin-1",
        f"{GROUPLENS}ml-1m.zip", "c4d9eecfca2ab87c1945afe126590906",
    ),
    "ml-10m": MovieLensFormat(
        "MovieLens 10M: 10M ratings 0.5-5 (half stars), 69,878 users, 10,677 movies",
        "ml-10M100K", "ratings.dat", "::", False, (0.5, 5.0), "movies.dat", "dat", "utf-8",
        f"{GROUPLENS}ml-10m.zip", "ce571fd55effeba0271552578f2648bd",
    ),
    "ml-latest-small": _csv_release(
        "ml-latest-small", "MovieLens latest small: ~100,000 ratings 0.5-5, ~600 users", None
    ),
    "ml-latest": _csv_release("ml-latest", "MovieLens latest full: ~33M ratings 0.5-5", None),
    "ml-20m": _csv_release(
        "ml-20m", "MovieLens 20M: 20M ratings 0.5-5, 138,493 users, 26,744 movies",
        "cd245b17a1ae2cc31bb14903e1204af3",
    ),
    "ml-25m": _csv_release(
        "ml-25m", "MovieLens 25M: 25M ratings 0.5-5, 162,541 users, 59,047 movies",
        "6b51fb2759a8657d3bfcbfc42b592ada",
    ),
}


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/deepmf``, else ``~/.cache/deepmf``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "deepmf"


def data_dirs(data_dir=None) -> list[Path]:
    """Directories searched, in order: ``data_dir``, ``$DEEPMF_DATA_DIR``, the cache dir."""
    dirs = [data_dir, os.environ.get("DEEPMF_DATA_DIR") or None, cache_dir()]
    return [Path(d).expanduser() for d in dirs if d is not None]


def find_movielens(name: str, data_dir=None) -> Path | None:
    """The folder holding ``name``'s ratings file, or None."""
    fmt = MOVIELENS[name]
    for root in data_dirs(data_dir):
        for folder in dict.fromkeys((name, fmt.folder)):
            if (root / folder / fmt.ratings).is_file():
                return root / folder
    return None


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
    """Movie metadata indexed by raw movie id, columns ``title`` and ``genres`` (``A|B``)."""
    path = Path(path)
    check_file(path)
    try:
        if fmt.movies_kind == "csv":
            frame = pd.read_csv(path, encoding=fmt.encoding, dtype={"title": str, "genres": str})
            frame = frame.rename(columns={"movieId": "item"})[["item", "title", "genres"]]
        elif fmt.movies_kind == "dat":
            raw = path.read_bytes()
            try:
                text = raw.decode(fmt.encoding)
            except UnicodeDecodeError:  # not the encoding the table expects: read as latin-1
                text = raw.decode("latin-1")
            lines = pd.Series(text.splitlines())
            frame = lines[lines.str.strip() != ""].str.split("::", n=2, expand=True)
            frame.columns = ["item", "title", "genres"]
            frame["item"] = frame["item"].astype(np.int64)
        else:
            frame = _read_u_item(path, fmt)
    except (ValueError, KeyError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot read movies ({' '.join(str(exc).split())})") from None
    frame["genres"] = frame["genres"].fillna("").replace("(no genres listed)", "")
    frame["title"] = frame["title"].fillna("")
    return frame.set_index("item")[["title", "genres"]]


def _read_u_item(path: Path, fmt: MovieLensFormat) -> pd.DataFrame:
    genres = pd.read_csv(path.parent / "u.genre", sep="|", header=None, encoding=fmt.encoding)
    names = genres.sort_values(1)[0].astype(str).tolist()
    table = pd.read_csv(path, sep="|", header=None, encoding=fmt.encoding, quoting=3)
    flags = table.iloc[:, -len(names):].to_numpy(dtype=bool)
    joined = pd.Series("", index=table.index)
    for column, name in enumerate(names):
        joined = joined + np.where(flags[:, column], name + "|", "")
    return pd.DataFrame({"item": table[0].astype(np.int64), "title": table[1],
                         "genres": joined.str.rstrip("|")})


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


def _read_file(path: Path, **options) -> Dataset:
    frame = read_log(path, **options)
    users, user_codes = Vocabulary.from_values(frame["user"].to_numpy())
    items, item_codes = Vocabulary.from_values(frame["item"].to_numpy())
    ratings = frame["rating"].to_numpy() if "rating" in frame else None
    times = frame["timestamp"].to_numpy() if "timestamp" in frame else None
    log = Interactions(user_codes, item_codes, ratings, times, len(users), len(items))
    span = None if ratings is None else (float(ratings.min()), float(ratings.max()))
    return Dataset(path.name, log, users, items, rating_range=span, source=str(path))


def _places(data_dir) -> str:
    return ", ".join(str(d) for d in data_dirs(data_dir))


def load_dataset(
    spec: str,
    data_dir=None,
    *,
    sep: str | None = None,
    user_col: str | None = None,
    item_col: str | None = None,
    rating_col: str | None = None,
    time_col: str | None = None,
    header: bool | None = None,
    download: bool = True,
) -> Dataset:
    """Load a data set by name (``ml-100k``...), ``ncf:PATH/NAME``, file path or ``synthetic:...``.

    Named sets and relative NCF paths are looked up in ``data_dir``, ``$DEEPMF_DATA_DIR``
    and the cache dir, in that order; MovieLens sets are then downloaded into the cache dir
    unless ``download=False``. Column options apply to file paths only.
    """
    if spec in MOVIELENS:
        folder = find_movielens(spec, data_dir)
        if folder is None:
            if not download:
                raise DataError(
                    f"dataset {spec} not found (looked for {spec}/{MOVIELENS[spec].ratings} "
                    f"in: {_places(data_dir)}) and downloading is off"
                )
            from deepmf.download import ensure_dataset

            folder = ensure_dataset(spec, cache_dir(), places=data_dirs(data_dir))
        return read_movielens(spec, folder)
    if spec.startswith("ncf:"):
        return read_ncf(_find_ncf(spec[4:], data_dir))
    if spec.startswith("synthetic:"):
        return synthetic(**parse_synthetic(spec[len("synthetic:"):]))
    path = Path(spec).expanduser()
    candidates = [path]
    if not path.is_absolute():
        candidates += [d / path for d in data_dirs(data_dir)]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        if path.suffix.lower() in LOG_SUFFIXES or os.sep in spec:
            raise DataError(f"{spec}: no such file (also looked in: {_places(data_dir)})")
        raise DataError(
            f"unknown dataset {spec!r}; choose from {', '.join(MOVIELENS)}, ncf:PATH/NAME, "
            "synthetic:users=U,items=I,interactions=N, or give a file path"
        )
    return _read_file(found, sep=sep, user_col=user_col, item_col=item_col,
                      rating_col=rating_col, time_col=time_col, header=header)


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
