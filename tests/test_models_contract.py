"""The scoring contract every registered model keeps (implicit's mixin, lkpy's ScorerTests)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepmf.checkpoint import load_checkpoint, save_checkpoint
from deepmf.data import Interactions
from deepmf.evaluate import evaluate_full
from deepmf.models import EXPLICIT_MODELS, MODELS
from deepmf.tasks import RankingTask
from deepmf.train import TrainConfig, fit
from tests.helpers import build, checkerboard


@pytest.fixture(scope="module")
def log() -> Interactions:
    rng = np.random.default_rng(0)
    n_users, n_items, n = 30, 40, 400
    return Interactions(
        rng.integers(0, n_users, n), rng.integers(0, n_items, n),
        rng.integers(1, 6, n).astype(np.float32), n_users=n_users, n_items=n_items,
    )


def fresh(name: str, log: Interactions):
    torch.manual_seed(0)
    model = build(name, log, dim=4, layers=(16, 8, 4), user_layers=(8, 4),
                  item_layers=(8, 4)).eval()
    with torch.no_grad():  # move biases and heads off their zero start, so terms matter
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("name", list(MODELS))
def test_forward_shape_and_finite(name, log):
    model = fresh(name, log)
    scores = model(torch.tensor([0, 5, 29]), torch.tensor([1, 39, 0]))
    assert scores.shape == (3,)
    assert torch.isfinite(scores).all()


@pytest.mark.parametrize("name", list(MODELS))
def test_score_all_agrees_with_forward(name, log):
    model = fresh(name, log)
    users = torch.tensor([0, 7, 29])
    with torch.no_grad():
        full = model.score_all(users)
        pairs = model(users.repeat_interleave(log.n_items),
                      torch.arange(log.n_items).repeat(len(users))).view(3, -1)
    assert full.shape == (3, log.n_items)
    torch.testing.assert_close(full, pairs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(MODELS))
def test_batch_equals_single(name, log):
    model = fresh(name, log)
    users = torch.tensor([3, 11, 12])
    with torch.no_grad():
        batch = model.score_all(users)
        single = torch.cat([model.score_all(users[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, single, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(MODELS))
def test_scorer_reuses_item_work_and_matches_score_all(name, log):
    model = fresh(name, log)
    with torch.no_grad():
        score = model.scorer()
        parts = torch.cat([score(torch.tensor([0, 1])), score(torch.tensor([2, 29]))])
        torch.testing.assert_close(parts, model.score_all(torch.tensor([0, 1, 2, 29])),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(MODELS))
def test_scorer_scores_a_subset_of_the_items(name, log):
    """``score(users, items)`` is ``score(users)[:, items]``, whether the model scores the
    subset for less (``scores_subsets``) or slices it from all of them."""
    model = fresh(name, log)
    users, items = torch.tensor([0, 7, 29]), torch.tensor([39, 3, 0, 17])
    with torch.no_grad():
        score = model.scorer()
        torch.testing.assert_close(score(users, items), score(users)[:, items],
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(MODELS))
def test_pair_scorer_matches_forward(name, log):
    """``pair_scorer()`` (the item side computed once per evaluation) scores pairs as
    ``forward`` does, repeated users and items included."""
    model = fresh(name, log)
    users, items = torch.tensor([0, 7, 7, 29, 0]), torch.tensor([39, 3, 0, 39, 39])
    with torch.no_grad():
        torch.testing.assert_close(model.pair_scorer()(users, items), model(users, items),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(MODELS))
def test_checkpoint_round_trip_gives_identical_scores(name, log, tmp_path):
    model = fresh(name, log)
    save_checkpoint(tmp_path, name, model, log)
    loaded_name, loaded, seen = load_checkpoint(tmp_path)
    users = torch.arange(log.n_users)
    with torch.no_grad():
        assert torch.equal(model.score_all(users), loaded.score_all(users))
    assert loaded_name == name
    assert np.array_equal(seen.users, log.users) and np.array_equal(seen.items, log.items)


RANKERS = [n for n in MODELS if n not in ("itempop", "biased-mf", "deepmf", "als", "bayes-mf")]


@pytest.mark.parametrize("name", RANKERS)
def test_checkerboard_withheld_item_ranks_first(name):
    """Each user's only unseen in-block item must come first in full ranking."""
    train, test = checkerboard(n_blocks=4, block=12)
    torch.manual_seed(0)
    model = build(name, train, dim=8, user_layers=(32, 8), item_layers=(32, 8))
    task = RankingTask(train, None, batch_size=256, device=torch.device("cpu"), num_neg=4)
    fit(model, task, TrainConfig(epochs=20, lr=0.02, patience=0))
    metrics = evaluate_full(model, train, test, k=1)
    assert metrics["hr@1"] == 1.0


def test_itempop_ranks_by_training_count(log):
    model = build("itempop", log)
    order = torch.argsort(model.score_all(torch.tensor([0]))[0], descending=True)
    counts = np.bincount(log.items, minlength=log.n_items)
    assert counts[order[0]] == counts.max()
    assert not any(p.requires_grad for p in model.parameters())


def test_explicit_models_listed_exist():
    assert set(EXPLICIT_MODELS) <= set(MODELS)


@pytest.mark.parametrize("name", list(MODELS))
def test_scores_and_penalty_agree_with_forward_and_penalty(name, log):
    model = fresh(name, log)
    users, items = torch.tensor([0, 3, 3, 29]), torch.tensor([1, 2, 39, 0])
    with torch.no_grad():
        scores, penalty = model.scores_and_penalty(users, items)
        torch.testing.assert_close(scores, model(users, items))
        torch.testing.assert_close(penalty, model.penalty(users, items))


def test_biased_product_by_hand():
    """``alpha · L Rᵀ + column biases + row biases``, on two users and three items."""
    from deepmf.models.layers import biased_product

    left = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    right = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    got = biased_product(left, right, torch.tensor([10.0, 20.0]), torch.tensor([1.0, 2.0, 3.0]),
                         alpha=0.5)
    want = torch.tensor([[0.5 + 10 + 1, 1.0 + 10 + 2, 3.0 + 10 + 3],
                         [0.0 + 20 + 1, -0.5 + 20 + 2, -1.0 + 20 + 3]])
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(biased_product(left, right), left @ right.T)
