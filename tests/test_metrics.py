"""Ranking and rating metrics against hand-computed values."""

import math

import pytest
import torch

from deepmf import metrics


def _hits(*rows):
    return torch.tensor(rows, dtype=torch.bool)


def _n(*values):
    return torch.tensor(values, dtype=torch.long)


def test_perfect_list_has_ndcg_one():
    hits = _hits([True, True, True, False])
    assert metrics.ndcg(hits, _n(3)).item() == pytest.approx(1.0)
    assert metrics.average_precision(hits, _n(3)).item() == pytest.approx(1.0)
    assert metrics.mrr(hits).item() == 1.0


def test_no_hit_gives_zero_everywhere():
    hits = _hits([False, False, False])
    for value in (
        metrics.hit_rate(hits),
        metrics.ndcg(hits, _n(2)),
        metrics.mrr(hits),
        metrics.average_precision(hits, _n(2)),
        metrics.recall(hits, _n(2)),
        metrics.precision(hits),
    ):
        assert value.item() == 0.0


def test_two_of_three_relevant_written_out():
    # relevant items at ranks 1 and 3 of a top-5 list; the user has 3 relevant items
    hits = _hits([True, False, True, False, False])
    n_rel = _n(3)
    dcg = 1 / math.log2(1 + 1) + 1 / math.log2(3 + 1)
    idcg = 1 / math.log2(1 + 1) + 1 / math.log2(2 + 1) + 1 / math.log2(3 + 1)
    assert metrics.ndcg(hits, n_rel).item() == pytest.approx(dcg / idcg)
    assert metrics.ndcg(hits, n_rel).item() == pytest.approx(0.703918, abs=1e-6)
    assert metrics.mrr(hits).item() == pytest.approx(1.0)
    # precision@1 = 1/1 at the first hit, precision@3 = 2/3 at the second; / min(3, 5)
    assert metrics.average_precision(hits, n_rel).item() == pytest.approx((1 + 2 / 3) / 3)
    assert metrics.recall(hits, n_rel).item() == pytest.approx(2 / 3)
    assert metrics.precision(hits).item() == pytest.approx(2 / 5)
    assert metrics.hit_rate(hits).item() == 1.0


def test_per_user_values_for_a_batch():
    hits = _hits([False, True, False], [False, False, True], [False, False, False])
    n_rel = _n(1, 2, 1)
    assert metrics.mrr(hits).tolist() == pytest.approx([1 / 2, 1 / 3, 0.0])
    assert metrics.ndcg(hits, n_rel).tolist() == pytest.approx(
        [1 / math.log2(3), (1 / math.log2(4)) / (1 + 1 / math.log2(3)), 0.0]
    )
    assert metrics.average_precision(hits, n_rel).tolist() == pytest.approx([1 / 2, (1 / 3) / 2, 0])
    assert metrics.recall(hits, n_rel).tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert metrics.hit_rate(hits).tolist() == [1.0, 1.0, 0.0]


def test_k_larger_than_candidate_list():
    # only 3 candidates exist but K = 5; 4 relevant items, 2 found
    hits = _hits([True, True, False])
    n_rel = _n(4)
    idcg = sum(1 / math.log2(r + 1) for r in (1, 2, 3))  # min(n_relevant, K') = 3 terms
    assert metrics.ndcg(hits, n_rel).item() == pytest.approx((1 + 1 / math.log2(3)) / idcg)
    assert metrics.precision(hits, k=5).item() == pytest.approx(2 / 5)
    assert metrics.precision(hits).item() == pytest.approx(2 / 3)
    assert metrics.recall(hits, n_rel).item() == pytest.approx(2 / 4)
    assert metrics.average_precision(hits, n_rel).item() == pytest.approx((1 + 1) / 3)


def test_rmse_and_mae_by_hand():
    pred = torch.tensor([3.0, 4.5, 1.0])
    target = torch.tensor([4.0, 4.0, 1.0])
    # errors -1, 0.5, 0
    assert metrics.rmse(pred, target) == pytest.approx(math.sqrt((1 + 0.25 + 0) / 3))
    assert metrics.mae(pred, target) == pytest.approx((1 + 0.5 + 0) / 3)
    assert isinstance(metrics.rmse(pred, target), float)
