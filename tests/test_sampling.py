"""Negative sampling never returns a positive, is seeded, and copes with dense users."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepmf.data import Interactions
from deepmf.errors import DataError
from deepmf.sampling import NegativeSampler, sample_test_negatives


def _log(users, items, n_users, n_items):
    return Interactions(np.asarray(users), np.asarray(items), n_users=n_users, n_items=n_items)


@st.composite
def train_logs(draw):
    n_users = draw(st.integers(1, 8))
    n_items = draw(st.integers(2, 12))
    pairs = draw(
        st.lists(st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1)), max_size=60)
    )
    # keep at least one free item per user
    counts = {}
    kept = []
    for u, i in sorted(set(pairs)):
        if counts.get(u, 0) < n_items - 1:
            counts[u] = counts.get(u, 0) + 1
            kept.append((u, i))
    users = [u for u, _ in kept]
    items = [i for _, i in kept]
    return _log(np.array(users, dtype=np.int64), np.array(items, dtype=np.int64), n_users, n_items)


@settings(max_examples=60, deadline=None)
@given(train=train_logs(), n_neg=st.integers(0, 7), seed=st.integers(0, 2**31 - 1),
       max_attempts=st.integers(0, 3))
def test_negatives_never_hit_a_positive(train, n_neg, seed, max_attempts):
    sampler = NegativeSampler(train, max_attempts=max_attempts)
    users = torch.arange(train.n_users).repeat(3)
    negs = sampler.sample(users, n_neg, torch.Generator().manual_seed(seed))
    assert negs.shape == (len(users), n_neg) and negs.dtype == torch.int64
    flat_users = users[:, None].expand_as(negs).reshape(-1).numpy()
    assert not train.contains(flat_users, negs.reshape(-1).numpy()).any()
    assert ((negs >= 0) & (negs < train.n_items)).all()


def test_same_seed_same_negatives():
    rng = np.random.default_rng(0)
    train = _log(rng.integers(0, 50, 500), rng.integers(0, 40, 500), 50, 40)
    sampler = NegativeSampler(train)
    users = torch.from_numpy(rng.integers(0, 50, 300))
    a = sampler.sample(users, 5, torch.Generator().manual_seed(7))
    b = sampler.sample(users, 5, torch.Generator().manual_seed(7))
    c = sampler.sample(users, 5, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("max_attempts", [0, 50])
def test_user_with_almost_every_item_gets_valid_negatives(max_attempts):
    n_items = 200
    items = np.array([i for i in range(n_items) if i not in (17, 150)])
    train = _log(np.zeros(len(items), dtype=np.int64), items, 2, n_items)
    sampler = NegativeSampler(train, max_attempts=max_attempts)
    negs = sampler.sample(torch.tensor([0, 1, 0]), 500, torch.Generator().manual_seed(0))
    assert set(negs[0].tolist()) == {17, 150} and set(negs[2].tolist()) == {17, 150}
    assert len(set(negs[1].tolist())) > 100  # user 1 has no positives
    # the exact fallback is uniform over the two free items
    assert 0.4 < (negs[[0, 2]] == 17).float().mean().item() < 0.6


def test_user_with_every_item_is_named_in_the_error():
    train = _log(np.array([1, 1, 1, 0]), np.array([0, 1, 2, 0]), 2, 3)
    sampler = NegativeSampler(train)
    with pytest.raises(DataError, match=r"every item: 1$"):
        sampler.sample(torch.tensor([0, 1]), 2, torch.Generator().manual_seed(0))
    assert sampler.sample(torch.tensor([0]), 4, torch.Generator()).ne(0).all()


@pytest.mark.gpu
def test_sampling_on_cuda():
    rng = np.random.default_rng(0)
    train = _log(rng.integers(0, 50, 1500), rng.integers(0, 40, 1500), 50, 40)
    sampler = NegativeSampler(train, max_attempts=1)
    users = torch.arange(50, device="cuda").repeat(20)
    negs = sampler.sample(users, 8, torch.Generator(device="cuda").manual_seed(0))
    assert negs.device.type == "cuda"
    flat = users[:, None].expand_as(negs).reshape(-1).cpu().numpy()
    assert not train.contains(flat, negs.reshape(-1).cpu().numpy()).any()


def test_sample_test_negatives_never_returns_a_known_item():
    rng = np.random.default_rng(1)
    n_users, n_items = 30, 25
    known = _log(rng.integers(0, n_users, 400), rng.integers(0, n_items, 400), n_users, n_items)
    # a user who knows all but one item
    dense = np.array([i for i in range(n_items) if i != 3])
    known = known.concat(_log(np.full(len(dense), 29), dense, n_users, n_items))
    test = known.take(rng.integers(0, len(known), 50)).concat(_log([29], [0], n_users, n_items))
    negs = sample_test_negatives(known, test, n_neg=99, seed=0)
    assert negs.shape == (len(test), 99) and negs.dtype == np.int64
    users = np.repeat(test.users, 99)
    assert not known.contains(users, negs.ravel()).any()
    assert (negs[-1] == 3).all()
    assert np.array_equal(negs, sample_test_negatives(known, test, n_neg=99, seed=0))
    assert not np.array_equal(negs, sample_test_negatives(known, test, n_neg=99, seed=1))


def test_sample_test_negatives_names_full_users():
    known = _log([0, 0, 1], [0, 1, 0], 2, 2)
    with pytest.raises(DataError, match="every item: 0"):
        sample_test_negatives(known, _log([0, 1], [0, 0], 2, 2), n_neg=3)


@settings(max_examples=40, deadline=None)
@given(train=train_logs(), n_neg=st.integers(1, 5), batch_size=st.integers(1, 40),
       seed=st.integers(0, 2**31 - 1), lean=st.booleans())
def test_an_epoch_holds_each_positive_once_with_its_negatives(train, n_neg, batch_size, seed,
                                                              lean):
    from deepmf import batching
    from deepmf.tasks import RankingTask

    # lean: negatives drawn batch by batch, as for logs too large to draw an epoch at once
    task = RankingTask(train, None, batch_size=batch_size, device=torch.device("cpu"),
                       num_neg=n_neg)
    default, batching.WHOLE_EPOCH_NEGATIVES = batching.WHOLE_EPOCH_NEGATIVES, 0 if lean else 1 << 60
    try:
        batches = list(task.batches(torch.Generator().manual_seed(seed)))
    finally:
        batching.WHOLE_EPOCH_NEGATIVES = default
    if not len(train):
        assert batches == []
        return
    users, items, labels = (torch.cat(parts) for parts in zip(*batches))
    assert all(0 < len(b[0]) <= max(batch_size, 1 + n_neg) for b in batches)
    positive = labels == 1
    assert set(labels.tolist()) <= {0.0, 1.0}
    keys = (users[positive] * train.n_items + items[positive]).sort().values
    assert keys.tolist() == sorted(train.pair_keys.tolist())  # every positive exactly once
    assert not task.sampler.is_positive(users[~positive], items[~positive]).any()
    expected = np.bincount(train.users, minlength=train.n_users) * (1 + n_neg)
    assert np.bincount(users.numpy(), minlength=train.n_users).tolist() == expected.tolist()


def test_the_bitmap_and_the_binary_search_agree(monkeypatch):
    rng = np.random.default_rng(3)
    log = Interactions(rng.integers(0, 50, 900), rng.integers(0, 70, 900), n_users=50,
                       n_items=70)
    users = torch.from_numpy(rng.integers(0, 50, (40, 30)))
    items = torch.from_numpy(rng.integers(0, 70, (40, 30)))
    with_bits = NegativeSampler(log)
    monkeypatch.setattr("deepmf.sampling.BITMAP_BYTES", 0)
    searched = NegativeSampler(log)
    assert with_bits.bits is not None and searched.bits is None
    got = with_bits.is_positive(users, items)
    assert torch.equal(got, searched.is_positive(users, items))
    assert got.any() and not got.all()
    truth = set(zip(log.users.tolist(), log.items.tolist()))
    assert got.tolist() == [[(u, i) in truth for u, i in zip(ru, ri)]
                            for ru, ri in zip(users.tolist(), items.tolist())]
