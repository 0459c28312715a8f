"""Reading any interaction log: CSV/TSV/other delimited text, or Parquet, with column options."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from deepmf.errors import ConfigError, DataError
from deepmf.readers._columns import ColumnError, ids, ratings, times
from deepmf.readers._delimited import check_file, count_bytes, fail, locate_error, split_fields
from deepmf.readers.formats import TableFormat

#: Column names tried, case-insensitively, when a file has a header and no column is named.
COMMON_NAMES = {
    "user": ("user", "userid", "user_id", "uid", "customer_id"),
    "item": ("item", "itemid", "item_id", "movieid", "movie_id", "iid", "product_id"),
    "rating": ("rating", "ratings", "score", "stars"),
    "timestamp": ("timestamp", "time", "ts", "datetime", "date"),
}
SUFFIX_SEPS = {".csv": ",", ".tsv": "\t"}


ARCHIVES = (".zip", ".gz", ".bz2", ".xz", ".zst", ".tar", ".tgz", ".7z")


def read_log(path: Path, fmt: TableFormat = TableFormat()) -> pd.DataFrame:
    """Columns ``user``, ``item`` and, where present, ``rating`` (float32), ``timestamp`` (int64).

    Columns are header names (``header=True``) or 0-based positions given as strings
    (``"0"``). With neither ``user_col`` nor ``item_col`` given, the roles are guessed:
    common names from the header (user/userId/user_id, item/itemId/movieId, rating,
    timestamp), else positions 0, 1, 2, 3 as far as the file has columns. Once the user
    and item columns are named, rating and time columns are read only if named too. Ids
    follow :mod:`deepmf.readers._columns`: whole 64-bit numbers, else the text as written.
    """
    check_file(path)
    if path.suffix.lower() in ARCHIVES:
        raise DataError(f"{path}: an archive or compressed file; unpack it and give the log "
                        "file inside (a MovieLens release: put its folder in --data-dir)")
    wanted = {"user": fmt.user_col, "item": fmt.item_col, "rating": fmt.rating_col,
              "timestamp": fmt.time_col}
    if path.suffix.lower() == ".parquet":
        return _read_parquet(path, wanted, fmt.rating_range)
    sep, header, width, positions = _layout(path, fmt, wanted)
    roles = sorted(positions, key=positions.get)
    double = sep == "::"
    options = dict(sep=":" if double else (sep or r"\s+"), header=None, engine="c",
                   skiprows=1 if header else 0, encoding="utf-8-sig", compression=None)

    def diagnose() -> str | None:
        return locate_error(
            path, sep=sep, header=header, quoted=True, encoding="utf-8-sig",
            columns={p: r for r, p in positions.items() if r != "rating"},
            rating_column=positions.get("rating"), rating_range=fmt.rating_range,
        )

    def column(role: str) -> int:
        return 2 * positions[role] if double else positions[role]

    # Ids and times are left to the C parser's inference (int64 when every value is one).
    rating = {column("rating"): np.float64} if "rating" in positions else {}
    try:
        frame = pd.read_csv(path, usecols=[column(r) for r in roles], dtype=rating,
                            low_memory=False, **options)
    except pd.errors.EmptyDataError:  # a header and nothing else
        raise DataError(f"{path}: no data rows") from None
    except (ValueError, OverflowError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise fail(path, diagnose(), exc) from None
    frame.columns = roles
    if frame.empty:
        raise DataError(f"{path}: no data rows")
    if frame.isna().to_numpy().any() or not _counts_ok(path, sep, width, len(frame), header):
        raise fail(path, diagnose(), "missing values")

    def as_text(role: str):
        return lambda: pd.read_csv(path, usecols=[column(role)], dtype=str,
                                   keep_default_na=False, **options).iloc[:, 0]

    try:
        return _typed(frame, as_text, fmt.rating_range)
    except ColumnError as exc:
        raise DataError(f"{path}: line {_line_of(path, exc.row, header)}: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise fail(path, diagnose(), exc) from None


def _layout(path: Path, fmt: TableFormat, wanted: dict) -> tuple[str | None, bool, int, dict]:
    """The delimiter, whether there is a header, the number of columns and the position of
    each role, from the first two lines and the options."""
    first, second = _first_lines(path)
    sep = _choose_sep(path, first, fmt.sep)
    head = split_fields(first, sep, True)
    header = fmt.header
    if header is None:
        header = _looks_like_header(head, split_fields(second, sep, True) if second else [])
    return sep, header, len(head), _resolve(path, wanted, head if header else None, len(head))


def _choose_sep(path: Path, first: str, given: str | None) -> str | None:
    """The delimiter: the one given, else the suffix's unless the first line is not split
    by it and another one is (a ``.csv`` separated by ``;``), else sniffed (None: spaces)."""
    if given is not None:
        return given
    by_suffix, sniffed = SUFFIX_SEPS.get(path.suffix.lower()), _sniff(first)
    if by_suffix and (by_suffix in first or sniffed is None):
        return by_suffix
    return sniffed


def _line_of(path: Path, row: int, header: bool) -> int:
    """The line number of data row ``row`` (0-based), blank lines skipped as pandas does.
    Walks the file: called only to report an error."""
    wanted, seen = row + bool(header), -1
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, 1):
            if raw.strip():
                seen += 1
                if seen == wanted:
                    return lineno
    return wanted + 1


def _first_lines(path: Path) -> tuple[str, str]:
    """The first two non-blank lines (a byte-order mark dropped); binary files refused."""
    lines = []
    with open(path, "rb") as handle:
        start = handle.read(1 << 16)
        if b"\0" in start:
            raise DataError(f"{path}: binary data (a NUL byte at byte {start.index(0) + 1}), "
                            "not a delimited text log")
        handle.seek(3 if start.startswith(b"\xef\xbb\xbf") else 0)
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
                    raise ConfigError(f"{path}: no {role} column among {_described(names, width)}"
                                      f"; name it with --{role}-col")
                continue
        elif col is None:
            if role in ("user", "item"):
                raise ConfigError(f"{path}: give both user and item columns")
            continue
        positions[role] = _position(path, str(col), names, width)
    if len(set(positions.values())) < len(positions):
        raise ConfigError(f"{path}: the same column is used twice: {positions}")
    return positions


def _described(names: list[str] | None, width: int) -> str:
    if names is not None:
        return f"the header's {names}"
    return f"{width} unnamed column{'s' * (width != 1)} (no header; --sep names the delimiter)"


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
    raise ConfigError(f"{path}: no column {col!r} among {_described(names, width)}")


def _counts_ok(path: Path, sep: str | None, width: int, rows: int, header: bool) -> bool:
    """Every line has ``width`` fields, judged by counting separators (unquoted files only)."""
    if sep is None:
        return True
    n_sep, n_quote = count_bytes(path, sep[0] + '"')
    if n_quote:
        return True
    return n_sep == (rows + bool(header)) * (width - 1) * len(sep)


def _typed(frame: pd.DataFrame, as_text, rating_range) -> pd.DataFrame:
    """``ColumnError`` (with the row) for a bad value; ``as_text(role)`` reads a column as
    strings (None where the file has no text: Parquet)."""
    out = {role: ids(role, frame[role], as_text and as_text(role)) for role in ("user", "item")}
    if "rating" in frame:
        out["rating"] = ratings(frame["rating"], rating_range)
    if "timestamp" in frame:
        out["timestamp"] = times(frame["timestamp"])
    return pd.DataFrame(out)


def _read_parquet(path: Path, wanted: dict, rating_range) -> pd.DataFrame:
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
        return _typed(frame, None, rating_range)
    except ColumnError as exc:
        raise DataError(f"{path}: row {exc.row + 1}: {exc}") from None
    except (ValueError, TypeError) as exc:  # columns of lists, structs...
        raise DataError(f"{path}: unusable column ({' '.join(str(exc).split())})") from None
