"""``lazy-adam``: Adam on the rows a batch looked up, plain Adam elsewhere."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from deepmf.data import Interactions
from deepmf.experiment.config import RunConfig
from deepmf.experiment.recipes import lazy_tables_note
from deepmf.optim import DENSE_SHARE, LazyAdam, covered, lookup_shares
from deepmf.tasks import RankingTask, RatingTask
from deepmf.train import TrainConfig, fit, make_optimizer
from tests.test_fused import model_for, ratings


def test_dense_gradients_get_adams_step():
    torch.manual_seed(0)
    ours, theirs = torch.nn.Parameter(torch.randn(20, 3)), None
    theirs = torch.nn.Parameter(ours.detach().clone())
    lazy = LazyAdam([ours], lr=0.01, weight_decay=0.01)
    adam = torch.optim.Adam([theirs], lr=0.01, weight_decay=0.01)
    for _ in range(5):
        grad = torch.randn(20, 3)
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        lazy.step()
        adam.step()
    torch.testing.assert_close(ours, theirs)


def test_sparse_rows_by_hand_and_untouched_rows_unmoved():
    """Two steps by hand: row 1 twice (its duplicate ids summed), row 2 once, row 0 never."""
    table = torch.nn.Parameter(torch.ones(3, 2))
    lazy = LazyAdam([table], lr=0.1, betas=(0.5, 0.75), eps=0.0)
    table.grad = torch.sparse_coo_tensor(torch.tensor([[1, 1]]), torch.tensor([[1.0, 2.0],
                                                                              [1.0, 2.0]]),
                                         (3, 2), check_invariants=False)
    lazy.step()
    # t = 1: m = 0.5 g, v = 0.25 g², m̂ = g, v̂ = g² -> step lr · sign(g)
    assert torch.allclose(table[1], torch.tensor([0.9, 0.9]))
    table.grad = torch.sparse_coo_tensor(torch.tensor([[2]]), torch.tensor([[4.0, -4.0]]),
                                         (3, 2), check_invariants=False)
    lazy.step()
    # row 2 at the run's step t = 2 with zero moments: m = 0.5 g, v = 0.25 g²;
    # m̂ = 0.5 g / 0.75, v̂ = 0.25 g² / 0.4375 -> lr · (2/3) / sqrt(4/7) per unit sign
    expected = 0.1 * (0.5 / 0.75) / (0.25 / 0.4375) ** 0.5
    assert torch.allclose(table[2], torch.tensor([1 - expected, 1 + expected]))
    assert torch.equal(table[0], torch.ones(2))  # never looked up: not moved
    assert torch.allclose(table[1], torch.tensor([0.9, 0.9]))  # not in step 2


def looked_up_rows(log: Interactions) -> tuple[set[int], set[int]]:
    return set(log.users.tolist()), set(log.items.tolist())


@pytest.mark.parametrize("name,kind", [("biased-mf", "rating"), ("gmf", "ranking"),
                                       ("mlp", "ranking")])
def test_training_moves_only_rows_it_saw(name, kind):
    """Fused (biased-mf, gmf) and autograd (mlp) steps give row gradients; rows of users
    and items absent from training stay at their initial values, and training learns."""
    log = ratings(n_users=50, n_items=40)
    seen = log.users < 40  # users 40..49 never appear
    log = Interactions(log.users[seen], log.items[seen], log.ratings[seen], n_users=50,
                       n_items=40)
    model = model_for(name, log)
    table = model.user_factors if name == "biased-mf" else model.user_embedding
    before = table.weight.detach().clone()
    cpu = torch.device("cpu")
    # batches of 8: each looks up few of the 50 users' and 40 items' rows (lazy-adam keeps
    # a table a batch mostly covers dense)
    task = RatingTask(log, log, batch_size=8, device=cpu, reg=0.05, clip=(1, 5)) \
        if kind == "rating" else RankingTask(log.implicit(), None, batch_size=8, device=cpu,
                                             num_neg=2)
    history = fit(model, task, TrainConfig(epochs=4, lr=0.01, patience=0,
                                           optimizer="lazy-adam"))
    assert table.sparse and task.lookup_shares()[0] <= DENSE_SHARE
    assert torch.equal(table.weight[40:], before[40:])
    assert not torch.equal(table.weight[:40], before[:40])
    assert history[-1]["loss"] < history[0]["loss"]


def test_make_optimizer_switches_only_for_lazy_adam():
    log = ratings()
    model = model_for("mf", log)
    make_optimizer(model, TrainConfig(epochs=1, lr=0.01))
    assert not model.user_factors.sparse
    make_optimizer(model, TrainConfig(epochs=1, lr=0.01, optimizer="lazy-adam"))
    assert model.user_factors.sparse and model.item_factors.sparse
    assert np.isfinite(model.user_factors.weight.detach().numpy()).all()


def test_covered_counts_the_rows_a_batch_looks_up():
    assert covered(0, 30, 100) == 0.3 and covered(0, 300, 100) == 1.0
    # 100 uniform draws over 100 rows miss each row with probability (1 - 1/100)^100
    assert covered(100, 0, 100) == pytest.approx(1 - np.exp(-1), abs=1e-12)
    rng = np.random.default_rng(0)
    drawn = [len(np.unique(rng.integers(0, 27_000, 14_560))) / 27_000 for _ in range(20)]
    assert covered(14_560, 0, 27_000) == pytest.approx(np.mean(drawn), abs=0.003)


def test_lazy_adam_keeps_a_table_that_batches_mostly_cover_dense():
    """ml-20m's shape at biased-mf's recipe (batch 16,384, 8 negatives): a batch looks up
    about 2.6 % of the 138,000 users and 48 % of the 27,000 items, so the item tables stay
    dense and their update is Adam's, bit for bit."""
    users, items = 138_000, 27_000
    rng = np.random.default_rng(0)
    log = Interactions(rng.integers(0, users, 20_000), rng.integers(0, items, 20_000), None,
                       n_users=users, n_items=items)
    task = RankingTask(log, None, batch_size=16_384, device=torch.device("cpu"), num_neg=8)
    shares = task.lookup_shares()
    assert shares == pytest.approx((0.026, 0.484), abs=0.001)
    lazy, adam = model_for("biased-mf", log), model_for("biased-mf", log)
    adam.load_state_dict(lazy.state_dict())
    config = TrainConfig(epochs=1, lr=0.01)
    steps = [make_optimizer(lazy, replace(config, optimizer="lazy-adam"), shares),
             make_optimizer(adam, config)]
    assert lazy.user_factors.sparse and lazy.user_bias.sparse
    assert not lazy.item_factors.sparse and not lazy.item_bias.sparse
    batches = list(task.batches(torch.Generator().manual_seed(0)))[:2]
    for model, optimizer in zip((lazy, adam), steps):
        for batch in batches:
            model.zero_grad(set_to_none=True)
            task.loss(model, batch).backward()
            optimizer.step()
    assert torch.equal(lazy.item_factors.weight, adam.item_factors.weight)
    # a user of the first batch only: Adam moves her row again by its moments, lazy-adam not
    assert not torch.equal(lazy.user_factors.weight, adam.user_factors.weight)


def test_a_sparse_lookup_gives_each_distinct_row_its_summed_gradient():
    """A sparse table's gradient: one row per distinct id (sorted), the sum of its lookups'
    gradients, equal to the dense table's; a step from it equals a step from the same
    gradient coalesced by torch."""
    from deepmf.models.layers import embedding

    torch.manual_seed(0)
    dense, sparse = embedding(6, 3, 0.1), embedding(6, 3, 0.1)
    sparse.load_state_dict(dense.state_dict())
    sparse.sparse = True
    ids, upstream = torch.tensor([4, 1, 4, 0, 4]), torch.randn(5, 3)
    (dense(ids) * upstream).sum().backward()
    (sparse(ids) * upstream).sum().backward()
    grad = sparse.weight.grad
    assert grad._indices().tolist() == [[0, 1, 4]]
    torch.testing.assert_close(grad.to_dense(), dense.weight.grad)
    torch.testing.assert_close(grad._values()[2], upstream[[0, 2, 4]].sum(0))
    twin = torch.nn.Parameter(sparse.weight.detach().clone())
    twin.grad = torch.sparse_coo_tensor(ids[None], upstream, (6, 3),
                                        check_invariants=True).coalesce()
    LazyAdam([sparse.weight], lr=0.1).step()
    LazyAdam([twin], lr=0.1).step()
    torch.testing.assert_close(sparse.weight.detach(), twin.detach())


def test_the_run_says_which_tables_keep_dense_adam():
    """ml-20m's shape with biased-mf's recipe: 2 x 1,820 anchors and positives of 138,000
    users (2.6 %), and 1,820 positives plus 14,560 uniform negatives of 27,000 items
    (1,820 + 27,000 (1 - e^-0.539) = 13,076 rows, 48 %): the items alone stay dense."""
    big = RunConfig(model="biased-mf", task="implicit", optimizer="lazy-adam",
                    batch_size=16_384, num_neg=8, loss="bce")
    note = lazy_tables_note(big, 138_000, 27_000)
    assert note.startswith("the 27,000 items (a batch looks up about 48%) keep dense Adam")
    assert note.endswith("the users update their looked-up rows")
    assert lookup_shares(138_000, 27_000, 16_384, 8, anchors=True)[0] == \
        pytest.approx(3_640 / 138_000)
    assert lazy_tables_note(replace(big, optimizer="adam"), 138_000, 27_000) is None
    assert lazy_tables_note(replace(big, batch_size=1_024), 138_000, 270_000) is None  # sparse
    rating = RunConfig(model="biased-mf", task="explicit", optimizer="lazy-adam",
                       batch_size=1_024, num_neg=8)  # rating pairs: no negatives
    assert lookup_shares(943, 1_682, 1_024)[0] == 1.0
    assert "it trains as adam" in lazy_tables_note(rating, 943, 1_682)


def test_a_lazy_adam_run_on_small_tables_says_it_trains_as_adam(tmp_path, tiny_data):
    from deepmf.cli import main

    out = tmp_path / "run"
    assert main(["train", "--model", "gmf", "--dataset", "ml-100k", "--task", "implicit",
                 "--optimizer", "lazy-adam", "--epochs", "1", "--quiet", "--data-dir",
                 str(tiny_data), "--out", str(out)]) == 0
    note = next(line for line in (out / "config.toml").read_text().splitlines()
                if line.startswith("# lazy_adam:"))
    assert "the 200 users" in note and "the 100 items" in note and "trains as adam" in note
