"""``lazy-adam``: Adam on the rows a batch looked up, plain Adam elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepmf.data import Interactions
from deepmf.optim import LazyAdam
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
    task = RatingTask(log, log, batch_size=64, device=cpu, reg=0.05, clip=(1, 5)) \
        if kind == "rating" else RankingTask(log.implicit(), None, batch_size=64, device=cpu,
                                             num_neg=2)
    history = fit(model, task, TrainConfig(epochs=4, lr=0.01, patience=0,
                                           optimizer="lazy-adam"))
    assert table.sparse
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
