"""Reading data sets: MovieLens by name, the NCF/DeepCF files, any log file, synthetic data.

Everything comes back as a :class:`~deepmf.data.Dataset` over dense ids. The MovieLens
formats are described by one table, :data:`MOVIELENS` (the idea of Surprise's
``BUILTIN_DATASETS``); adding a release is adding a row. Finding data (this module and
:mod:`deepmf.readers.formats`) imports nothing heavy; the parsers load on first use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from deepmf.errors import DataError
from deepmf.readers.formats import MOVIELENS, TableFormat, ncf_files

if TYPE_CHECKING:
    from deepmf.data import Dataset

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
    from deepmf.readers.load import latest_per_pair, load  # the parsers: pandas, torch

    dataset = load(spec, data_dir, table or TableFormat(**columns), download)
    return dataset if spec.startswith("synthetic:") else latest_per_pair(dataset)


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
