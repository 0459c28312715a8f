"""BayesMF: its Gibbs conditionals against closed forms, its posterior mean and its contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from deepmf.data import Interactions
from deepmf.models import bayes_sweep
from deepmf.models.bayes import BayesMF
from deepmf.models.bayes_gibbs import (
    SECONDS_PER_DAY,
    Field,
    RowLayout,
    Spectral,
    implicit_design,
    label_design,
)
from deepmf.solve import RowIndex, solve_rows

DAY0 = 10_000  # days since 1970: the planted logs' first day


def planted(n_users=60, n_items=40, rank=2, noise=0.1, density=0.7, seed=0):
    """``3 + p_u·q_i + noise`` on a random ``density`` of pairs over ten days; 20% held out."""
    rng = np.random.default_rng(seed)
    p, q = rng.normal(size=(n_users, rank)), rng.normal(size=(n_items, rank))
    users, items = np.nonzero(rng.random((n_users, n_items)) < density)
    ratings = 3 + (p[users] * q[items]).sum(1) + rng.normal(scale=noise, size=len(users))
    times = (DAY0 + rng.integers(0, 10, len(users))) * SECONDS_PER_DAY + 3600
    log = Interactions(users, items, ratings.astype(np.float32), times, n_users, n_items)
    held = rng.random(len(log)) < 0.2
    return log.take(~held), log.take(held)


def model_for(train, **options) -> BayesMF:
    settings = dict(dim=2, samples=30, burn_in=20, days=True,
                    global_mean=float(train.ratings.mean()), interactions=train)
    return BayesMF(train.n_users, train.n_items, **(settings | options))


def run(model, train, sweeps=None, seed=0) -> BayesMF:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(model.burn_in + model.samples if sweeps is None else sweeps):
        model.sweep(train, generator)
    return model


def predict(model, log) -> torch.Tensor:
    return model(torch.tensor(log.users), torch.tensor(log.items), torch.tensor(log.timestamps))


def rmse(model, log) -> float:
    return float((predict(model, log) - torch.tensor(log.ratings)).square().mean().sqrt())


@pytest.mark.parametrize("features", [
    dict(implicit_items=False, implicit_users=False, days=False, user_noise=False),
    dict(),  # implicit sets, days and per-user noise on
])
def test_recovers_a_planted_low_rank_matrix(features):
    train, test = planted()
    model = run(model_for(train, **features), train)
    assert rmse(model, test) < 0.2  # noise 0.1; the mean rating alone is off by ~1.4
    if not features:
        return
    assert 0.07 < float(model.noise_precision) ** -0.5 < 0.15


def test_row_draws_match_a_hand_computed_posterior():
    # 20,000 copies of one row whose ratings meet partners z1, z2 with targets t1, t2.
    z = torch.tensor([[1.0, 0.5], [0.0, 2.0]], dtype=torch.float64)
    t = torch.tensor([1.0, -0.5], dtype=torch.float64)
    n = 20_000
    rows = sp.csr_matrix((np.ones(2 * n), (np.repeat(np.arange(n), 2), np.arange(2 * n))))
    layout = RowLayout.of(RowIndex.from_csr(rows, dtype=torch.float64), 2)
    precision = torch.tensor([0.5, 2.0], dtype=torch.float64)
    prior = torch.tensor([0.3, -0.1], dtype=torch.float64)
    draws, means = layout.draw(z.repeat(n, 1), t.repeat(n), 1.5, precision, prior,
                               torch.Generator().manual_seed(0))
    # A = diag(0.5, 2) + 1.5 (z1 z1ᵀ + z2 z2ᵀ), b = prior + t1 z1 + t2 z2
    a = np.diag([0.5, 2.0]) + 1.5 * (np.outer([1, 0.5], [1, 0.5]) + np.outer([0, 2], [0, 2]))
    b = np.array([0.3, -0.1]) + 1.0 * np.array([1, 0.5]) - 0.5 * np.array([0, 2])
    np.testing.assert_allclose(means.numpy(), np.tile(np.linalg.solve(a, b), (n, 1)), rtol=1e-10)
    np.testing.assert_allclose(draws.mean(0).numpy(), np.linalg.solve(a, b), atol=0.01)
    np.testing.assert_allclose(np.cov(draws.numpy().T), np.linalg.inv(a), atol=0.01)


def test_row_means_equal_the_shared_solver():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 30, 400)
    ids[ids == 7] = 8  # row 7 has no ratings: prior only
    field = Field.of("user", ids, 30, 4, {}, torch.float64)
    partners = torch.from_numpy(rng.normal(size=(400, 4)))
    targets, precision = torch.from_numpy(rng.normal(size=400)), torch.tensor([1.0, 2, 3, 4.0])
    prior = torch.from_numpy(rng.normal(size=(30, 4)))
    _, means = field.rows.draw(partners, targets, 0.7, precision.double(), prior,
                               torch.Generator().manual_seed(0))
    index = RowIndex.from_csr(sp.csr_matrix((np.ones(400), (ids, np.arange(400)))),
                              dtype=torch.float64)
    expected = solve_rows(index, partners, weights=0.7, targets=targets[index.indices],
                          shared=torch.diag(precision).double(), prior=prior)
    torch.testing.assert_close(means, expected, rtol=1e-9, atol=1e-12)


def test_a_users_conditional_through_the_model():
    # 5,000 identical users rate items 0 and 1 (4 and 2 stars); one sweep of the user block
    # draws each from the same conditional, which the test writes out by hand.
    n = 5_000
    users, items = np.repeat(np.arange(n), 2), np.tile([0, 1], n)
    train = Interactions(users, items, np.tile([4.0, 2.0], n).astype(np.float32), n_users=n,
                         n_items=2)
    model = BayesMF(n, 2, dim=2, implicit_items=False, implicit_users=False, global_mean=3.0)
    model.model_args["prior_shape"] = 1.0
    with torch.no_grad():
        model.item_sample.copy_(torch.tensor([[1.0, 0.5, 0.2], [-0.5, 1.0, -0.1]]))
        model.hyper_mean[0] = torch.tensor([0.1, -0.2, 0.3])
        model.hyper_precision[0] = torch.tensor([2.0, 1.0, 4.0])
        model.noise_precision.fill_(1.5)
        model.user_noise_scale.fill_(0.8)
        model.w0.fill_(0.25)
        model.drawn.fill_(1)  # keep these values: no initial draw
        chain = bayes_sweep._chain(model, train, torch.Generator())
        bayes_sweep._draw_field(model, chain, chain.fields["user"],
                                torch.Generator().manual_seed(0))
    # rating n = 3 + 0.25 + b_i + [q_i, 1] · E_u + noise of precision 1.5 * 0.8
    z = np.array([[1.0, 0.5, 1.0], [-0.5, 1.0, 1.0]])
    residual = np.array([4.0, 2.0]) - (3.25 + np.array([0.2, -0.1]))
    a = np.diag([2.0, 1.0, 4.0]) + 1.2 * z.T @ z
    b = np.array([2.0, 1.0, 4.0]) * np.array([0.1, -0.2, 0.3]) + 1.2 * z.T @ residual
    draws = model.user_sample.double().numpy()
    np.testing.assert_allclose(draws.mean(0), np.linalg.solve(a, b), atol=0.01)
    np.testing.assert_allclose(np.cov(draws.T), np.linalg.inv(a), atol=0.01)


@pytest.mark.parametrize("shape", [(12, 5), (5, 12)])  # XᵀX decomposed directly / via XXᵀ
def test_block_draws_match_a_hand_computed_posterior(shape):
    rng = np.random.default_rng(2)
    x = sp.csr_matrix(rng.random(shape) * (rng.random(shape) < 0.6))
    n, k = shape
    copies = 50_000  # columns with the same precisions: independent draws of one posterior
    like = dict(dtype=torch.float64)
    target = torch.from_numpy(np.tile(rng.normal(size=(n, 1)), (1, copies)))
    theta = Spectral.of(x, torch.float64).draw(
        target, torch.full((copies,), 2.0, **like), torch.full((copies,), 0.3, **like),
        torch.full((copies,), 0.5, **like), torch.Generator().manual_seed(3)).numpy()
    a = 2.0 * (x.T @ x).toarray() + 0.5 * np.eye(k)  # λ_P XᵀX + λ_Θ I
    b = 2.0 * x.T @ target[:, 0].numpy() + 0.5 * 0.3  # λ_P Xᵀ target + λ_Θ μ_Θ
    cov = np.linalg.inv(a)
    np.testing.assert_allclose(theta.mean(1), np.linalg.solve(a, b), atol=0.03)
    np.testing.assert_allclose(np.cov(theta), cov, atol=0.05 * np.abs(cov).max())


def test_same_seed_same_chain():
    train, _ = planted(n_users=20, n_items=15)
    first = run(model_for(train, samples=3, burn_in=2), train, seed=5).state_dict()
    again = run(model_for(train, samples=3, burn_in=2), train, seed=5).state_dict()
    other = run(model_for(train, samples=3, burn_in=2), train, seed=6).state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["user_kept"], other["user_kept"])


def test_posterior_mean_is_the_average_of_the_kept_predictions(monkeypatch):
    train, test = planted(n_users=25, n_items=20, rank=3)
    model = model_for(train, dim=3, samples=6, burn_in=3)
    per_sample, keep = [], bayes_sweep._keep

    def record(model, averaged, mean):  # each kept state's own prediction of the test pairs
        state = {f: mean if f == averaged else getattr(model, f"{f}_sample").clone()
                 for f in model.fields}
        rows = {"user": test.users, "item": test.items,
                "day": np.clip(test.timestamps // SECONDS_PER_DAY - DAY0, 0, 9)}
        vecs = {f: state[f][torch.tensor(rows[f])] for f in state}
        value = 3.0 * 0 + model.global_mean + model.w0 + sum(v[:, 3] for v in vecs.values())
        names = list(vecs)
        for i, f in enumerate(names):
            for g in names[i + 1:]:
                value = value + (vecs[f][:, :3] * vecs[g][:, :3]).sum(1)
        per_sample.append(value)
        keep(model, averaged, mean)

    monkeypatch.setattr(bayes_sweep, "_keep", record)
    generator = torch.Generator().manual_seed(0)
    for sweep in range(9):
        model.sweep(train, generator)
        if sweep < 3:  # burning in: the current draw's prediction
            current = bayes_sweep._predict(model, {
                f: getattr(model, f"{f}_sample")[x.ids] for f, x in model._chain.fields.items()})
            torch.testing.assert_close(model._chain.prediction, current, rtol=1e-5, atol=1e-5)
    assert len(per_sample) == 6 and int(model.kept) == 6
    with torch.no_grad():
        torch.testing.assert_close(predict(model, test), torch.stack(per_sample).mean(0),
                                   rtol=1e-5, atol=1e-5)


def test_score_all_agrees_with_forward():
    train, _ = planted(n_users=15, n_items=12)
    model = run(model_for(train, samples=4, burn_in=2), train)
    users = torch.tensor([0, 3, 14])
    pairs = (users.repeat_interleave(12), torch.arange(12).repeat(3))
    with torch.no_grad():
        torch.testing.assert_close(model.score_all(users), model(*pairs).view(3, 12))
        times = torch.tensor([DAY0, DAY0 + 4, DAY0 + 9]) * SECONDS_PER_DAY
        torch.testing.assert_close(model.score_all(users, times),
                                   model(*pairs, times.repeat_interleave(12)).view(3, 12))


def test_days_select_the_day_vector():
    train, _ = planted(n_users=15, n_items=12)
    assert BayesMF(15, 12, interactions=train).uses_times  # timestamps: on by default
    assert not BayesMF(15, 12).uses_times and not BayesMF(15, 12, days=False,
                                                           interactions=train).uses_times
    model = run(model_for(train, samples=4, burn_in=2), train)
    assert model.uses_times and model.model_args["day_range"] == [DAY0, DAY0 + 9]
    u, i = torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long)
    with torch.no_grad():
        last = model(u, i, torch.full((3,), (DAY0 + 9) * SECONDS_PER_DAY))
        later = model(u, i, torch.full((3,), (DAY0 + 500) * SECONDS_PER_DAY))
        first = model(u, i, torch.full((3,), DAY0 * SECONDS_PER_DAY))
        torch.testing.assert_close(model(u, i), last)  # times=None: the last training day
        torch.testing.assert_close(later, last)  # later days: the last one
        assert not torch.allclose(first, last)


def test_checkpoint_round_trip_gives_identical_predictions():
    train, test = planted(n_users=20, n_items=15)
    features = dict(user_features=[[f"g:{u % 2}", f"a:{u % 3}"] for u in range(20)],
                    item_features=[[f"genre:{i % 4}"] for i in range(15)])
    model = run(model_for(train, samples=4, burn_in=2, **features), train)
    args = json.loads(json.dumps(model.model_args))  # what a checkpoint stores
    rebuilt = BayesMF(**args)  # no interactions: day_range travels in the arguments
    rebuilt.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(predict(rebuilt, test), predict(model, test))


def test_implicit_sets_come_from_the_training_log_only():
    train, test = planted(n_users=20, n_items=15)
    model = run(model_for(train, samples=1, burn_in=0), train)
    design = model._chain.fields["user"].blocks["implicit"].design.to_dense().numpy()
    np.testing.assert_allclose(design, implicit_design(train.csr).toarray(), rtol=1e-6)
    held = design[test.users, test.items]
    assert (held[~train.contains(test.users, test.items)] == 0).all()


def test_label_design_normalises_each_row():
    x, vocabulary = label_design([["a", "b"], ["b"], []])
    assert vocabulary == ["a", "b"]
    np.testing.assert_allclose(x.toarray(), [[0.5**0.5, 0.5**0.5], [0, 1], [0, 0]])


@pytest.mark.parametrize("options, name", [
    (dict(dim=0), "dim"), (dict(samples=0), "samples"), (dict(burn_in=-1), "burn_in"),
    (dict(noise_dof=0.0), "noise_dof"), (dict(prior_rate=-1.0), "prior_rate"),
    (dict(user_features=[["x"]]), "user_features"),
    (dict(days=True, interactions=None), "days"),
])
def test_bad_settings_name_the_parameter(options, name):
    with pytest.raises(ValueError, match=name):
        BayesMF(5, 4, **options)


def test_sweep_refuses_logs_it_cannot_use():
    train, _ = planted(n_users=10, n_items=8)
    with pytest.raises(ValueError, match="ratings"):
        model_for(train).sweep(train.implicit(), torch.Generator())
    with pytest.raises(ValueError, match="timestamps"):
        model_for(train).sweep(Interactions(train.users, train.items, train.ratings,
                                            n_users=10, n_items=8), torch.Generator())


def test_ml100k_u1_beats_the_biased_baseline_in_a_few_sweeps(ml100k):
    from deepmf.readers.side import side_features

    train, test = ml100k.given["u1"]
    model = run(model_for(train, dim=10, samples=30, burn_in=10, **side_features(ml100k)),
                train)
    assert rmse(model, test.take(slice(None))) < 1.2  # sanity before clipping
    with torch.no_grad():
        clipped = predict(model, test).clamp(1, 5)
    error = float((clipped - torch.tensor(test.ratings)).square().mean().sqrt())
    assert 0.85 < error < 0.915  # biased MF ~0.94; myFM's 512 samples 0.885
