"""Fast delimited-text reading with one-line errors that point at the bad line.

The happy path is a single call to pandas' C parser with explicit dtypes. Only when that
fails, or when a vectorized check on its result fails, does :func:`locate_error` walk the
file line by line to say which line is wrong and why.
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from deepmf.errors import DataError


def check_file(path: Path) -> None:
    """Raise ``DataError`` unless ``path`` is a non-empty regular file."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        kind = "a directory" if path.is_dir() else "not a regular file"
        raise DataError(f"{path}: {kind}, not a data file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")


def split_fields(line: str, sep: str | None, quoted: bool) -> list[str]:
    """Fields of one line: ``None`` splits on whitespace, quoted uses the csv module."""
    if sep is None:
        return line.split()
    if quoted and len(sep) == 1:
        try:
            return next(csv.reader([line], delimiter=sep), [])
        except csv.Error:  # a stray carriage return or NUL: judge the line unquoted
            pass
    return line.split(sep)


INT64_MAX = 2**63 - 1
_INTEGER = re.compile(r"[+-]?[0-9]+")


def int_problem(text: str) -> str | None:
    """Why ``text`` is not a 64-bit integer, or None when it is one."""
    text = text.strip()
    if not _INTEGER.fullmatch(text):
        return "is not an integer"
    if not -INT64_MAX - 1 <= int(text) <= INT64_MAX:
        return "does not fit in 64 bits"
    return None


def locate_error(
    path: Path,
    *,
    sep: str | None,
    encoding: str = "utf-8",
    n_fields: int | None = None,
    header: bool = False,
    columns: dict[int, str] | None = None,
    int_columns: Sequence[int] = (),
    rating_column: int | None = None,
    rating_range: tuple[float, float] | None = None,
    quoted: bool = False,
) -> str | None:
    """Walk ``path`` and describe the first bad line as ``"line N: ..."``, or None if all look fine.

    Args:
        columns: position -> label ("user", "item", ...) of the fields that must be present
            and non-empty.
        int_columns: positions that must hold integers.
        rating_column: position of a field that must be a finite number (in ``rating_range``).
    """
    columns = columns or {}
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, 1):
            try:
                line = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                return f"line {lineno}: not valid {encoding} text (byte {exc.start + 1})"
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = split_fields(line, sep, quoted)
            if header and lineno == 1:
                n_fields = n_fields or len(fields)
                continue
            if n_fields is None:
                n_fields = len(fields)
            if len(fields) != n_fields:
                return f"line {lineno}: expected {n_fields} fields, got {len(fields)}"
            for pos, label in columns.items():
                if not fields[pos].strip():
                    return f"line {lineno}: empty {label}"
            for pos in int_columns:
                problem = int_problem(fields[pos])
                if problem:
                    label = columns.get(pos, f"field {pos + 1}")
                    return f"line {lineno}: {label} {fields[pos].strip()!r} {problem}"
            if rating_column is not None:
                problem = _rating_problem(fields[rating_column], rating_range)
                if problem:
                    return f"line {lineno}: {problem}"
    return None


def _rating_problem(text: str, rating_range) -> str | None:
    try:
        value = float(text)
    except ValueError:
        return f"rating {text!r} is not a number"
    if math.isnan(value) or math.isinf(value):
        return f"rating {text!r} is not a finite number"
    if rating_range is not None and not rating_range[0] <= value <= rating_range[1]:
        return f"rating {text.strip()} outside {rating_range[0]:g}..{rating_range[1]:g}"
    return None


def fail(path: Path, diagnosis: str | None, fallback: str) -> DataError:
    """The ``DataError`` to raise: the located line if any, else a cleaned-up fallback."""
    message = diagnosis or " ".join(str(fallback).split())
    return DataError(f"{path}: {message}")


def read_fields(
    path: Path,
    *,
    sep: str,
    usecols: Sequence[int],
    names: Sequence[str],
    dtypes: dict[str, object],
    n_fields: int,
    encoding: str = "utf-8",
    int_columns: Sequence[int] = (),
    rating_range: tuple[float, float] | None = None,
    header: bool = False,
) -> pd.DataFrame:
    """Read fixed-layout, header-less text (MovieLens ratings, NCF files) fast and strictly.

    ``sep="::"`` is read with the C engine as ``sep=":"``, taking every other column.
    With ``header`` the first line is skipped. Every line must have ``n_fields`` fields;
    the fields at ``int_columns`` (positions in the logical layout) must be integers; a
    ``rating`` column must be finite and within ``rating_range``.
    """
    check_file(path)
    double = sep == "::"
    cols = [2 * c for c in usecols] if double else list(usecols)
    labels = dict(zip(usecols, names))
    rating_pos = next((c for c, n in labels.items() if n == "rating"), None)

    def diagnose() -> str | None:
        return locate_error(
            path, sep=sep, encoding=encoding, n_fields=n_fields, header=header,
            columns={c: n for c, n in labels.items() if n != "rating"},
            int_columns=int_columns, rating_column=rating_pos, rating_range=rating_range,
        )

    try:
        with warnings.catch_warnings():  # a value like inf in an integer column: pandas
            warnings.simplefilter("ignore", RuntimeWarning)  # warns in two lines, then fails
            frame = pd.read_csv(
                path, sep=":" if double else sep, header=None, skiprows=1 if header else 0,
                usecols=cols, dtype={c: dtypes[labels[u]] for c, u in zip(cols, usecols)},
                engine="c", encoding=encoding, quoting=csv.QUOTE_NONE,
                skip_blank_lines=True,
            )
    except (ValueError, OverflowError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise fail(path, diagnose(), exc) from None
    frame.columns = list(names)
    lines = len(frame) + bool(header)
    bad = bool(frame.isna().to_numpy().any())
    if "rating" in frame and rating_range is not None and len(frame):
        ratings = frame["rating"].to_numpy()
        bad = bad or ratings.min() < rating_range[0] or ratings.max() > rating_range[1]
    if bad or count_bytes(path, sep[0])[0] != lines * (n_fields - 1) * len(sep):
        raise fail(path, diagnose(), "malformed data")
    if frame.empty:
        raise DataError(f"{path}: no data rows")
    return frame


def count_bytes(path: Path, chars: str, block: int = 1 << 24) -> list[int]:
    """Occurrences of each character in the file (checks field counts without a Python loop)."""
    totals = [0] * len(chars)
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            for i, char in enumerate(chars):
                totals[i] += chunk.count(char.encode())
    return totals
