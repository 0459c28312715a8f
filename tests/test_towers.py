"""NCF's tower models (MLP, NeuMF) without autograd: the written-out backward pass gives
autograd's loss and gradients, eagerly and compiled, and a run trains as autograd's does."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from deepmf.data import Interactions
from deepmf.losses import bce
from deepmf.models import build_model, compiled
from deepmf.models.fused import LOSS_GRADS, fusable
from deepmf.models.ncf import NeuMF
from deepmf.models.towers import tower_whole
from deepmf.tasks import RankingTask
from deepmf.train import TrainConfig, fit

TOWERS = ("mlp", "neumf")


def log(n_users=40, n_items=30, n=600, seed=0) -> Interactions:
    rng = np.random.default_rng(seed)
    return Interactions(rng.integers(0, n_users, n), rng.integers(0, n_items, n),
                        n_users=n_users, n_items=n_items)


def model_for(name: str, data: Interactions, **options):
    torch.manual_seed(0)
    model = build_model(name, data, dim=4, **options)
    with torch.no_grad():  # every layer alive, so every ReLU mask and term counts
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return model


def batch(data: Interactions, n: int, seed=1):
    rng = np.random.default_rng(seed)
    labels = torch.tensor(rng.integers(0, 2, n), dtype=torch.float32)
    return torch.tensor(data.users[:n]), torch.tensor(data.items[:n]), labels


def bce_dloss(labels):
    return lambda logits, part: LOSS_GRADS["bce"](logits, labels[part], len(labels))[:2]


def step_params(model):
    return [p for p in model.parameters() if p.requires_grad]


# 20 pairs look up fewer ids than the tables hold (the first layer runs per pair); 300
# more (it runs once per table row and the pairs' gradients are summed per row first)
@pytest.mark.parametrize("n", [20, 300], ids=["per-pair", "per-row"])
@pytest.mark.parametrize("reg", [0.0, 0.05])
@pytest.mark.parametrize("name", TOWERS)
def test_tower_gradients_equal_autograd(name, reg, n):
    data = log()
    model = model_for(name, data)
    users, items, labels = batch(data, n)
    logits, penalty = model.scores_and_penalty(users, items)
    plain = bce(logits, labels) + reg * penalty
    expected = torch.autograd.grad(plain, step_params(model))
    loss = model.fused_grads(users, items, bce_dloss(labels), reg)
    torch.testing.assert_close(loss, plain.detach())
    for p, want in zip(step_params(model), expected):
        torch.testing.assert_close(p.grad, want, rtol=1e-5, atol=1e-7)


def test_neumf_from_parts_steps_only_its_own_weights():
    """Pre-trained NeuMF keeps its parts' heads frozen: the step leaves them alone."""
    data = log()
    gmf, mlp = model_for("gmf", data), model_for("mlp", data)
    model = NeuMF.from_pretrained(gmf, mlp)
    users, items, labels = batch(data, 300)
    assert fusable(model, users, compiled=True)
    model.fused_grads(users, items, bce_dloss(labels), 0.0)
    assert model.gmf.head.weight.grad is None and model.mlp.head.weight.grad is None
    assert model.head.weight.grad is not None


def test_towers_train_by_autograd_uncompiled_with_dropout_or_sparse_tables():
    data = log()
    users = torch.tensor(data.users[:10])
    assert fusable(model_for("mlp", data), users, compiled=True)
    assert not fusable(model_for("mlp", data), users)  # uncompiled: autograd's numbers
    assert not fusable(model_for("mlp", data, dropout=0.1), users, compiled=True)
    sparse = model_for("neumf", data)
    sparse.gmf.user_embedding.sparse = True  # lazy-adam's tables
    assert not fusable(sparse, users, compiled=True)


@pytest.mark.parametrize("name", TOWERS)
def test_a_tower_run_ends_where_the_autograd_run_does(name, monkeypatch):
    """The task's compiled path, with the step left uncompiled (the same function)."""
    calls = []

    def uncompiled(*args):
        calls.append(len(args[2]))
        return tower_whole(*args)

    monkeypatch.setattr(compiled, "_COMPILED", {tower_whole: uncompiled})
    data = log()

    def train(fused: bool):
        model = model_for(name, data)
        task = RankingTask(data, None, batch_size=110, device=torch.device("cpu"), num_neg=2,
                           reg=0.01, compiled=True)  # a shorter last batch: the eager step
        if not fused:
            task.fused_step = lambda model: None  # the plain path: autograd
        return model, fit(model, task, TrainConfig(epochs=3, lr=0.01, patience=0))

    (fused, fused_history), (plain, plain_history) = train(True), train(False)
    assert len(set(calls)) == 1  # every full batch (of one size) took the written-out step
    for a, b in zip(fused.parameters(), plain.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(fused_history, plain_history):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)


@pytest.mark.skipif(not shutil.which("g++"), reason="torch.compile needs g++")
@pytest.mark.parametrize("name", TOWERS)
def test_compiled_tower_step_gives_the_eager_steps(name):
    data = log()
    model = model_for(name, data)
    users, items, labels = batch(data, 300)
    eager = model.fused_grads(users, items, bce_dloss(labels), 0.05)
    expected = [p.grad.clone() for p in step_params(model)]
    for p in model.parameters():
        p.grad = None
    value, _ = model.compiled_grads("bce", 0.05)(users, items, labels)
    assert float(value) == pytest.approx(float(eager), rel=1e-5)
    for p, grad in zip(step_params(model), expected):
        torch.testing.assert_close(p.grad, grad, rtol=1e-5, atol=1e-6)
