"""The same work on the CPU and, where one is present, on a CUDA GPU (the ``cuda`` cases are
marked gpu and skip elsewhere): epochs drawn on the device, deterministic for a seed and
never offering a positive as a negative; models that learn; rankings that agree across
devices; the command line with ``--device cuda``."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import build

from deepmf import batching
from deepmf.evaluate import evaluate_full, evaluate_ratings
from deepmf.models.popularity import ItemPop
from deepmf.readers import load_dataset
from deepmf.split import leave_one_out
from deepmf.tasks import RankingTask, RatingTask
from deepmf.train import TrainConfig, fit

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


@pytest.fixture(scope="module")
def split():
    log = load_dataset("synthetic:users=600,items=400,interactions=30000,seed=1").interactions
    return leave_one_out(log)


def epoch(task, seed: int) -> list[tuple[torch.Tensor, ...]]:
    return list(task.batches(torch.Generator().manual_seed(seed)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("lean", [False, True], ids=["whole-epoch", "per-batch"])
def test_an_epoch_is_drawn_on_the_device_the_same_for_a_seed(split, device, lean,
                                                             monkeypatch):
    if lean:  # negatives drawn batch by batch, as for a log of tens of millions
        monkeypatch.setattr(batching, "WHOLE_EPOCH_NEGATIVES", 1000)
    train, _ = split
    task = RankingTask(train, None, batch_size=5000, device=torch.device(device), num_neg=4)
    first, again, other = epoch(task, 0), epoch(task, 0), epoch(task, 1)
    assert {t.device.type for batch in first for t in batch} == {device}
    assert all(torch.equal(a, b) for x, y in zip(first, again) for a, b in zip(x, y))
    assert not torch.equal(first[0][1], other[0][1])
    users, items, labels = (torch.cat(parts).cpu().numpy() for parts in zip(*first))
    negative = labels == 0
    assert negative.sum() == 4 * len(train) and (~negative).sum() == len(train)
    assert train.contains(users[~negative], items[~negative]).all()
    assert not train.contains(users[negative], items[negative]).any()
    key = lambda u, i: np.sort(u.astype(np.int64) * train.n_items + i)  # noqa: E731
    assert np.array_equal(key(users[~negative], items[~negative]),
                          key(train.users, train.items))  # every row once an epoch


@pytest.mark.parametrize("device", DEVICES)
def test_neumf_learns_the_planted_tastes_and_ranks_alike_on_the_cpu(split, device):
    train, test = split
    torch.manual_seed(0)
    model = build("neumf", train).to(device)
    task = RankingTask(train, None, batch_size=2048, device=torch.device(device), num_neg=4)
    fit(model, task, TrainConfig(epochs=6, lr=0.003, patience=0))
    here = evaluate_full(model, train, test, k=10)
    on_cpu = evaluate_full(copy.deepcopy(model).cpu(), train, test, k=10)
    popular = evaluate_full(ItemPop(train.n_users, train.n_items, train), train, test, k=10)
    assert here["hr@10"] > 2 * popular["hr@10"], (here, popular)  # 0.39, 0.12 on the CPU
    assert here["hr@10"] == pytest.approx(on_cpu["hr@10"], abs=2 / test.n_users)  # near-ties


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("optimizer", ["adam", "lazy-adam"])  # lazy: what 20M logs get
def test_biased_mf_fits_ratings_better_than_their_mean(device, optimizer):
    log = load_dataset("synthetic:users=300,items=200,interactions=12000,ratings=true,"
                       "seed=2").interactions
    order = np.random.default_rng(0).permutation(len(log))
    train, test = log.take(order[:10000]), log.take(order[10000:])
    torch.manual_seed(0)
    model = build("biased-mf", train, dim=16).to(device)
    lazy = optimizer == "lazy-adam"  # batches of 32 look up few rows: the tables go sparse
    task = RatingTask(train, None, batch_size=32 if lazy else 1024,
                      device=torch.device(device), reg=0.02)
    fit(model, task, TrainConfig(epochs=15, lr=0.01, patience=0, optimizer=optimizer))
    assert model.user_factors.sparse == model.item_factors.sparse == lazy
    rmse = evaluate_ratings(model, test)["rmse"]
    mean = float(np.sqrt(np.mean((test.ratings - train.ratings.mean()) ** 2)))
    assert rmse < 0.85 * mean, (rmse, mean)  # 0.71 against 0.94 on the CPU


def deepmf(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deepmf", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})


@pytest.mark.gpu
def test_a_run_trained_on_cuda_is_evaluated_and_recommends_without_one(tmp_path):
    out = tmp_path / "run"
    trained = deepmf("train", "--model", "gmf", "--dataset",
                     "synthetic:users=300,items=120,interactions=6000", "--epochs", "3",
                     "--device", "cuda", "--quiet", "--out", str(out))
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert 'device = "cuda"' in (out / "config.toml").read_text()
    saved = json.loads((out / "metrics.json").read_text())["test"]
    assert saved["full"]["hr@10"] > 0.35, saved  # popularity 0.27, the CPU 0.52
    cpu_only = {"CUDA_VISIBLE_DEVICES": ""}
    again = deepmf("evaluate", str(out), **cpu_only)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["full"]["hr@10"] == pytest.approx(saved["full"]["hr@10"],
                                                                      abs=0.01)
    top = deepmf("recommend", str(out), "--user", "1", "--json", **cpu_only)
    assert top.returncode == 0, top.stderr[-3000:]
    assert len(json.loads(top.stdout)["items"]) == 10


def test_a_run_saved_as_trained_on_cuda_evaluates_where_there_is_none(tmp_path):
    """Scoring a run again needs no GPU, whatever it was trained on (it happened: a run
    trained on CUDA could not be evaluated on a CPU machine)."""
    out = tmp_path / "run"
    trained = deepmf("train", "--model", "gmf", "--dataset",
                     "synthetic:users=300,items=120,interactions=6000", "--epochs", "2",
                     "--device", "cpu", "--quiet", "--out", str(out))
    assert trained.returncode == 0, trained.stderr[-3000:]
    config = out / "config.toml"
    config.write_text(config.read_text().replace('device = "cpu"', 'device = "cuda"'))
    again = deepmf("evaluate", str(out), CUDA_VISIBLE_DEVICES="")
    assert again.returncode == 0, again.stderr[-3000:]
    saved = json.loads((out / "metrics.json").read_text())["test"]
    assert json.loads(again.stdout)["full"]["hr@10"] == pytest.approx(saved["full"]["hr@10"])
