"""Hypothesis fuzzing of everything that parses user input: whatever goes in, only a
``DataError`` or ``ConfigError`` (one line for the CLI) may come out, never another
exception."""

from __future__ import annotations

import json
import os
import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepmf.cli.commands import _layers, _span
from deepmf.data import Dataset, Interactions, Vocabulary
from deepmf.errors import ConfigError, DataError, DeepMFError
from deepmf.experiment.config import RunConfig, read_config
from deepmf.experiment.runfiles import read_item_info, read_vocab
from deepmf.readers import load_dataset
from deepmf.readers.movielens import MOVIELENS, read_movies, read_ratings
from deepmf.readers.ncf import read_ncf
from deepmf.readers.synthetic import parse_synthetic
from deepmf.readers.table import TableFormat, read_log
from deepmf.split import make_splits

EXAMPLES = int(os.environ.get("DEEPMF_FUZZ_EXAMPLES", "60"))
"""Examples per test: 60 keeps the suite quick; set more for a deeper search."""
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
USER_ERRORS = (DataError, ConfigError)

# Text that looks like a log often enough to get past the first checks: digits, signs,
# separators, quotes, spaces, line breaks, a few letters and odd characters.
ALPHABET = string.digits * 3 + ",;|\t :.-+e\"'\r\n\n\nabcXYZ\ufeff\x00é"
log_text = st.text(alphabet=ALPHABET, max_size=300)
raw_bytes = st.binary(max_size=300)
# Rows of plausible cells, some of them odd: ids past 64 bits, floats, nan, dates, quotes.
cells = st.one_of(st.integers(-2**70, 2**70).map(str), st.floats().map(repr),
                  st.sampled_from(["", "nan", "inf", "1e30", "2020-01-01", "\"a,b\"", "x",
                                   "1.0", "18446744073709551615", "-0", " 7 "]))
rows = st.builds(lambda header, lines, sep: "\n".join(
    ([sep.join(header)] if header else []) + [sep.join(line) for line in lines]),
    st.sampled_from([None, ["user", "item", "rating", "timestamp"], ["userId", "movieId"]]),
    st.lists(st.lists(cells, min_size=1, max_size=5), min_size=1, max_size=8),
    st.sampled_from([",", "\t", ";", "::", "|", " "]))
content = st.one_of(log_text.map(lambda t: t.encode("utf-8")), raw_bytes,
                    rows.map(lambda t: t.encode("utf-8")))


def only_user_errors(call, *args, **kwargs):
    """Run ``call``; a user error is fine, success is fine, anything else fails the test."""
    try:
        return call(*args, **kwargs)
    except USER_ERRORS:
        return None


@pytest.fixture
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(data=content, name=st.sampled_from(["ml-100k", "ml-1m", "ml-latest-small"]))
def test_movielens_ratings_reader(folder, data, name):
    path = folder / "ratings"
    path.write_bytes(data)
    frame = only_user_errors(read_ratings, path, MOVIELENS[name])
    if frame is not None:  # what it accepts is what the format promises
        assert len(frame) and frame["rating"].between(*MOVIELENS[name].rating_range).all()


@FUZZ
@given(data=content, name=st.sampled_from(["ml-100k", "ml-1m", "ml-latest-small"]),
       genres=st.one_of(st.none(), content))
def test_movielens_movies_reader(folder, data, name, genres):
    path = folder / "movies"
    path.write_bytes(data)
    (folder / "u.genre").unlink(missing_ok=True)
    if genres is not None:
        (folder / "u.genre").write_bytes(genres)
    only_user_errors(read_movies, path, MOVIELENS[name])


@FUZZ
@given(data=content, suffix=st.sampled_from([".csv", ".tsv", ".txt", ".dat", ".parquet"]),
       sep=st.sampled_from([None, ",", ";", "\t", "|", "::", " "]),
       columns=st.sampled_from([{}, {"user_col": "0", "item_col": "1"},
                                {"user_col": "user", "item_col": "item", "rating_col": "rating"},
                                {"user_col": "0", "item_col": "1", "time_col": "2"}]))
def test_table_reader(folder, data, suffix, sep, columns):
    path = folder / f"log{suffix}"
    path.write_bytes(data)
    frame = only_user_errors(read_log, path, TableFormat(sep=sep, **columns))
    if frame is not None:
        assert len(frame) and {"user", "item"} <= set(frame.columns)
        for role in ("user", "item"):  # whole 64-bit numbers, else text
            dtype = frame[role].dtype
            assert dtype == np.int64 or pd.api.types.is_string_dtype(dtype)


@FUZZ
@given(train=content, test=content, negative=content)
def test_ncf_reader(folder, train, test, negative):
    for suffix, data in ((".train.rating", train), (".test.rating", test),
                         (".test.negative", negative)):
        (folder / f"set{suffix}").write_bytes(data)
    dataset = only_user_errors(read_ncf, folder / "set")
    if dataset is not None:
        assert (dataset.test_negatives >= -1).all()


@FUZZ
@given(data=content)
def test_load_dataset_end_to_end(folder, data):
    path = folder / "any.csv"
    path.write_bytes(data)
    only_user_errors(load_dataset, str(path))


@FUZZ
@given(spec=st.text(max_size=40) | st.sampled_from(
    ["random:0.2", "random:", "time:1e-300", "loo", "folds", "u9", "given", "random:nan"]))
def test_split_specs(spec):
    log = Interactions(np.arange(40) % 8, np.arange(40) % 5, timestamps=np.arange(40))
    dataset = Dataset("toy", log, Vocabulary(np.arange(8)), Vocabulary(np.arange(5)))
    only_user_errors(make_splits, dataset, spec, seed=0)


@FUZZ
@given(spec=st.text(max_size=60) | st.lists(
    st.sampled_from(["users=3", "items=4", "interactions=10", "seed=-1", "ratings=yes",
                     "users=1e3", "items=0", "interactions=99999999999999999999", "x=1", "="]),
    max_size=5).map(",".join))
def test_synthetic_specs(spec):
    options = only_user_errors(parse_synthetic, spec)
    if options is not None and all(options.get(k, 0) < 10**4 for k in
                                   ("users", "items", "interactions")):
        only_user_errors(load_dataset, "synthetic:" + spec)


@FUZZ
@given(text=st.text(max_size=30) | st.text(alphabet="0123456789,- ", max_size=20))
def test_layer_flags(text):
    try:
        sizes = _layers(text)
    except DeepMFError:
        return
    assert sizes and all(isinstance(x, int) and x >= 0 for x in sizes)
    only_user_errors(RunConfig, layers=sizes)


@FUZZ
@given(text=st.text(max_size=20))
def test_rating_range_flag(text):
    try:
        span = _span(text)
    except DeepMFError:
        return
    only_user_errors(RunConfig, rating_range=span)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)  # a TOML basic string


scalars = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(), st.text(
    max_size=10))
values = st.one_of(scalars, st.lists(st.one_of(st.integers(-10, 2**40), st.floats()),
                                     max_size=3))
FIELDS = [f for f in RunConfig.__dataclass_fields__]


@FUZZ
@given(settings_=st.dictionaries(st.sampled_from(FIELDS), values, max_size=6))
def test_toml_configs(folder, settings_):
    path = folder / "run.toml"
    path.write_text("".join(f"{key} = {toml_value(value)}\n" for key, value in
                            settings_.items()))
    only_user_errors(lambda: RunConfig(**read_config(path)))


@FUZZ
@given(data=content)
def test_toml_config_bytes(folder, data):
    path = folder / "run.toml"
    path.write_bytes(data)
    only_user_errors(lambda: RunConfig(**read_config(path)))


@FUZZ
@given(data=content | st.builds(json.dumps, st.dictionaries(
    st.sampled_from(["users", "items", "x"]),
    st.lists(st.one_of(st.integers(-2**70, 2**70), st.text(max_size=3), st.none(),
                       st.floats()), max_size=4))).map(str.encode))
def test_run_directory_text_files(folder, data):
    (folder / "vocab.json").write_bytes(data)
    (folder / "items.csv").write_bytes(data)
    only_user_errors(read_vocab, folder / "vocab.json")
    only_user_errors(read_item_info, folder / "items.csv")
