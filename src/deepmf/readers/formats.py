"""What the data sets look like: the table of MovieLens releases, the NCF files' names and
how to read any log file. Plain descriptions, cheap to import: the command line lists data
sets and checks settings with them before anything heavy loads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deepmf.errors import ConfigError

GROUPLENS = "https://files.grouplens.org/datasets/movielens/"


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


NCF_SUFFIXES = (".train.rating", ".test.rating", ".test.negative")


def ncf_files(base: Path) -> list[Path]:
    """The three files of the NCF set whose path without suffix is ``base``."""
    return [base.parent / (base.name + suffix) for suffix in NCF_SUFFIXES]


@dataclass(frozen=True)
class TableFormat:
    """How to read a log file; every field None means "work it out from the file".

    Attributes:
        sep: field delimiter, one character or ``::`` (default: by suffix, else sniffed;
            ``\\t`` and ``tab`` mean a tab).
        user_col, item_col, rating_col, time_col: header names or 0-based positions as text.
        header: whether the first line names the columns (default: guessed).
        rating_range: lowest and highest valid rating; a rating outside it is an error.
            None: the ratings' own minimum and maximum are the scale.
    """

    sep: str | None = None
    user_col: str | None = None
    item_col: str | None = None
    rating_col: str | None = None
    time_col: str | None = None
    header: bool | None = None
    rating_range: tuple[float, float] | None = None

    def __post_init__(self):
        if self.sep is not None:
            sep = {"\\t": "\t", "tab": "\t"}.get(self.sep, self.sep)
            if not (len(sep) == 1 or sep == "::") or sep in "\r\n\"":
                raise ConfigError(f"--sep must be one character (or ::) other than a quote or "
                                  f"a line break, not {self.sep!r}")
            object.__setattr__(self, "sep", sep)
