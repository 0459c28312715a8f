"""The training loop: early stopping, best-state restore, determinism, divergence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepmf.data import Interactions
from deepmf.device import resolve_device
from deepmf.errors import ConfigError
from deepmf.models import build_model
from deepmf.tasks import RatingTask
from deepmf.train import Callback, TrainConfig, TrainingDiverged, fit


def ratings_log(n_users=60, n_items=50, n=2000, seed=0) -> Interactions:
    """Ratings from a rank-2 model plus noise, so a factor model can learn them."""
    rng = np.random.default_rng(seed)
    p, q = rng.normal(size=(n_users, 2)), rng.normal(size=(n_items, 2))
    users, items = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    ratings = np.clip(3 + (p[users] * q[items]).sum(1) + 0.3 * rng.normal(size=n), 1, 5)
    return Interactions(users, items, ratings.astype(np.float32), n_users=n_users,
                        n_items=n_items)


def train_once(config: TrainConfig, log: Interactions, valid: Interactions | None = None, *,
               batch_size: int):
    torch.manual_seed(0)
    model = build_model("biased-mf", log, dim=8)
    task = RatingTask(log, valid, batch_size=batch_size, device=torch.device("cpu"), clip=(1, 5))
    return model, fit(model, task, config)


def test_training_lowers_validation_rmse_below_the_mean_baseline():
    log = ratings_log()
    train, valid = log.take(slice(0, 1800)), log.take(slice(1800, None))
    _, history = train_once(TrainConfig(epochs=40, lr=0.02, patience=0),
                            train, valid, batch_size=128)
    baseline = float(np.sqrt(np.mean((valid.ratings - train.ratings.mean()) ** 2)))
    assert min(r["valid_rmse"] for r in history) < 0.8 * baseline


def test_same_seed_same_model_and_history():
    log = ratings_log()
    config = TrainConfig(epochs=3, lr=0.01, seed=7)
    (a, ha), (b, hb) = train_once(config, log, batch_size=256), train_once(config, log,
                                                                           batch_size=256)
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(x, y)
    assert [r["loss"] for r in ha] == [r["loss"] for r in hb]


def test_early_stopping_stops_and_restores_the_best_epoch():
    log = ratings_log(n=600)
    train, valid = log.take(slice(0, 500)), log.take(slice(500, None))
    snapshots = []

    class Keep(Callback):
        def on_epoch_end(self, record, model):
            snapshots.append((record["valid_rmse"], {k: v.clone() for k, v in
                                                     model.state_dict().items()}))

    # No regularization and a high lr: the model overfits, so validation RMSE turns up.
    config = TrainConfig(epochs=200, lr=0.05, patience=3)
    torch.manual_seed(0)
    model = build_model("mf", train, dim=16)
    task = RatingTask(train, valid, batch_size=64, device=torch.device("cpu"), clip=(1, 5))
    history = fit(model, task, config, [Keep()])
    assert len(history) < 200
    best = min(range(len(snapshots)), key=lambda i: snapshots[i][0])
    assert len(history) == best + 1 + 3
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshots[best][1][key])


def test_lr_decay_halves_the_rate_after_each_epoch_without_improvement():
    log = ratings_log(n=600)
    train, valid = log.take(slice(0, 500)), log.take(slice(500, None))
    config = TrainConfig(epochs=40, lr=0.05, patience=0, lr_decay=0.5)
    _, history = train_once(config, train, valid, batch_size=64)
    best, lr = float("inf"), 0.05
    for record in history:
        assert record["lr"] == pytest.approx(lr)  # the rate this epoch trained at
        if record["valid_rmse"] < best:
            best = record["valid_rmse"]
        else:
            lr /= 2
    assert history[-1]["lr"] < 0.05 / 4  # it overfits, so it did decay


def test_lr_schedule_replays_rates_epoch_by_epoch():
    log = ratings_log(n=600)
    rates = [0.05, 0.025, 0.0125]
    torch.manual_seed(0)
    model = build_model("biased-mf", log, dim=8)
    task = RatingTask(log, None, batch_size=64, device=torch.device("cpu"), clip=(1, 5))
    history = fit(model, task, TrainConfig(epochs=4, lr=0.05),
                  lr_schedule=rates)
    assert [r["lr"] for r in history] == [0.05, 0.025, 0.0125, 0.0125]


def test_validate_start_keeps_a_trained_start_that_training_only_worsens():
    log = ratings_log(n=600)
    train, valid = log.take(slice(0, 500)), log.take(slice(500, None))
    model, _ = train_once(TrainConfig(epochs=60, lr=0.02, patience=3),
                          train, valid, batch_size=64)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    task = RatingTask(train, valid, batch_size=64, device=torch.device("cpu"), clip=(1, 5))
    # A far too high rate: every epoch of "fine-tuning" scatters the trained factors.
    history = fit(model, task, TrainConfig(epochs=3, lr=1.0, patience=0),
                  validate_start=True)
    assert [r["epoch"] for r in history] == [0, 1, 2, 3]
    assert "loss" not in history[0] and "seconds" not in history[0]
    assert min(history, key=lambda r: r["valid_rmse"])["epoch"] == 0
    for key, value in model.state_dict().items():
        assert torch.equal(value, start[key])
    _, plain = train_once(TrainConfig(epochs=2, lr=0.02), train, valid, batch_size=64)
    assert [r["epoch"] for r in plain] == [1, 2]


def test_nan_loss_raises_a_clear_error():
    log = ratings_log(n=300)
    with pytest.raises(TrainingDiverged, match="try a lower --lr"):
        train_once(TrainConfig(epochs=3, lr=1e12, optimizer="sgd"), log, batch_size=32)


@pytest.mark.parametrize("bad", [dict(optimizer="lbfgs"), dict(epochs=0), dict(lr=0.0),
                                 dict(lr=float("nan")), dict(lr_decay=0.0),
                                 dict(lr_decay=1.5)])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ConfigError):
        TrainConfig(**bad)


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            resolve_device("cuda")


def test_biased_mf_starts_from_the_baseline_biases_by_hand():
    # μ = 3.25; residuals 1.75, -0.25, 0.75, -2.25; one sweep, one pseudo-rating each side:
    # b_i = (1.75 + 0.75) / 3, (-0.25 - 2.25) / 3; then b_u from the residuals less b_i.
    model = build_model("biased-mf", Interactions(np.array([0, 0, 1, 2]), np.array([0, 1, 0, 1]),
                                                  np.array([5.0, 3.0, 4.0, 1.0])), dim=2)
    model.start_from(torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 0, 1]),
                     torch.tensor([5.0, 3.0, 4.0, 1.0]), sweeps=1, item_shrink=1, user_shrink=1)
    assert model.item_bias.weight[:, 0].tolist() == pytest.approx([2.5 / 3, -2.5 / 3])
    assert model.user_bias.weight[:, 0].tolist() == pytest.approx(
        [(1.75 - 2.5 / 3 - 0.25 + 2.5 / 3) / 3, (0.75 - 2.5 / 3) / 2, (-2.25 + 2.5 / 3) / 2])


def test_biased_mf_start_recovers_planted_biases():
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 50, 20_000), rng.integers(0, 40, 20_000)
    b_u, b_i = rng.normal(0, 0.5, 50), rng.normal(0, 0.8, 40)
    ratings = (3.5 + b_u[users] + b_i[items] + rng.normal(0, 0.3, 20_000)).astype(np.float32)
    model = build_model("biased-mf", Interactions(users, items, ratings), dim=4)
    model.start_from(*(torch.from_numpy(a) for a in (users, items, ratings)))
    learned_u, learned_i = (t.weight[:, 0].detach().numpy() for t in (model.user_bias,
                                                                       model.item_bias))
    # the biases are found up to a shared offset, which the global mean absorbs
    assert np.corrcoef(learned_u, b_u)[0, 1] > 0.99 and np.corrcoef(learned_i, b_i)[0, 1] > 0.99
    with torch.no_grad():
        start = model(torch.from_numpy(users), torch.from_numpy(items)).numpy()
    # the factors start small (std 0.1), so the start is about the baseline's 0.3 error
    assert np.sqrt(np.mean((start - ratings) ** 2)) < 0.4 < ratings.std()


def test_a_rating_run_starts_biased_mf_from_the_baseline():
    from deepmf.experiment.config import RunConfig
    from deepmf.experiment.plan import make_plan
    from deepmf.experiment.run import _new_model

    rng = np.random.default_rng(1)
    users, items = rng.integers(0, 30, 3000), rng.integers(0, 20, 3000)
    log = Interactions(users, items, (3 + rng.normal(0, 0.5, 20)[items]).astype(np.float32))
    dataset = "synthetic:users=30,items=20,interactions=3000,ratings=true"
    model = _new_model(make_plan(RunConfig(model="biased-mf", dataset=dataset)), log, "cpu")
    fresh = build_model("biased-mf", log, dim=64)
    fresh.start_from(*(torch.from_numpy(a) for a in (users, items, log.ratings)))
    assert torch.equal(model.item_bias.weight, fresh.item_bias.weight)
    assert model.item_bias.weight.abs().max() > 0.3  # the planted item effects, not zeros
