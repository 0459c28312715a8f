"""Sampled (NCF) and full-ranking evaluation against hand-computed 3-user examples."""

import math

import numpy as np
import pytest
import torch

from deepmf.data import Interactions
from deepmf.errors import DataError
from deepmf.evaluate import evaluate_full, evaluate_ratings, evaluate_sampled
from deepmf.models.base import users_per_batch


class TableModel(torch.nn.Module):
    """Stand-in model: a fixed ``[n_users, n_items]`` score table; records its mode."""

    def __init__(self, table):
        super().__init__()
        self.register_buffer("table", torch.as_tensor(np.asarray(table), dtype=torch.float32))
        self.modes = []

    def forward(self, users, items):
        self.modes.append(self.training)
        assert not torch.is_grad_enabled()
        return self.table[users, items]

    def score_all(self, users):
        self.modes.append(self.training)
        return self.table[users]


def _log(users, items, n_users, n_items, ratings=None):
    return Interactions(
        np.array(users), np.array(items), ratings=ratings, n_users=n_users, n_items=n_items
    )


SAMPLED_TABLE = [
    [0.9, 0.1, 0.5, 0.3, 0.7, 0.2],
    [0.8, 0.6, 0.5, 0.1, 0.2, 0.4],
    [0.3, 0.3, 0.3, 0.3, 0.9, 0.3],
]
SAMPLED_TEST = _log([0, 1, 2], [0, 2, 0], 3, 6)
SAMPLED_NEGATIVES = np.array([
    [1, 2, 3, 4],  # user 0: held-out 0.9 beats all -> rank 0
    [0, 2, 3, -1],  # user 1: 2 is the held-out item and -1 padding: both dropped -> rank 1
    [1, 2, 4, 5],  # user 2: ties (0.3) rank above the held-out item -> rank 4
])


def test_sampled_three_users_by_hand():
    result = evaluate_sampled(TableModel(SAMPLED_TABLE), SAMPLED_TEST, SAMPLED_NEGATIVES, k=2)
    assert set(result) == {"hr@2", "ndcg@2", "mrr", "map@2"}
    assert result["hr@2"] == pytest.approx(2 / 3)
    assert result["ndcg@2"] == pytest.approx((1 + 1 / math.log2(3) + 0) / 3)
    assert result["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 5) / 3)  # not truncated at K
    assert result["map@2"] == pytest.approx((1 + 1 / 2 + 0) / 3)


def test_sampled_ties_rank_above_the_positive():
    # every candidate scores the same: the held-out item ranks last among 3 negatives
    model = TableModel(np.zeros((1, 5)))
    result = evaluate_sampled(model, _log([0], [4], 1, 5), np.array([[0, 1, 2]]), k=3)
    assert result["hr@3"] == 0.0
    assert result["mrr"] == pytest.approx(1 / 4)


def test_sampled_negative_equal_to_positive_is_dropped():
    # scores: held-out item 2 scores 0.5, item 0 scores 0.9; the duplicate 2 must not count
    model = TableModel([[0.9, 0.1, 0.5]])
    test = _log([0], [2], 1, 3)
    with_dup = evaluate_sampled(model, test, np.array([[0, 2, 2, 1]]), k=2)
    without = evaluate_sampled(model, test, np.array([[0, 1, -1, -1]]), k=2)
    assert with_dup == without
    assert with_dup["hr@2"] == 1.0 and with_dup["mrr"] == pytest.approx(1 / 2)


FULL_TABLE = [
    [0.9, 0.1, 0.5, 0.3, 0.7, 0.2],
    [0.8, 0.6, 0.5, 0.1, 0.2, 0.4],
    [0.1, 0.2, 0.3, 0.4, 0.9, 0.35],
    [0.1, 0.9, 0.3, 0.4, 0.5, 0.35],
]
# user 0: its train items 0 and 4 score highest and must be masked
# user 1: test item 0 is also a train item, so relevant = {1, 5}
# user 2: misses; user 3: its only test item is a train item -> skipped
FULL_TRAIN = _log([0, 0, 1, 2, 3], [0, 4, 0, 4, 1], 4, 6)
FULL_TEST = _log([0, 1, 1, 1, 2, 3], [2, 1, 5, 0, 0, 1], 4, 6)


def test_full_three_users_by_hand():
    result = evaluate_full(TableModel(FULL_TABLE), FULL_TRAIN, FULL_TEST, k=2)
    # top-2 lists after masking: u0 [2, 3] (hit at 1), u1 [1, 2] (hit at 1, 2 relevant),
    # u2 [3, 5] (no hit)
    assert result["hr@2"] == pytest.approx(2 / 3)
    assert result["ndcg@2"] == pytest.approx((1 + 1 / (1 + 1 / math.log2(3)) + 0) / 3)
    assert result["mrr"] == pytest.approx(2 / 3)
    assert result["map@2"] == pytest.approx((1 + 1 / 2 + 0) / 3)
    assert result["recall@2"] == pytest.approx((1 + 1 / 2 + 0) / 3)
    assert result["precision@2"] == pytest.approx((1 / 2 + 1 / 2 + 0) / 3)


def test_full_masks_train_items():
    # the model scores the user's train items highest; the test item comes next
    table = [[5.0, 4.0, 3.0, 0.0, 1.0]]
    train = _log([0, 0, 0], [0, 1, 2], 1, 5)
    test = _log([0], [4], 1, 5)
    result = evaluate_full(TableModel(table), train, test, k=1)
    assert result["hr@1"] == 1.0 and result["precision@1"] == 1.0
    # k larger than the number of items: lists are shorter, precision still divides by k
    result = evaluate_full(TableModel(table), train, test, k=10)
    assert result["hr@10"] == 1.0 and result["precision@10"] == pytest.approx(1 / 10)


def test_full_with_no_relevant_user_gives_nan():
    result = evaluate_full(TableModel(FULL_TABLE), FULL_TRAIN, _log([3], [1], 4, 6), k=2)
    assert all(math.isnan(v) for v in result.values())


def _random_case(seed, n_users=37, n_items=23):
    rng = np.random.default_rng(seed)
    table = rng.integers(0, 4, size=(n_users, n_items)).astype(np.float32)  # many ties
    train = _log(rng.integers(0, n_users, 200), rng.integers(0, n_items, 200), n_users, n_items)
    test = _log(np.arange(n_users), rng.integers(0, n_items, n_users), n_users, n_items)
    negatives = rng.integers(-1, n_items, size=(n_users, 9))
    return TableModel(table), train, test, negatives


@pytest.mark.parametrize("seed", [0, 1])
def test_results_do_not_depend_on_batch_size(seed):
    model, train, test, negatives = _random_case(seed)
    full = [evaluate_full(model, train, test, k=5, batch_users=b) for b in (1, 2, 1000)]
    sampled = [evaluate_sampled(model, test, negatives, k=5, batch_size=b) for b in (1, 2, 1000)]
    assert full[0] == full[1] == full[2]
    assert sampled[0] == sampled[1] == sampled[2]


def test_default_batch_keeps_scores_within_the_limit(monkeypatch):
    """With many items the default batch holds fewer users (``SCORE_ELEMENTS`` scores at
    most), and the metrics are those of any batch size."""
    import deepmf.models.base as base

    model, train, test, _ = _random_case(2)
    sizes = []
    score_all = model.score_all
    model.score_all = lambda users: sizes.append(len(users)) or score_all(users)
    want = evaluate_full(model, train, test, k=5, batch_users=1000)
    monkeypatch.setattr(base, "SCORE_ELEMENTS", 5 * train.n_items + 1)
    sizes.clear()
    assert evaluate_full(model, train, test, k=5) == want
    assert max(sizes) == 5 < sum(sizes)


class ScreenedTable(TableModel):
    """A table that scores item subsets (``scores_subsets``), recording whose rows were
    scored in full."""

    scores_subsets = True

    def __init__(self, table):
        super().__init__(table)
        self.n_items = self.table.shape[1]
        self.ranked = []

    def scorer(self):
        def score(users, items=None):
            if items is None:
                self.ranked.extend(users.tolist())
                return self.table[users]
            return self.table[users][:, items]

        return score


# items 0-2 are the popular ones (trained on by users 3-5); k = 2, screen = 3
SCREEN_TABLE = [
    [0.9, 0.8, 0.1, 0.5, 0.0, 0.0],  # u0: two popular items above its test item 3 -> out
    [0.9, 0.8, 0.1, 0.5, 0.4, 0.0],  # u1: item 0 seen, only item 1 above -> ranked (hit 2)
    [0.5, 0.5, 0.1, 0.4999, 0.0, 0.0],  # u2: above by less than the margin -> ranked (miss)
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
]
SCREEN_TRAIN = _log([1, 3, 3, 3, 4, 4, 5], [0, 0, 1, 2, 0, 1, 0], 6, 6)
SCREEN_TEST = _log([0, 1, 2], [3, 3, 3], 6, 6)


def test_screen_rules_out_users_with_k_popular_items_above_by_hand():
    model = ScreenedTable(SCREEN_TABLE)
    result = evaluate_full(model, SCREEN_TRAIN, SCREEN_TEST, k=2, screen=3)
    assert sorted(model.ranked) == [1, 2]  # user 0 never ranked in full
    assert result == evaluate_full(TableModel(SCREEN_TABLE), SCREEN_TRAIN, SCREEN_TEST, k=2)
    # u0 misses, u1's item comes second (item 1, then 3), u2's after items 0 and 1
    assert result["hr@2"] == pytest.approx(1 / 3)
    assert result["ndcg@2"] == pytest.approx(1 / math.log2(3) / 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_screen_never_changes_the_metrics(seed):
    """Any screen size on tables full of ties gives the unscreened metrics."""
    table = _random_case(seed)[0].table
    _, train, test, _ = _random_case(seed)
    want = evaluate_full(TableModel(table), train, test, k=3)
    for screen in (1, 4, 12, 23):
        model = ScreenedTable(table)
        assert evaluate_full(model, train, test, k=3, screen=screen) == want
        assert len(set(model.ranked)) < len(set(test.users.tolist())) or screen == 1


def test_screen_that_rules_out_too_few_users_stops_after_one_batch():
    """Scores that owe nothing to popularity (every relevant item on top) rule nobody out:
    the screen gives up after its first batch instead of scoring the head for everyone."""
    rng = np.random.default_rng(3)
    n_users, n_items = 3000, 160
    table = rng.random((n_users, n_items)).astype(np.float32)
    test = _log(np.arange(n_users), rng.integers(0, n_items, n_users), n_users, n_items)
    table[test.users, test.items] = 2.0
    train = _log(rng.integers(0, n_users, 5000), rng.integers(0, n_items, 5000), n_users,
                 n_items)
    model, subsets = ScreenedTable(table), []
    scorer = model.scorer
    model.scorer = lambda: (lambda users, items=None: (
        items is not None and subsets.append(len(users))) or scorer()(users, items))
    assert evaluate_full(model, train, test, k=5, screen=10) == evaluate_full(
        TableModel(table), train, test, k=5)
    assert subsets == [users_per_batch(10)] and 1024 < n_users


def test_screen_on_a_trained_model_of_real_data(ml100k):
    """On ml-100k (leave-one-out), a trained NeuMF is screened by default (1,682 items: the
    105 most popular first): the same metrics, most users never ranked in full."""
    from deepmf.models import build_model
    from deepmf.models.base import Recommender
    from deepmf.split import make_splits
    from deepmf.tasks import RankingTask
    from deepmf.train import TrainConfig, fit

    split = make_splits(ml100k, "loo")[0]
    torch.manual_seed(0)
    model = build_model("neumf", split.train)
    task = RankingTask(split.train, None, batch_size=1024, device=torch.device("cpu"), num_neg=4)
    fit(model, task, TrainConfig(epochs=2, lr=0.005, patience=0))
    unscreened = evaluate_full(model, split.train, split.test, screen=0)
    ranked = []
    scorer = model.scorer
    model.scorer = lambda: (lambda users, items=None: (
        items is None and ranked.append(len(users))) or scorer()(users, items))
    assert evaluate_full(model, split.train, split.test) == unscreened
    assert 0 < sum(ranked) < 0.4 * len(split.test)
    assert unscreened["hr@10"] > evaluate_full(build_model("itempop", split.train),
                                               split.train, split.test)["hr@10"] - 0.02
    assert isinstance(model, Recommender) and model.scores_subsets


def test_default_sampled_batch_keeps_pairs_within_the_limit(monkeypatch):
    """The default batch scores at most ``SAMPLED_PAIRS`` pairs (rows × candidates), with
    the metrics of any batch size."""
    import deepmf.evaluate as evaluate

    model, _, test, negatives = _random_case(4)
    want = evaluate_sampled(model, test, negatives, k=5, batch_size=1000)
    sizes = []
    forward = model.forward
    model.forward = lambda users, items: sizes.append(len(users)) or forward(users, items)
    monkeypatch.setattr(evaluate, "SAMPLED_PAIRS", 3 * (1 + negatives.shape[1]) + 1)
    assert evaluate_sampled(model, test, negatives, k=5) == want
    assert max(sizes) == 3 * (1 + negatives.shape[1]) and sum(sizes) == negatives.size + len(test)


def test_sampled_matches_a_per_row_reference():
    model, _, test, negatives = _random_case(3)
    table = model.table.numpy()
    ranks = []
    for user, item, negs in zip(test.users, test.items, negatives):
        negs = [n for n in negs if n >= 0 and n != item]
        ranks.append(sum(table[user, n] >= table[user, item] for n in negs))
    ranks = np.array(ranks)
    result = evaluate_sampled(model, test, negatives, k=5)
    assert result["hr@5"] == pytest.approx(np.mean(ranks < 5))
    assert result["ndcg@5"] == pytest.approx(np.mean((ranks < 5) / np.log2(ranks + 2)))
    assert result["mrr"] == pytest.approx(np.mean(1 / (ranks + 1)))


def test_evaluation_restores_training_mode():
    model = TableModel(FULL_TABLE)
    model.train()
    evaluate_sampled(model, FULL_TEST, np.zeros((len(FULL_TEST), 2), dtype=np.int64), k=2)
    assert model.training
    assert model.modes and not any(model.modes)
    model.eval()
    evaluate_full(model, FULL_TRAIN, FULL_TEST, k=2)
    assert not model.training


def test_explicit_clipping():
    model = TableModel([[6.0, 0.0, 3.0]])
    test = _log([0, 0, 0], [0, 1, 2], 1, 3, ratings=np.array([5.0, 1.0, 3.0]))
    # clipped predictions 5, 1, 3 -> errors 0, 0, 0 ; unclipped errors 1, -1, 0
    clipped = evaluate_ratings(model, test, clip=(1.0, 5.0))
    assert clipped == {"rmse": pytest.approx(0.0), "mae": pytest.approx(0.0)}
    raw = evaluate_ratings(model, test, clip=None, batch_size=2)
    assert raw["rmse"] == pytest.approx(math.sqrt(2 / 3))
    assert raw["mae"] == pytest.approx(2 / 3)


def test_explicit_partial_clipping():
    model = TableModel([[6.0, 2.0]])
    test = _log([0, 0], [0, 1], 1, 2, ratings=np.array([4.0, 1.0]))
    # clipped 5 vs 4 (error 1), 2 vs 1 (error 1)
    assert evaluate_ratings(model, test, clip=(1.0, 5.0))["rmse"] == pytest.approx(1.0)


def test_evaluator_layouts_and_errors():
    model = TableModel(SAMPLED_TABLE)
    train = _log([0], [5], 3, 6)
    result = evaluate_sampled(model, SAMPLED_TEST, SAMPLED_NEGATIVES, k=2)
    assert set(result) == {"hr@2", "ndcg@2", "mrr", "map@2"}
    full = evaluate_full(model, train, SAMPLED_TEST, k=2)
    assert set(full) == {"hr@2", "ndcg@2", "mrr", "map@2", "recall@2", "precision@2"}
    with pytest.raises(DataError, match="ratings"):
        evaluate_ratings(model, SAMPLED_TEST)
    with pytest.raises(DataError, match="shape"):
        evaluate_sampled(model, SAMPLED_TEST, SAMPLED_NEGATIVES[:2])
