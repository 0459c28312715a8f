"""Typing the columns of a log that was read: ids kept exact, ratings finite, times in seconds.

Every check is vectorized; a failure names the first bad row (0-based), which the caller
turns into a line number (text) or a row number (Parquet).

Raw id policy: a column whose every id is a whole number that fits 64 bits becomes
``int64``; anything else (ids above 2**63, ``1e30``, ``1.5``, ``abc``) is kept as text,
exactly as the file writes it. A float column (Parquet, or a CSV column with a decimal
point) counts as whole numbers only where every value is an integer of at most 2**53,
the largest a float holds exactly; otherwise its text is used, and a Parquet float column,
which has no text, is refused. So an id is never silently changed into another.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

INT64_MAX = 2**63 - 1
EXACT_FLOAT = 2**53
"""Largest magnitude below which every integer is exactly a float64."""


class ColumnError(ValueError):
    """A bad value in a column: ``message`` and the 0-based ``row`` it is on."""

    def __init__(self, message: str, row: int):
        super().__init__(message)
        self.row = row


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def ids(role: str, column: pd.Series, as_text: Callable[[], pd.Series] | None) -> np.ndarray:
    """Raw ids of one column: ``int64`` when all are whole 64-bit numbers, else text.

    Args:
        role: ``user`` or ``item`` (for messages).
        column: the column as the parser typed it.
        as_text: the same column read as strings, for a float column that is not all
            exact integers; None where there is no text (Parquet): such a column is refused.
    """
    kind = column.dtype.kind
    if kind in "ib":
        return column.to_numpy(np.int64)
    if kind == "u":
        values = column.to_numpy()
        if not len(values) or values.max() <= INT64_MAX:
            return values.astype(np.int64)
        return column.astype(str).to_numpy(object)  # exact: every uint64 has its digits
    if kind == "f":
        values = column.to_numpy(np.float64)
        whole = np.isfinite(values) & (values == np.floor(values)) & (np.abs(values) <= EXACT_FLOAT)
        if whole.all():
            return values.astype(np.int64)
        if as_text is None:
            row = _first(~whole)
            raise ColumnError(f"{role} id {float(values[row])!r} is a float that is not an "
                              "exact whole number; store ids as integers or text", row)
        column = as_text()
    text = column.astype(str).str.strip()
    empty = (text == "").to_numpy()
    if empty.any():
        raise ColumnError(f"empty {role}", _first(empty))
    return text.to_numpy(object)


def ratings(column: pd.Series, rating_range: tuple[float, float] | None) -> np.ndarray:
    """``float32`` ratings; each finite, and within ``rating_range`` when one is given."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row = _first(bad)
        raise ColumnError(f"rating {column.iloc[row]!r} is not a finite number", row)
    if rating_range is not None:
        low, high = rating_range
        outside = (values < low) | (values > high)
        if outside.any():
            row = _first(outside)
            raise ColumnError(f"rating {values[row]:g} outside {low:g}..{high:g} "
                              "(--rating-range)", row)
    return values.astype(np.float32)


def times(column: pd.Series) -> np.ndarray:
    """Unix seconds (``int64``) from a column of numbers or of date strings, not a mix."""
    if column.dtype.kind in "iub":
        values = column.to_numpy()
        if column.dtype.kind == "u" and len(values) and values.max() > INT64_MAX:
            row = _first(values > INT64_MAX)
            raise ColumnError(f"timestamp {values[row]} does not fit in 64 bits", row)
        return values.astype(np.int64)
    numbers = pd.to_numeric(column, errors="coerce")
    numeric = numbers.notna().to_numpy()
    text = column.astype(str).str.strip()
    if numeric[0] and not numeric.all():  # the column is numbers, as its first value
        row = _first(~numeric)
        raise ColumnError(f"timestamp {text.iloc[row]!r} is not a number (the column holds "
                          "Unix seconds)", row)
    if numeric.all():
        values = numbers.to_numpy(np.float64)
        bad = ~np.isfinite(values) | (np.abs(values) >= 2.0**63)
        if bad.any():
            row = _first(bad)
            raise ColumnError(f"timestamp {text.iloc[row]!r} is out of range", row)
        return np.floor(values).astype(np.int64)
    if numeric.any():
        row = _first(numeric)
        raise ColumnError(f"timestamp {text.iloc[row]!r} is a number in a column of dates", row)
    stamps = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
    bad = stamps.isna().to_numpy()
    if bad.any():
        row = _first(bad)
        raise ColumnError(f"timestamp {text.iloc[row]!r} is not a date", row)
    seconds = (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return seconds.to_numpy(np.int64)
