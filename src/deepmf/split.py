"""Train/test splits of an interaction log.

Every function here is pure and vectorized: it returns new :class:`Interactions` objects
(rows kept in log order, id spaces unchanged) and never loops over users in Python.
Randomness comes only from ``np.random.default_rng(seed)``, so the same seed always gives
the same split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepmf.data import Dataset, Interactions, distinct, latest_rows
from deepmf.errors import ConfigError, DataError

FOLDS = ("u1", "u2", "u3", "u4", "u5")
"""ml-100k's five official cross-validation folds."""

OFFICIAL = (*FOLDS, "ua", "ub")
"""Every predefined ml-100k split name."""

SPEC_FORMS = "u1..u5, ua, ub, folds, given, random:P, loo, time:P"
"""Valid ``--split`` forms, as shown in error messages."""


@dataclass(frozen=True, eq=False)
class Split:
    """One train/test pair.

    Attributes:
        name: the split's name (``u1``, ``loo``, ``random:0.2``...).
        train: rows to fit on.
        test: rows to evaluate on.
    """

    name: str
    train: Interactions
    test: Interactions


def _check_fraction(name: str, value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number in (0, 1), got {value!r}") from None
    if not 0.0 < value < 1.0:
        raise ConfigError(f"{name} must lie strictly between 0 and 1, got {value}")
    return value


def _divide(data: Interactions, test_rows: np.ndarray) -> tuple[Interactions, Interactions]:
    """``(rows not in test_rows, rows in test_rows)``, both in log order."""
    mask = np.zeros(len(data), dtype=bool)
    mask[test_rows] = True
    return data.take(~mask), data.take(mask)


def _last_row_per_user(data: Interactions, order_key: np.ndarray | None) -> np.ndarray:
    """Row index of each user's last row under ``order_key`` (then log position), in user
    order (:func:`deepmf.data.latest_rows`).

    Only users with at least two rows are returned, so nobody loses their only row.
    """
    last = latest_rows(data.users, data.n_users, order_key, np.arange(len(data)))
    last = last[last >= 0]
    return last[data.user_counts[data.users[last]] >= 2]


def random_split(
    data: Interactions, test_fraction: float, seed: int
) -> tuple[Interactions, Interactions]:
    """Split rows uniformly at random.

    Args:
        data: the log to split.
        test_fraction: share of rows for the test set, in ``(0, 1)``; the test set gets
            ``round(test_fraction * len(data))`` rows.
        seed: seed for ``np.random.default_rng``.

    Returns:
        ``(train, test)``, each in log order.

    Raises:
        ConfigError: if ``test_fraction`` is not strictly between 0 and 1.
    """
    test_fraction = _check_fraction("test_fraction", test_fraction)
    n_test = int(round(test_fraction * len(data)))
    rows = np.random.default_rng(seed).permutation(len(data))[:n_test]
    return _divide(data, rows)


def leave_one_out(data: Interactions, seed: int = 0) -> tuple[Interactions, Interactions]:
    """Hold out each user's latest row (the NCF protocol).

    The test set holds exactly one row for every user with at least two rows: the one with
    the greatest timestamp. Ties on timestamp go to the row that comes later in the log.
    Without timestamps the user's last row in log order is held out. Users with a single
    row stay wholly in train.

    Args:
        data: the log to split.
        seed: unused (the split is deterministic); accepted so every splitter takes one.

    Returns:
        ``(train, test)``, each in log order.
    """
    del seed
    return _divide(data, _last_row_per_user(data, data.timestamps))


def time_split(data: Interactions, test_fraction: float) -> tuple[Interactions, Interactions]:
    """Global time cut: the latest ``test_fraction`` of rows go to test.

    Rows are ordered by timestamp, ties in log order, and the last
    ``round(test_fraction * len(data))`` of them form the test set, so every test timestamp
    is at least every train timestamp.

    Args:
        data: the log to split; must have timestamps.
        test_fraction: share of rows for the test set, in ``(0, 1)``.

    Returns:
        ``(train, test)``, each in log order.

    Raises:
        ConfigError: if ``test_fraction`` is not strictly between 0 and 1.
        DataError: if ``data`` has no timestamps.
    """
    test_fraction = _check_fraction("test_fraction", test_fraction)
    if data.timestamps is None:
        raise DataError("a time split needs timestamps, and these interactions have none")
    n_test = int(round(test_fraction * len(data)))
    if n_test == 0:
        return _divide(data, np.empty(0, dtype=np.int64))
    # The n_test-th greatest time, found without sorting: later rows all go to test, and
    # of the rows at that time the last ones in the log fill it (a stable sort's order).
    times = data.timestamps
    cut = np.partition(times, len(times) - n_test)[len(times) - n_test]
    later, tied = np.flatnonzero(times > cut), np.flatnonzero(times == cut)
    return _divide(data, np.concatenate([later, tied[len(tied) - (n_test - len(later)):]]))


def validation_split(
    train: Interactions, *, fraction: float = 0.05, seed: int, per_user: bool = False
) -> tuple[Interactions, Interactions]:
    """Carve validation rows out of a training set (never out of the test set).

    Args:
        train: the training rows; the test set is never seen here.
        fraction: share of rows to hold out when ``per_user`` is False; ignored otherwise.
        seed: seed for ``np.random.default_rng``.
        per_user: False for explicit rating tasks: a random ``fraction`` of rows. True for
            implicit tasks: one row for every user with at least two rows, the latest by
            timestamp (ties to the later log row) when timestamps exist, else a seeded
            random row per user (the NCF paper's protocol).

    Returns:
        ``(fit, valid)``, each in log order.

    Raises:
        ConfigError: if ``fraction`` is not strictly between 0 and 1.
    """
    fraction = _check_fraction("validation fraction", fraction)
    if not per_user:
        return random_split(train, fraction, seed)
    key = train.timestamps
    if key is None:
        key = np.random.default_rng(seed).random(len(train))
    return _divide(train, _last_row_per_user(train, key))


def sample_users(data: Interactions, n: int, seed: int) -> np.ndarray:
    """Choose ``n`` of the users present, uniformly at random (seed 000's quick first run).

    Args:
        data: the log to sample from.
        n: how many users to keep; all of them if ``n`` is at least the number present.
        seed: seed for ``np.random.default_rng``.

    Returns:
        ``bool[n_users]``: which users are kept.

    Raises:
        ConfigError: if ``n`` is not a positive integer.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"number of users to sample must be a positive integer, got {n!r}")
    present = distinct(data.users)
    keep = np.zeros(data.n_users, dtype=bool)
    if n >= len(present):
        keep[present] = True
    else:
        keep[np.random.default_rng(seed).choice(present, size=int(n), replace=False)] = True
    return keep


def _given(dataset: Dataset, name: str, needs: str) -> Split:
    if name not in dataset.given:
        have = ", ".join(sorted(dataset.given)) or "none"
        raise ConfigError(f"split {name!r} needs {needs}; dataset {dataset.name} has: {have}")
    train, test = dataset.given[name]
    return Split(name, train, test)


def _parse_fraction(spec: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise ConfigError(f"split {spec!r}: P must be a number between 0 and 1, such as 0.2")
    return value


def make_splits(dataset: Dataset, spec: str, seed: int = 0) -> list[Split]:
    """Turn a ``--split`` string into train/test pairs.

    Args:
        dataset: the data to split.
        spec: one of ``u1``..``u5``, ``ua``, ``ub`` (ml-100k's official splits), ``folds``
            (all of ``u1``..``u5``), ``given`` (the NCF files' own split), ``random:P``,
            ``loo`` (leave latest out) or ``time:P``, with ``P`` the test share in ``(0, 1)``.
        seed: seed for the random split.

    Returns:
        One :class:`Split` per fold (five for ``folds``, one otherwise).

    Raises:
        ConfigError: for an unknown spec, a bad ``P``, or a predefined split the dataset lacks.
        DataError: for ``time:P`` on data without timestamps.
    """
    spec = spec.strip()
    kind, _, arg = spec.partition(":")
    data = dataset.interactions
    if spec in OFFICIAL:
        return [_given(dataset, spec, "ml-100k's official folds")]
    if spec == "folds":
        return [_given(dataset, name, "ml-100k's official folds") for name in FOLDS]
    if spec == "given":
        return [_given(dataset, spec, "a dataset with its own split (the NCF files)")]
    if spec == "loo":
        return [Split(spec, *leave_one_out(data, seed))]
    if kind == "random" and arg:
        return [Split(spec, *random_split(data, _parse_fraction(spec, arg), seed))]
    if kind == "time" and arg:
        return [Split(spec, *time_split(data, _parse_fraction(spec, arg)))]
    raise ConfigError(f"unknown split {spec!r}; choose from {SPEC_FORMS}")
