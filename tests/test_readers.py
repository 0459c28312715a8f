"""Readers: real MovieLens/NCF files through DEEPMF_DATA_DIR, generic logs, synthetic data."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepmf.errors import ConfigError, DataError
from deepmf.readers import known_datasets, load_dataset
from deepmf.readers.movielens import MOVIELENS, read_movies, read_ratings


@pytest.fixture(scope="module")
def data_dir(data_root) -> Path:
    """The shared real data, only through $DEEPMF_DATA_DIR (never a hard-coded default)."""
    return data_root


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is missing from DEEPMF_DATA_DIR")
    return path


@pytest.fixture(scope="module")
def ml100k(data_dir):
    need(data_dir / "ml-100k" / "u.data")
    return load_dataset("ml-100k", data_dir, download=False)


@pytest.fixture(autouse=True)
def no_cache(tmp_path_factory, monkeypatch):
    """Keep every test away from the user's real cache dir."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


def pairs(log, users, items) -> set:
    return set(zip(users.raw(log.users).tolist(), items.raw(log.items).tolist()))


# Real data -------------------------------------------------------------------------------


def test_ml100k_counts_ratings_titles(ml100k):
    log = ml100k.interactions
    assert (len(log), ml100k.n_users, ml100k.n_items) == (100_000, 943, 1_682)
    assert set(np.unique(log.ratings)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert ml100k.rating_range == (1.0, 5.0)
    assert log.timestamps is not None and log.timestamps.dtype == np.int64
    info = ml100k.item_info
    toy = ml100k.items.index(1)
    assert info.loc[toy, "title"] == "Toy Story (1995)"
    assert info.loc[toy, "genres"] == "Animation|Children's|Comedy"
    assert len(info) == 1_682 and (info["title"] != "").all()
    assert ml100k.source.endswith("ml-100k")


def test_ml100k_official_folds(ml100k, data_dir):
    train, test = ml100k.given["u1"]
    assert (len(train), len(test)) == (80_000, 20_000)
    assert set(ml100k.given) == {"u1", "u2", "u3", "u4", "u5", "ua", "ub"}
    everything = pairs(ml100k.interactions, ml100k.users, ml100k.items)
    for fold in ("u1", "u2", "u3", "u4", "u5"):
        train, test = ml100k.given[fold]
        assert train.n_items == test.n_items == 1_682
        joined = pairs(train, ml100k.users, ml100k.items) | pairs(test, ml100k.users, ml100k.items)
        assert joined == everything, fold


def test_ml1m_ratings_and_movies_parsers(data_dir):
    fmt = MOVIELENS["ml-1m"]
    frame = read_ratings(need(data_dir / "ml-1m" / "ratings.users1-2999.dat"), fmt)
    assert len(frame) == 487_650
    assert frame["user"].between(1, 2999).all() and frame["rating"].between(1, 5).all()
    assert frame.dtypes.to_dict() == {"user": np.int64, "item": np.int64,
                                      "rating": np.float32, "timestamp": np.int64}
    movies = read_movies(need(data_dir / "ml-1m" / "movies.dat"), fmt)
    assert movies.loc[1, "title"] == "Toy Story (1995)"
    assert movies.loc[1, "genres"] == "Animation|Children's|Comedy"
    assert len(movies) == 3_883


def test_ml1m_named_reader(data_dir, tmp_path):
    # The named reader needs ratings.dat; link the partial file under that name.
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").symlink_to(need(data_dir / "ml-1m" / "ratings.users1-2999.dat"))
    (folder / "movies.dat").symlink_to(need(data_dir / "ml-1m" / "movies.dat"))
    data = load_dataset("ml-1m", tmp_path, download=False)
    assert len(data.interactions) == 487_650 and data.n_users == 2_999
    assert data.item_info.loc[data.items.index(1), "title"] == "Toy Story (1995)"
    assert data.rating_range == (1.0, 5.0) and data.given == {}


def test_relative_data_dir_works_from_the_working_directory(data_dir, monkeypatch):
    # Regression (issue 12): the README sets DEEPMF_DATA_DIR=../shared/data, a relative path;
    # a test that linked files from it dangled inside its temporary folder.
    need(data_dir / "ml-100k" / "u.data")
    monkeypatch.chdir(data_dir.parent)
    monkeypatch.setenv("DEEPMF_DATA_DIR", data_dir.name)
    data = load_dataset("ml-100k", download=False)
    assert len(data.interactions) == 100_000


def test_ml1m_needs_full_ratings_file(data_dir):
    # The shared folder only has the partial file: the named reader must not accept it.
    if (data_dir / "ml-1m" / "ratings.dat").exists():
        pytest.skip("a full ratings.dat is present")
    with pytest.raises(DataError, match="ml-1m.*not found") as err:
        load_dataset("ml-1m", data_dir, download=False)
    assert str(data_dir) in str(err.value) and "\n" not in str(err.value)


def test_ncf_ml1m(data_dir):
    need(data_dir / "deepcf" / "ml-1m.train.rating")
    data = load_dataset("ncf:deepcf/ml-1m", data_dir)
    train, test = data.given["given"]
    assert (data.n_users, data.n_items) == (6_040, 3_706)
    assert (len(train), len(test)) == (994_169, 6_040)
    assert data.test_negatives.shape == (6_040, 99)
    assert data.test_negatives.dtype == np.int64
    assert not train.is_explicit and train.timestamps is None and test.timestamps is not None
    assert len(data.interactions) == 994_169 + 6_040
    assert data.name == "ncf:ml-1m" and data.users.index(17) == 17
    assert (test.users == np.arange(6_040)).all()


def test_ncf_amusic_three_columns(data_dir):
    need(data_dir / "deepcf" / "AMusic.train.rating")
    data = load_dataset("ncf:deepcf/AMusic", data_dir)
    train, test = data.given["given"]
    assert (len(train), len(test)) == (44_311, 1_776)
    assert data.n_users == 1_776 and data.n_items <= 12_929
    assert data.test_negatives.shape == (1_776, 99) and data.interactions.ratings is None


def test_known_datasets(data_dir):
    rows = {row["name"]: row for row in known_datasets(data_dir)}
    assert set(MOVIELENS) <= set(rows)
    assert rows["ml-100k"]["found"] == str(data_dir / "ml-100k")
    assert rows["ml-1m"]["found"] is None
    ncf = [name for name in rows if name.startswith("ncf:") and name.endswith("/ml-1m")]
    assert ncf and rows[ncf[0]]["found"].endswith("deepcf/ml-1m")


# NCF files written here ------------------------------------------------------------------


def write_ncf(folder: Path, train: str, test: str, negative: str) -> Path:
    for suffix, text in ((".train.rating", train), (".test.rating", test),
                         (".test.negative", negative)):
        (folder / f"toy{suffix}").write_text(text)
    return folder / "toy"


def test_ncf_pads_short_negative_lines(tmp_path):
    base = write_ncf(tmp_path, "0\t1\n0\t2\n1\t0\n", "0\t3\n1\t2\n", "(0,3)\t4\t5\n(1,2)\t4\n")
    data = load_dataset(f"ncf:{base}")
    assert data.test_negatives.tolist() == [[4, 5], [4, -1]]
    assert data.n_items == 6 and data.name == "ncf:toy"


def test_ncf_mismatched_negative_pairs(tmp_path):
    base = write_ncf(tmp_path, "0\t1\n1\t0\n", "0\t3\n1\t2\n", "(0,3)\t4\n(1,5)\t4\n")
    with pytest.raises(DataError, match=r"toy.test.negative: line 2: pair \(1,5\)"):
        load_dataset(f"ncf:{base}")


def test_ncf_missing(tmp_path):
    with pytest.raises(DataError, match="nothing.train.rating"):
        load_dataset(f"ncf:{tmp_path}/nothing", tmp_path)


# Generic logs ----------------------------------------------------------------------------


LOG = pd.DataFrame({"userId": [10, 10, 20, 30], "movieId": [5, 7, 5, 9],
                    "rating": [4.0, 3.5, 5.0, 1.0], "timestamp": [100, 200, 300, 400]})


@pytest.mark.parametrize("suffix,sep", [(".csv", ","), (".tsv", "\t"), (".dat", "::"),
                                        (".txt", ";")])
def test_delimited_with_and_without_header(tmp_path, suffix, sep):
    text = "\n".join(sep.join(str(v) for v in row) for row in LOG.itertuples(index=False))
    (tmp_path / f"h{suffix}").write_text(sep.join(LOG.columns) + "\n" + text + "\n")
    (tmp_path / f"n{suffix}").write_text(text + "\n")
    for name in ("h", "n"):
        data = load_dataset(str(tmp_path / f"{name}{suffix}"))
        log = data.interactions
        assert data.users.raw(log.users).tolist() == [10, 10, 20, 30]
        assert data.items.raw(log.items).tolist() == [5, 7, 5, 9]
        assert log.ratings.tolist() == [4.0, 3.5, 5.0, 1.0]
        assert log.timestamps.tolist() == [100, 200, 300, 400]
        assert data.rating_range == (1.0, 5.0)


def test_column_options_and_implicit(tmp_path):
    path = tmp_path / "log.csv"
    pd.DataFrame({"when": [1, 2], "who": ["ann", "bob"], "what": ["x", "y"]}).to_csv(
        path, index=False)
    data = load_dataset(str(path), user_col="who", item_col="what", time_col="when")
    assert data.users.to_list() == ["ann", "bob"] and data.interactions.ratings is None
    assert data.interactions.timestamps.tolist() == [1, 2] and data.rating_range is None
    no_header = tmp_path / "plain.tsv"
    no_header.write_text("1\tu1\ti1\n2\tu2\ti1\n")
    data = load_dataset(str(no_header), user_col="1", item_col="2", header=False)
    assert data.users.to_list() == ["u1", "u2"] and data.n_items == 1
    with pytest.raises(ConfigError, match="no column 'nope'"):
        load_dataset(str(path), user_col="nope", item_col="what")


def test_parquet(tmp_path):
    path = tmp_path / "log.parquet"
    LOG.to_parquet(path)
    data = load_dataset(str(path))
    assert data.interactions.ratings.tolist() == [4.0, 3.5, 5.0, 1.0]
    data = load_dataset(str(path), user_col="movieId", item_col="userId")
    assert data.users.to_list() == [5, 7, 9] and data.interactions.ratings is None


def test_unknown_spec():
    with pytest.raises(DataError, match="unknown dataset 'ml-5k'"):
        load_dataset("ml-5k")


def test_named_dataset_not_found_lists_places(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPMF_DATA_DIR", str(tmp_path / "env"))
    with pytest.raises(DataError) as err:
        load_dataset("ml-100k", tmp_path / "arg", download=False)
    message = str(err.value)
    assert "ml-100k" in message and "\n" not in message
    for place in (tmp_path / "arg", tmp_path / "env", "deepmf"):
        assert str(place) in message


# Synthetic -------------------------------------------------------------------------------


def test_synthetic_shape_and_seed():
    spec = "synthetic:users=50,items=40,interactions=2000,seed=3"
    a, b = load_dataset(spec), load_dataset(spec)
    assert (a.n_users, a.n_items, len(a.interactions)) == (50, 40, 2000)
    assert a.interactions.ratings is None and a.rating_range is None
    assert np.array_equal(a.interactions.users, b.interactions.users)
    assert np.array_equal(a.interactions.items, b.interactions.items)
    c = load_dataset("synthetic:users=50,items=40,interactions=2000,seed=4")
    assert not np.array_equal(a.interactions.items, c.interactions.items)
    rated = load_dataset(spec + ",ratings=true")
    assert set(np.unique(rated.interactions.ratings)) <= {1, 2, 3, 4, 5}
    assert rated.rating_range == (1.0, 5.0)


def test_synthetic_has_popular_items():
    log = load_dataset("synthetic:users=500,items=1000,interactions=50000").interactions
    counts = np.sort(log.item_counts)[::-1]
    assert counts[:10].sum() > 5 * counts[-500:].sum() / 50  # head far above the tail


@pytest.mark.parametrize("spec, says", [
    ("synthetic:users=5,items=5", "needs interactions (e.g. synthetic:users=1000,items=500,"),
    ("synthetic:users=x,items=1,interactions=1", "users needs a whole number, not 'x'"),
    ("synthetic:users=1,items=1,interactions=1,colour=red", "bad synthetic option 'colour=red'"),
])
def test_synthetic_bad_spec(spec, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_dataset(spec)


# Malformed files -------------------------------------------------------------------------


def u_data(tmp_path: Path, text: str | bytes) -> Path:
    folder = tmp_path / "ml-100k"
    folder.mkdir(exist_ok=True)
    path = folder / "u.data"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def single_line_error(call, *needles):
    with pytest.raises(DataError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, message
    return message


GOOD = "1\t1\t5\t881250949\n2\t1\t3\t891717742\n"


@pytest.mark.parametrize("line,needle", [
    ("3\t2\t4", "line 3: expected 4 fields, got 3"),
    ("3\t2\t4\t1\t9", "line 3: expected 4 fields, got 5"),
    ("x3\t2\t4\t1", "line 3: user 'x3' is not an integer"),
    ("3\t2.5\t4\t1", "line 3: item '2.5' is not an integer"),
    ("3\t2\t7\t1", "line 3: rating 7 outside 1..5"),
    ("3\t2\t0\t1", "line 3: rating 0 outside 1..5"),
    ("3\t2\tnan\t1", "line 3: rating 'nan' is not a finite number"),
    ("3\t2\tgood\t1", "line 3: rating 'good' is not a number"),
])
def test_movielens_bad_line(tmp_path, line, needle):
    u_data(tmp_path, GOOD + line + "\n")
    single_line_error(lambda: load_dataset("ml-100k", tmp_path, download=False),
                      "u.data", needle)


def test_ml1m_double_colon_bad_line(tmp_path):
    path = tmp_path / "ratings.dat"
    path.write_text("1::1193::5::978300760\n1::661::3\n")
    single_line_error(lambda: read_ratings(path, MOVIELENS["ml-1m"]),
                      "ratings.dat", "line 2: expected 4 fields, got 3")


def test_empty_and_missing_files(tmp_path):
    u_data(tmp_path, "")
    single_line_error(lambda: load_dataset("ml-100k", tmp_path, download=False),
                      "u.data", "empty")
    (tmp_path / "empty.csv").write_text("")
    single_line_error(lambda: load_dataset(str(tmp_path / "empty.csv")), "empty.csv", "empty")
    single_line_error(lambda: load_dataset(str(tmp_path / "absent.csv")), "absent.csv")
    single_line_error(lambda: read_ratings(tmp_path / "gone.dat", MOVIELENS["ml-1m"]),
                      "gone.dat", "no such file")


def test_bad_encoding(tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes(b"user,item,rating\n1,2,3\n1,\xff\xfe,4\n")
    single_line_error(lambda: load_dataset(str(path)), "log.csv", "line 3", "utf-8")


@pytest.mark.parametrize("body,needle", [
    ("user,item,rating\n1,2,3\n1,2\n", "line 3: expected 3 fields, got 2"),
    ("user,item,rating\n1,2,3\n1,2,3,4\n", "line 3: expected 3 fields, got 4"),
    ("user,item,rating\n1,2,3\n1,2,lots\n", "line 3: rating 'lots' is not a number"),
    ("user,item,rating\n1,2,3\n1,2,nan\n", "line 3: rating 'nan' is not a finite number"),
    ("user,item,rating\n1,2,3\n,2,4\n", "line 3: empty user"),
])
def test_generic_bad_line(tmp_path, body, needle):
    path = tmp_path / "log.csv"
    path.write_text(body)
    single_line_error(lambda: load_dataset(str(path)), "log.csv", needle)


def test_ncf_non_numeric_id(tmp_path):
    base = write_ncf(tmp_path, "0\t1\nzero\t2\n", "0\t3\n", "(0,3)\t4\n")
    single_line_error(lambda: load_dataset(f"ncf:{base}"), "toy.train.rating",
                      "line 2: user 'zero' is not an integer")


# Property: a log written as CSV reads back to the same triples, one per (user, item) -----


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(
    st.tuples(st.integers(-10**6, 10**12), st.sampled_from(["a", "b c", "d,e", "ñ", "42x"]),
              st.sampled_from([0.5, 1.0, 2.5, 3.0, 5.0])),
    min_size=1, max_size=30))
def test_csv_round_trip(tmp_path, rows):
    path = tmp_path / "prop.csv"
    frame = pd.DataFrame(rows, columns=["user", "item", "rating"])
    frame.to_csv(path, index=False)
    data = load_dataset(str(path))
    log = data.interactions
    got = list(zip(data.users.raw(log.users).tolist(), data.items.raw(log.items).tolist(),
                   log.ratings.tolist()))
    last = {(user, item): i for i, (user, item, _) in enumerate(rows)}  # a repeat: the last
    assert got == [rows[i] for i in sorted(last.values())]


# One row per (user, item) pair ----------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 4)),
                     min_size=1, max_size=30), timed=st.booleans())
def test_each_pair_keeps_its_latest_row(rows, timed):
    """The greatest timestamp wins, a tie goes to the later row, and without timestamps
    the last row wins; the rows kept stay in file order."""
    from deepmf.data import Dataset, Interactions, Vocabulary
    from deepmf.readers.load import latest_per_pair

    users, items, times = (np.array(column) for column in zip(*rows))
    position = np.arange(len(rows), dtype=np.float32)  # the rating says which row it is
    log = Interactions(users, items, position, times if timed else None, 4, 4)
    vocab = Vocabulary(np.arange(4))
    kept = latest_per_pair(Dataset("toy", log, vocab, vocab)).interactions
    latest: dict = {}
    for row, (user, item, time) in enumerate(rows):
        latest[user, item] = max(latest.get((user, item), (-1, -1)), (time if timed else 0, row))
    assert kept.ratings.tolist() == sorted(row for _, row in latest.values())
    assert kept.n_users == 4 and kept.n_items == 4


def test_a_rating_changed_later_counts_once_as_it_ends(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user,item,rating,timestamp\n1,10,2,300\n1,10,5,100\n2,10,4,50\n"
                    "1,11,3,100\n1,11,1,100\n")
    log = load_dataset(str(path)).interactions
    assert sorted(zip(log.users.tolist(), log.items.tolist(), log.ratings.tolist())) == [
        (0, 0, 2.0), (0, 1, 1.0), (1, 0, 4.0)]  # 1-10 latest by time, 1-11 by row
