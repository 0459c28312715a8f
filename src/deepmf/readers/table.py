"""Reading any interaction log: CSV/TSV/other delimited text, or Parquet, with column options."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from deepmf.errors import ConfigError, DataError
from deepmf.readers._delimited import check_file, count_bytes, fail, locate_error, split_fields

#: Column names tried, case-insensitively, when a file has a header and no column is named.
COMMON_NAMES = {
    "user": ("user", "userid", "user_id", "uid", "customer_id"),
    "item": ("item", "itemid", "item_id", "movieid", "movie_id", "iid", "product_id"),
    "rating": ("rating", "ratings", "score", "stars"),
    "timestamp": ("timestamp", "time", "ts", "datetime", "date"),
}
SUFFIX_SEPS = {".csv": ",", ".tsv": "\t"}


@dataclass(frozen=True)
class TableFormat:
    """How to read a log file; every field None means "work it out from the file".

    Attributes:
        sep: field delimiter (default: by suffix, else sniffed).
        user_col, item_col, rating_col, time_col: header names or 0-based positions as text.
        header: whether the first line names the columns (default: guessed).
    """

    sep: str | None = None
    user_col: str | None = None
    item_col: str | None = None
    rating_col: str | None = None
    time_col: str | None = None
    header: bool | None = None


def read_log(path: Path, fmt: TableFormat = TableFormat()) -> pd.DataFrame:
    """Columns ``user``, ``item`` and, where present, ``rating`` (float32), ``timestamp`` (int64).

    Columns are header names (``header=True``) or 0-based positions given as strings
    (``"0"``). With neither ``user_col`` nor ``item_col`` given, the roles are guessed:
    common names from the header (user/userId/user_id, item/itemId/movieId, rating,
    timestamp), else positions 0, 1, 2, 3 as far as the file has columns. Once the user
    and item columns are named, rating and time columns are read only if named too.
    """
    check_file(path)
    sep, header = fmt.sep, fmt.header
    wanted = {"user": fmt.user_col, "item": fmt.item_col, "rating": fmt.rating_col,
              "timestamp": fmt.time_col}
    if path.suffix.lower() == ".parquet":
        return _read_parquet(path, wanted)
    first, second = _first_lines(path)
    if sep is None:
        sep = SUFFIX_SEPS.get(path.suffix.lower()) or _sniff(first)
    head = split_fields(first, sep, True)
    if header is None:
        header = _looks_like_header(head, split_fields(second, sep, True) if second else [])
    positions = _resolve(path, wanted, head if header else None, len(head))
    roles = sorted(positions, key=positions.get)
    cols = [positions[r] for r in roles]
    double = sep == "::"

    def diagnose() -> str | None:
        return locate_error(
            path, sep=sep, header=header, quoted=True,
            columns={p: r for r, p in positions.items() if r != "rating"},
            rating_column=positions.get("rating"),
        )

    # Ids and times are left to the C parser's inference (int64 when every value is one).
    dtypes = {positions["rating"]: np.float64} if "rating" in positions else {}
    try:
        frame = pd.read_csv(
            path, sep=":" if double else (sep or r"\s+"), header=0 if header else None,
            usecols=[2 * c for c in cols] if double else cols, engine="c", low_memory=False,
            dtype=_dtype_keys(dtypes, head if header else None, double), encoding="utf-8",
        )
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise fail(path, diagnose(), exc) from None
    frame.columns = roles
    if frame.empty:
        raise DataError(f"{path}: no data rows")
    if frame.isna().to_numpy().any() or not _counts_ok(path, sep, len(head), len(frame), header):
        raise fail(path, diagnose(), "missing values")
    try:
        return _typed(frame)
    except (ValueError, TypeError) as exc:
        raise fail(path, diagnose(), exc) from None


def _dtype_keys(dtypes: dict, names: list[str] | None, double: bool) -> dict | None:
    """pandas wants dtypes keyed by header name, or by position in the file without one."""
    if names is None:
        return {(2 * c if double else c): t for c, t in dtypes.items()}
    return None if double else {names[c]: t for c, t in dtypes.items()}


def _first_lines(path: Path) -> tuple[str, str]:
    lines = []
    with open(path, "rb") as handle:
        for raw in handle:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line.strip():
                lines.append(line)
            if len(lines) == 2:
                break
    if not lines:
        raise DataError(f"{path}: file is empty")
    return lines[0], (lines[1] if len(lines) > 1 else "")


def _sniff(line: str) -> str | None:
    if "::" in line:
        return "::"
    try:
        return csv.Sniffer().sniff(line, delimiters=",\t;|").delimiter
    except csv.Error:
        return None  # whitespace


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _looks_like_header(first: list[str], second: list[str]) -> bool:
    if any(_is_number(f) for f in first):
        return False
    known = {n for names in COMMON_NAMES.values() for n in names}
    return any(f.strip().lower() in known for f in first) or any(_is_number(f) for f in second)


def _resolve(path, wanted: dict, names: list[str] | None, width: int) -> dict[str, int]:
    """Role -> 0-based column position."""
    explicit = wanted["user"] is not None or wanted["item"] is not None
    positions = {}
    for role, col in wanted.items():
        if col is None and not explicit:
            col = _guess(role, names, width)
            if col is None:
                if role in ("user", "item"):
                    raise ConfigError(
                        f"{path}: no {role} column among {names}; name it with --{role}-col"
                    )
                continue
        elif col is None:
            if role in ("user", "item"):
                raise ConfigError(f"{path}: give both user and item columns")
            continue
        positions[role] = _position(path, str(col), names, width)
    if len(set(positions.values())) < len(positions):
        raise ConfigError(f"{path}: the same column is used twice: {positions}")
    return positions


def _guess(role: str, names: list[str] | None, width: int) -> int | None:
    if names is None:
        pos = ("user", "item", "rating", "timestamp").index(role)
        return pos if pos < width else None
    lowered = [n.strip().lower() for n in names]
    return next((lowered.index(c) for c in COMMON_NAMES[role] if c in lowered), None)


def _position(path, col: str, names: list[str] | None, width: int) -> int:
    if names is not None and col in names:
        return names.index(col)
    if col.isdigit() and int(col) < width:
        return int(col)
    where = f"columns {names}" if names is not None else f"{width} columns, no header"
    raise ConfigError(f"{path}: no column {col!r} ({where})")


def _counts_ok(path: Path, sep: str | None, width: int, rows: int, header: bool) -> bool:
    """Every line has ``width`` fields, judged by counting separators (unquoted files only)."""
    if sep is None:
        return True
    n_sep, n_quote = count_bytes(path, sep[0] + '"')
    if n_quote:
        return True
    return n_sep == (rows + bool(header)) * (width - 1) * len(sep)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for role in ("user", "item"):
        out[role] = _ids(frame[role])
    if "rating" in frame:
        ratings = pd.to_numeric(frame["rating"], errors="raise").to_numpy(np.float32)
        if not np.isfinite(ratings).all():
            raise ValueError("ratings must be finite numbers")
        out["rating"] = ratings
    if "timestamp" in frame:
        out["timestamp"] = _times(frame["timestamp"])
    return pd.DataFrame(out)


def _ids(column: pd.Series) -> np.ndarray:
    """Integer ids when the column holds integers only, else stripped strings."""
    if column.dtype.kind in "iub":
        return column.to_numpy(np.int64)
    if column.dtype.kind == "f" and (column == np.floor(column)).all():
        return column.to_numpy(np.int64)
    return column.astype(str).str.strip().to_numpy(object)


def _times(column: pd.Series) -> np.ndarray:
    if column.dtype.kind in "iu":
        return column.to_numpy(np.int64)
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.notna().all():
        return numbers.to_numpy(np.int64)
    stamps = pd.to_datetime(column, errors="raise", utc=True, format="mixed")
    seconds = (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return seconds.to_numpy(np.int64)


def _read_parquet(path: Path, wanted: dict) -> pd.DataFrame:
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    names = [str(c) for c in table.columns]
    positions = _resolve(path, wanted, names, len(names))
    frame = table.iloc[:, list(positions.values())]
    frame.columns = list(positions)
    missing = frame.isna().any(axis=1).to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DataError(f"{path}: row {row + 1}: missing value")
    if frame.empty:
        raise DataError(f"{path}: no data rows")
    try:
        return _typed(frame)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: {' '.join(str(exc).split())}") from None
