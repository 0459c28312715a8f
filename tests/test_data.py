"""Vocabularies, interaction logs and the one CSR row gather, checked on hand-made examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepmf.data import Dataset, Interactions, Vocabulary, distinct, gather_rows
from deepmf.errors import DataError


def test_vocabulary_sorts_and_encodes():
    vocab, codes = Vocabulary.from_values([30, 10, 30, 20])
    assert vocab.to_list() == [10, 20, 30]
    assert codes.tolist() == [2, 0, 2, 1]
    assert vocab.raw([2, 0]).tolist() == [30, 10]


@pytest.mark.parametrize("values, ids, codes", [
    ([3, 1, 3, 0], [0, 1, 3], [2, 1, 2, 0]),  # small whole numbers: the table indexed by id
    ([-5, 2**40, 7, 7], [-5, 7, 2**40], [0, 2, 1, 1]),  # negative or far apart: hashing
    (["b", "a", "b"], ["a", "b"], [1, 0, 1]),
])
def test_vocabulary_encodes_dense_and_sparse_ids_alike(values, ids, codes):
    vocab, encoded = Vocabulary.from_values(np.array(values))
    assert vocab.to_list() == ids and encoded.tolist() == codes and encoded.dtype == np.int64


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.integers(0, 50), min_size=1, max_size=40),
       dtype=st.sampled_from(["int64", "int32", "uint16"]))
def test_the_id_table_encodes_as_hashing_does(values, dtype):
    array = np.array(values, dtype=dtype)
    vocab, codes = Vocabulary.from_values(array)
    expected_codes, expected_ids = pd.factorize(pd.Series(array), sort=True)
    assert vocab.ids.dtype == np.asarray(expected_ids).dtype
    assert vocab.ids.tolist() == list(expected_ids)
    assert codes.tolist() == expected_codes.tolist()


def test_vocabulary_lookup_accepts_text_of_integer_ids():
    vocab = Vocabulary(np.array([7, 42, 100]))
    assert vocab.lookup([42, "42", "x", 5]).tolist() == [1, 1, -1, -1]
    assert vocab.index("100") == 2 and vocab.index(7) == 0
    with pytest.raises(KeyError):
        vocab.index("8")
    with pytest.raises(KeyError):
        vocab.index([1, 2])  # unhashable: unknown, not a TypeError


def test_vocabulary_rejects_duplicates():
    with pytest.raises(DataError, match="unique"):
        Vocabulary(np.array(["a", "b", "a"]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(users=[0, 1], items=[0]), "differ in length"),
    (dict(users=[0, 3], items=[0, 1], n_users=3), "users must lie in 0..2"),
    (dict(users=[0, 1], items=[-1, 0]), "items must lie"),
    (dict(users=[0, 1], items=[0, 1], ratings=[1.0, float("nan")]), "finite"),
    (dict(users=[0.5, 1], items=[0, 1]), "integers"),
])
def test_interactions_checks_its_fields(kwargs, match):
    with pytest.raises(DataError, match=match):
        Interactions(**{k: np.asarray(v) if isinstance(v, list) else v
                        for k, v in kwargs.items()})


def test_csr_collapses_duplicates_and_contains_finds_pairs():
    log = Interactions(np.array([0, 0, 1, 0]), np.array([2, 2, 0, 1]), n_users=3, n_items=3)
    assert log.csr.toarray().tolist() == [[0, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert log.pair_keys.tolist() == [1, 2, 3]  # user * 3 + item, unique and sorted
    assert log.contains([0, 0, 1, 2], [2, 0, 0, 2]).tolist() == [True, False, True, False]
    assert log.user_counts.tolist() == [3, 1, 0] and log.item_counts.tolist() == [1, 1, 2]


def test_take_concat_and_implicit_keep_id_spaces():
    log = Interactions(np.array([0, 1, 2]), np.array([1, 1, 0]),
                       np.array([5.0, 2.0, 4.0], dtype=np.float32), n_users=4, n_items=3)
    liked = log.implicit(min_rating=4)
    assert liked.users.tolist() == [0, 2] and liked.ratings is None
    assert (liked.n_users, liked.n_items) == (4, 3)
    both = log.take([0]).concat(log.take([2]))
    assert both.users.tolist() == [0, 2] and both.ratings.tolist() == [5.0, 4.0]


def test_gather_rows_by_hand():
    # rows: 0 -> [a, b], 1 -> [], 2 -> [c]; entries stored at positions 0, 1, 2
    indptr = torch.tensor([0, 2, 2, 3])
    positions, counts = gather_rows(indptr, torch.tensor([2, 0, 1, 0]))
    assert positions.tolist() == [2, 0, 1, 0, 1]
    assert counts.tolist() == [1, 2, 0, 2]


def test_restrict_users_filters_log_splits_and_negatives():
    log = Interactions(np.array([0, 1, 2, 1]), np.array([0, 1, 2, 0]), n_users=3, n_items=3)
    test = Interactions(np.array([0, 1, 2]), np.array([1, 2, 0]), n_users=3, n_items=3)
    negatives = np.array([[2], [0], [1]])
    data = Dataset("x", log, Vocabulary(np.arange(3)), Vocabulary(np.arange(3)),
                   given={"given": (log, test)}, test_negatives=negatives)
    kept = data.restrict_users(np.array([True, False, True]))
    assert kept.interactions.users.tolist() == [0, 2]
    assert kept.given["given"][1].users.tolist() == [0, 2]
    assert kept.test_negatives.tolist() == [[2], [1]]
    assert kept.n_users == 3  # id spaces unchanged


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.integers(-3, 20), max_size=40))
def test_distinct_gives_what_np_unique_gives(values):
    array = np.array(values, dtype=np.int64)
    expected, expected_counts = np.unique(array, return_counts=True)
    assert distinct(array).tolist() == expected.tolist()
    found, counts = distinct(array, counts=True)
    assert found.tolist() == expected.tolist() and counts.tolist() == expected_counts.tolist()
