"""Split invariants: nothing lost, nothing shared, seeded, and the right rows held out.

Rows carry their log position in ``ratings`` so tests can tell exactly which rows went where.
"""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepmf.data import Dataset, Interactions, Vocabulary
from deepmf.errors import ConfigError, DataError
from deepmf.split import (
    Split,
    leave_one_out,
    make_splits,
    random_split,
    sample_users,
    time_split,
    validation_split,
)

SETTINGS = settings(max_examples=40, deadline=None)


def make_log(users, items=None, timestamps=None, with_timestamps=True):
    """Interactions whose ``ratings`` hold each row's position in the log."""
    users = np.asarray(users, dtype=np.int64)
    n = len(users)
    items = np.arange(n) % 7 if items is None else np.asarray(items, dtype=np.int64)
    if with_timestamps and timestamps is None:
        timestamps = np.zeros(n, dtype=np.int64)
    return Interactions(
        users,
        items,
        ratings=np.arange(n, dtype=np.float32),
        timestamps=timestamps if with_timestamps else None,
        n_users=int(users.max()) + 2 if n else 1,
        n_items=7 if n == 0 else max(7, int(np.max(items)) + 1),
    )


@st.composite
def logs(draw, min_rows=0, timestamps=True):
    n = draw(st.integers(min_rows, 60))
    users = draw(st.lists(st.integers(0, 7), min_size=n, max_size=n))
    items = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))
    stamps = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))  # many ties
    return make_log(users, items, np.asarray(stamps, dtype=np.int64), with_timestamps=timestamps)


def row_ids(data: Interactions) -> np.ndarray:
    return data.ratings.astype(np.int64)


def assert_partition(data, train, test):
    """train and test together hold every row of data once (same row contents, same id spaces)."""
    a, b = row_ids(train), row_ids(test)
    assert np.intersect1d(a, b).size == 0
    assert np.array_equal(np.sort(np.concatenate([a, b])), np.arange(len(data)))
    for part, ids in ((train, a), (test, b)):
        assert np.array_equal(part.users, data.users[ids])
        assert np.array_equal(part.items, data.items[ids])
        assert np.all(np.diff(ids) > 0)  # log order kept
        assert (part.n_users, part.n_items) == (data.n_users, data.n_items)


def latest_reference(data: Interactions) -> set[int]:
    """Rows leave-one-out should hold out, computed with a plain pandas groupby."""
    frame = pd.DataFrame({"user": data.users, "row": np.arange(len(data))})
    frame["ts"] = 0 if data.timestamps is None else data.timestamps
    frame = frame[frame.groupby("user")["user"].transform("size") >= 2]
    return set(frame.sort_values(["user", "ts", "row"]).groupby("user").tail(1)["row"])


# random_split


@SETTINGS
@given(logs(), st.floats(0.01, 0.99), st.integers(0, 2**32 - 1))
def test_random_split_partitions_and_sizes(data, fraction, seed):
    train, test = random_split(data, fraction, seed)
    assert_partition(data, train, test)
    assert abs(len(test) - fraction * len(data)) <= 1
    again = random_split(data, fraction, seed)[1]
    assert np.array_equal(row_ids(test), row_ids(again))


def test_random_split_depends_on_seed():
    data = make_log(np.arange(200) % 10)
    a, b = random_split(data, 0.2, seed=0)[1], random_split(data, 0.2, seed=1)[1]
    assert len(a) == len(b) == 40
    assert not np.array_equal(row_ids(a), row_ids(b))


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5, float("nan"), "x"])
def test_random_split_rejects_bad_fraction(fraction):
    with pytest.raises(ConfigError, match="test_fraction") as err:
        random_split(make_log([0, 1]), fraction, seed=0)
    assert "\n" not in str(err.value)


# leave_one_out


@SETTINGS
@given(st.one_of(logs(timestamps=True), logs(timestamps=False)))
def test_leave_one_out_holds_out_latest_row_per_user(data):
    train, test = leave_one_out(data)
    assert_partition(data, train, test)
    assert set(row_ids(test)) == latest_reference(data)
    counts = np.bincount(data.users, minlength=data.n_users)
    assert np.array_equal(np.bincount(test.users, minlength=data.n_users), counts >= 2)


def test_leave_one_out_tie_goes_to_later_row():
    # user 0: rows 0 and 2 tie on the latest time; row 2 is later in the log
    data = make_log([0, 1, 0, 0, 1, 2], timestamps=np.array([5, 1, 5, 3, 0, 9]))
    for seed in (0, 1):
        test = leave_one_out(data, seed=seed)[1]
        assert row_ids(test).tolist() == [1, 2]  # user 2 has a single row: stays in train


def test_leave_one_out_without_timestamps_uses_log_order():
    data = make_log([0, 1, 0, 1, 0], with_timestamps=False)
    assert row_ids(leave_one_out(data)[1]).tolist() == [3, 4]


def test_leave_one_out_empty_log():
    train, test = leave_one_out(make_log([]))
    assert len(train) == len(test) == 0


# time_split


@SETTINGS
@given(logs(min_rows=1), st.floats(0.01, 0.99))
def test_time_split_test_is_later_than_train(data, fraction):
    train, test = time_split(data, fraction)
    assert_partition(data, train, test)
    assert abs(len(test) - fraction * len(data)) <= 1
    if len(train) and len(test):
        assert test.timestamps.min() >= train.timestamps.max()
        cut = test.timestamps.min()
        tied_train = row_ids(train)[train.timestamps == cut]
        tied_test = row_ids(test)[test.timestamps == cut]
        if len(tied_train) and len(tied_test):
            assert tied_test.min() > tied_train.max()  # stable on log order at the cut


def test_time_split_needs_timestamps():
    with pytest.raises(DataError, match="timestamps") as err:
        time_split(make_log([0, 1, 2], with_timestamps=False), 0.5)
    assert "\n" not in str(err.value)


# validation_split


@SETTINGS
@given(st.one_of(logs(timestamps=True), logs(timestamps=False)), st.integers(0, 1000))
def test_per_user_validation_stays_inside_train(data, seed):
    train, test = leave_one_out(data)
    fit, valid = validation_split(train, seed=seed, per_user=True)
    train_ids = row_ids(train)
    assert np.isin(row_ids(valid), train_ids).all()
    assert not np.isin(row_ids(valid), row_ids(test)).any()
    assert np.array_equal(np.sort(np.concatenate([row_ids(fit), row_ids(valid)])), train_ids)
    counts = np.bincount(train.users, minlength=train.n_users)
    assert np.array_equal(np.bincount(valid.users, minlength=train.n_users), counts >= 2)
    if train.timestamps is not None:
        assert set(row_ids(valid)) == {int(train_ids[r]) for r in latest_reference(train)}
    again = validation_split(train, seed=seed, per_user=True)[1]
    assert np.array_equal(row_ids(valid), row_ids(again))


def test_per_user_validation_without_timestamps_is_seeded_random():
    data = make_log(np.repeat(np.arange(20), 10), with_timestamps=False)
    picks = [row_ids(validation_split(data, seed=s, per_user=True)[1]) for s in range(3)]
    assert all(len(p) == 20 for p in picks)
    assert not np.array_equal(picks[0], picks[1]) or not np.array_equal(picks[0], picks[2])
    last_rows = np.arange(9, 200, 10)
    assert not all(np.array_equal(p, last_rows) for p in picks)


@SETTINGS
@given(logs(), st.floats(0.01, 0.5), st.integers(0, 1000))
def test_row_validation_fraction(data, fraction, seed):
    fit, valid = validation_split(data, fraction=fraction, seed=seed)
    assert_partition(data, fit, valid)
    assert abs(len(valid) - fraction * len(data)) <= 1


def test_validation_rejects_bad_fraction():
    with pytest.raises(ConfigError, match="fraction"):
        validation_split(make_log([0, 1]), fraction=0.0, seed=0)


# sample_users


@SETTINGS
@given(logs(min_rows=1), st.integers(1, 10), st.integers(0, 1000))
def test_sample_users_keeps_whole_users(data, n, seed):
    keep = sample_users(data, n, seed)
    present = np.unique(data.users)
    assert keep.shape == (data.n_users,) and keep.sum() == min(n, len(present))
    assert not keep[np.setdiff1d(np.arange(data.n_users), present)].any()  # only users present
    assert np.array_equal(sample_users(data, n, seed), keep)


@pytest.mark.parametrize("n", [0, -3, 1.5, True])
def test_sample_users_rejects_bad_n(n):
    with pytest.raises(ConfigError):
        sample_users(make_log([0, 1]), n, seed=0)


# make_splits and default_split


def make_dataset(given=None, name="toy"):
    data = make_log(np.arange(50) % 5, timestamps=np.arange(50))
    return Dataset(
        name,
        data,
        Vocabulary(np.arange(data.n_users)),
        Vocabulary(np.arange(data.n_items)),
        given=given or {},
    )


def official_dataset():
    data = make_dataset().interactions
    folds = {f"u{k}": random_split(data, 0.2, seed=k) for k in range(1, 6)}
    folds["ua"] = folds["ub"] = leave_one_out(data)
    return make_dataset(folds, name="ml-100k")


def test_make_splits_official_and_folds():
    dataset = official_dataset()
    (one,) = make_splits(dataset, "u3")
    assert isinstance(one, Split) and one.name == "u3"
    assert one.train is dataset.given["u3"][0] and one.test is dataset.given["u3"][1]
    folds = make_splits(dataset, "folds")
    assert [s.name for s in folds] == ["u1", "u2", "u3", "u4", "u5"]
    assert make_splits(dataset, "ub")[0].test is dataset.given["ub"][1]


@pytest.mark.parametrize("spec", ["random:0.2", "loo", "time:0.25"])
def test_make_splits_computed(spec):
    dataset = make_dataset()
    (split,) = make_splits(dataset, spec, seed=3)
    assert split.name == spec
    assert_partition(dataset.interactions, split.train, split.test)
    again = make_splits(dataset, spec, seed=3)[0]
    assert np.array_equal(row_ids(split.test), row_ids(again.test))


def test_make_splits_given():
    data = make_dataset().interactions
    dataset = make_dataset({"given": leave_one_out(data)})
    assert make_splits(dataset, "given")[0].test is dataset.given["given"][1]


@pytest.mark.parametrize(
    "spec, match",
    [
        ("foo", r"unknown split 'foo'; choose from u1\.\.u5, ua, ub, folds, given, random:P"),
        ("random", "unknown split"),
        ("random:", "unknown split"),
        ("random:abc", "between 0 and 1"),
        ("time:1.5", "between 0 and 1"),
        ("random:0", "between 0 and 1"),
        ("u1", "needs ml-100k's official folds; dataset toy has: none"),
        ("folds", "dataset toy has"),
        ("ua", "dataset toy"),
        ("given", "dataset toy"),
    ],
)
def test_make_splits_errors(spec, match):
    with pytest.raises(ConfigError, match=match) as err:
        make_splits(make_dataset(), spec)
    assert "\n" not in str(err.value)


def test_make_splits_names_available_splits():
    dataset = make_dataset({"given": leave_one_out(make_dataset().interactions)})
    with pytest.raises(ConfigError, match="dataset toy has: given"):
        make_splits(dataset, "u1")


def test_time_spec_without_timestamps_is_data_error():
    data = make_log(np.arange(10) % 3, with_timestamps=False)
    dataset = Dataset("nots", data, Vocabulary(np.arange(4)), Vocabulary(np.arange(7)))
    with pytest.raises(DataError):
        make_splits(dataset, "time:0.2")


# real data


def test_leave_one_out_on_ml100k():
    root = os.environ.get("DEEPMF_DATA_DIR")
    path = Path(root, "ml-100k", "u.data") if root else None
    if path is None or not path.exists():
        pytest.skip("set DEEPMF_DATA_DIR to a folder holding ml-100k/u.data to run this")
    frame = pd.read_csv(
        path,
        sep="\t",
        names=["user", "item", "rating", "timestamp"],
        engine="c",
        dtype={"user": np.int64, "item": np.int64, "rating": np.float32, "timestamp": np.int64},
    )
    _, users = Vocabulary.from_values(frame["user"])
    _, items = Vocabulary.from_values(frame["item"])
    data = Interactions(users, items, frame["rating"].to_numpy(), frame["timestamp"].to_numpy())
    train, test = leave_one_out(data)
    assert len(test) == 943 == len(np.unique(test.users))
    assert len(train) + len(test) == 100_000
    latest = frame.groupby("user")["timestamp"].transform("max").to_numpy()
    assert (test.timestamps == latest[_test_rows(data, test)]).all()


def _test_rows(data: Interactions, test: Interactions) -> np.ndarray:
    """Positions in ``data`` of the rows of ``test`` (pairs are unique in ml-100k)."""
    keys = data.users * data.n_items + data.items
    order = np.argsort(keys)
    return order[np.searchsorted(keys[order], test.users * data.n_items + test.items)]
