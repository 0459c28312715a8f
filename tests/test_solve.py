"""The batched row solve: each row's system checked against a direct dense solve."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from deepmf.solve import RowIndex, solve_rows
from deepmf.solve import direct as solve


def _index(dense: np.ndarray) -> RowIndex:
    return RowIndex.from_csr(sp.csr_matrix(dense), dtype=torch.float64)


def test_one_row_by_hand():
    # Row 0 saw columns 0 and 2 with weights 2 and 1 and targets 1 and 3; F is 3 x 2.
    f = torch.tensor([[1.0, 0.0], [5.0, 5.0], [1.0, 1.0]], dtype=torch.float64)
    index = _index(np.array([[2.0, 0.0, 1.0]]))
    targets = torch.tensor([1.0, 3.0], dtype=torch.float64)
    x = solve_rows(index, f, weights=index.values, targets=targets, ridge=0.5)
    # A = 2 [1,0][1,0]^T + 1 [1,1][1,1]^T + 0.5 I = [[3.5, 1], [1, 1.5]]
    # b = 1 [1,0] + 3 [1,1] = [4, 3]
    expected = np.linalg.solve([[3.5, 1.0], [1.0, 1.5]], [4.0, 3.0])
    np.testing.assert_allclose(x[0].numpy(), expected, rtol=1e-12)


@pytest.fixture(params=["products", "padded"])
def gram_path(request, monkeypatch):
    """Run a test with each way of forming the Gram matrices (small d uses products)."""
    if request.param == "padded":
        monkeypatch.setattr(solve, "PRODUCT_DIM", 0)
    return request.param


@pytest.mark.parametrize("block", [1 << 22, 7])  # one chunk per length group, or many
def test_every_row_matches_a_dense_solve(block, gram_path):
    rng = np.random.default_rng(0)
    dense = (rng.random((40, 30)) < rng.random((40, 1))) * rng.integers(1, 6, (40, 30))
    dense[3] = 0  # a row without entries
    index = _index(dense.astype(float))
    f = torch.from_numpy(rng.normal(size=(30, 4)))
    shared = torch.from_numpy(np.diag([0.5, 1.0, 1.5, 2.0]))
    ridge = torch.from_numpy(rng.random(40) + 0.1)
    prior = torch.from_numpy(rng.normal(size=(40, 4)))
    targets = index.values * 2 - 1
    x = solve_rows(index, f, weights=index.values, targets=targets, shared=shared,
                   ridge=ridge, prior=prior, block=block)
    fn = f.numpy()
    for r in range(40):
        cols = np.flatnonzero(dense[r])
        w, t = dense[r, cols], dense[r, cols] * 2 - 1
        a = shared.numpy() + (fn[cols].T * w) @ fn[cols] + ridge[r].item() * np.eye(4)
        b = fn[cols].T @ t + prior[r].numpy()
        np.testing.assert_allclose(x[r].numpy(), np.linalg.solve(a, b), rtol=1e-9, atol=1e-12)


def test_samples_have_the_posterior_mean_and_covariance():
    # One row drawn 20,000 times (as 20,000 identical rows): mean A^-1 b, covariance A^-1.
    f = torch.tensor([[1.0, 0.5], [0.0, 2.0]], dtype=torch.float64)
    dense = np.tile([1.0, 1.0], (20_000, 1))
    index = _index(dense)
    draws = solve_rows(index, f, targets=1.0, ridge=0.3,
                       generator=torch.Generator().manual_seed(0))
    a = f.numpy().T @ f.numpy() + 0.3 * np.eye(2)
    mean, cov = np.linalg.solve(a, f.numpy().T @ [1.0, 1.0]), np.linalg.inv(a)
    np.testing.assert_allclose(draws.mean(0).numpy(), mean, atol=0.02)
    np.testing.assert_allclose(np.cov(draws.numpy().T), cov, atol=0.02)


def test_same_generator_seed_same_draws():
    index = _index(np.eye(5))
    f = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    draw = lambda: solve_rows(index, f, ridge=1.0,  # noqa: E731
                              generator=torch.Generator().manual_seed(7))
    assert torch.equal(draw(), draw())


def test_a_singular_system_is_refused():
    with pytest.raises(ValueError, match="positive definite"):
        solve_rows(_index(np.zeros((2, 3))), torch.ones(3, 2, dtype=torch.float64))


def test_transpose_swaps_the_sides():
    dense = np.array([[0.0, 2.0, 0.0], [3.0, 0.0, 4.0]])
    t = _index(dense).transpose()
    back = sp.csr_matrix((t.values.numpy(), t.indices.numpy(), t.indptr.numpy()), shape=(3, 2))
    np.testing.assert_array_equal(back.toarray(), dense.T)


def _system(seed: int = 0):
    rng = np.random.default_rng(seed)
    dense = (rng.random((40, 30)) < rng.random((40, 1))) * rng.integers(1, 6, (40, 30))
    dense[3] = 0  # a row without entries
    index = _index(dense.astype(float))
    options = dict(weights=index.values, targets=index.values * 2 - 1,
                   shared=torch.from_numpy(np.diag([0.5, 1.0, 1.5, 2.0])),
                   ridge=torch.from_numpy(rng.random(40) + 0.1),
                   prior=torch.from_numpy(rng.normal(size=(40, 4))))
    return index, torch.from_numpy(rng.normal(size=(30, 4))), options


def test_cg_with_d_steps_is_the_exact_solve():
    index, f, options = _system()
    exact = solve_rows(index, f, **options)
    cg = solve_rows(index, f, method="cg", cg_steps=4, **options)  # d = 4
    np.testing.assert_allclose(cg.numpy(), exact.numpy(), rtol=1e-9, atol=1e-10)


def test_cg_error_shrinks_with_each_step_and_stays_at_a_solved_start():
    index, f, options = _system(1)
    exact = solve_rows(index, f, **options)
    start = torch.from_numpy(np.random.default_rng(2).normal(size=(40, 4)))
    errors = [float((solve_rows(index, f, method="cg", cg_steps=k, x0=start, **options)
                     - exact).norm()) for k in range(4)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.1 * errors[0], errors
    warm = solve_rows(index, f, method="cg", cg_steps=2, x0=exact, **options)
    np.testing.assert_allclose(warm.numpy(), exact.numpy(), rtol=1e-9, atol=1e-10)


def test_cg_arguments_are_checked():
    index, f, options = _system()
    with pytest.raises(ValueError, match="generator"):
        solve_rows(index, f, method="cg", generator=torch.Generator(), **options)
    with pytest.raises(ValueError, match="x0"):
        solve_rows(index, f, method="cg", x0=torch.zeros(3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="cg_steps"):
        solve_rows(index, f, method="cg", cg_steps=-1)
    with pytest.raises(ValueError, match="method"):
        solve_rows(index, f, method="lu")


def test_both_gram_paths_draw_the_same_samples(monkeypatch):
    index, f, options = _system(3)
    draw = lambda: solve_rows(index, f, generator=torch.Generator().manual_seed(5),  # noqa
                              block=50, **options)
    products = draw()
    monkeypatch.setattr(solve, "PRODUCT_DIM", 0)
    np.testing.assert_allclose(draw().numpy(), products.numpy(), rtol=1e-9, atol=1e-10)
