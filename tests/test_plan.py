"""Resolving a run's settings once: defaults filled from recipes, unused settings refused."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from deepmf.data import Dataset, Interactions, Vocabulary
from deepmf.errors import ConfigError
from deepmf.experiment.config import RunConfig
from deepmf.experiment.plan import check_settings, resolve, resolve_split
from deepmf.experiment.recipes import EXPLICIT, IMPLICIT


def dataset(given=None) -> Dataset:
    log = Interactions(np.arange(4) % 2, np.arange(4), np.ones(4, np.float32))
    return Dataset("x", log, Vocabulary(np.arange(2)), Vocabulary(np.arange(4)),
                   given=given or {})


@pytest.mark.parametrize("given, task, expected", [
    ({"given": None}, "implicit", "given"), ({}, "implicit", "loo"),
    ({"u1": None}, "explicit", "u1"), ({}, "explicit", "random:0.2"),
])
def test_default_split_rule(given, task, expected):
    assert resolve_split(RunConfig(), dataset(given), task) == expected


def test_resolved_config_fills_recipe_and_drops_what_is_unused():
    explicit = resolve(RunConfig(model="biased-mf", task="explicit", split="u1", lr=0.01), 1000)
    assert explicit.dim == EXPLICIT["biased-mf"]["dim"] and explicit.lr == 0.01
    assert explicit.loss == "mse" and explicit.refit is True and explicit.num_neg is None
    dmf = resolve(RunConfig(model="dmf", task="implicit", split="given"), 1_000_000)
    assert dmf.reg is None  # dmf has no per-row penalty to weigh
    assert dmf.batch_size == IMPLICIT["dmf"]["batch_size"] and dmf.loss == "bce"
    assert dmf.layers is None and dmf.dim is None  # its model options stay the model's
    ials = resolve(RunConfig(model="ials", task="implicit", split="given", reg=0.02), 1000)
    assert ials.reg == 0.02 and ials.dim == 192 and ials.unobserved_weight == 0.1
    assert ials.lr is None and ials.batch_size is None  # no minibatches in closed form
    bayes = resolve(RunConfig(model="bayes-mf", task="explicit", split="u1", samples=30), 1000)
    assert bayes.samples == 30 and bayes.burn_in == 20 and bayes.dim == 10
    assert bayes.side_features is True and bayes.epochs is None and bayes.refit is None
    pop = resolve(RunConfig(model="itempop", task="implicit", split="given"), 1000)
    assert pop.epochs is None and pop.lr is None  # nothing to train


@pytest.mark.parametrize("settings, message", [
    (dict(model="biased-mf", layers=(8, 4)), "--layers does not apply to model biased-mf"),
    (dict(model="biased-mf", num_neg=4), "--num-neg does not apply"),
    (dict(model="biased-mf", loss="bpr"), "the explicit task trains with mse"),
    (dict(model="biased-mf", min_rating=4.0), "--min-rating applies to the implicit task"),
    (dict(model="dmf", task="implicit", reg=0.1), "--reg does not apply to model dmf"),
    (dict(model="gmf", task="implicit", refit=True), "--refit does not apply"),
    (dict(model="gmf", task="implicit", loss="foo"), "unknown loss 'foo'"),
    (dict(model="itempop", task="implicit", epochs=3), "--epochs does not apply"),
    (dict(model="neumf", task="implicit", pretrain="a,b", dim=16), "its parts set it"),
    (dict(model="biased-mf", task="implicit", pretrain="a,b"), "cannot be pre-trained"),
    (dict(model="biased-mf", refit=True, select_on="test"), "no validation data"),
    (dict(model="ials", task="implicit", lr=0.1), "--lr does not apply to model ials"),
    (dict(model="ials", task="implicit", num_neg=4), "--num-neg does not apply"),
    (dict(model="als", layers=(8, 4)), "--layers does not apply to model als"),
    (dict(model="als", task="implicit"), "is for the explicit task"),
    (dict(model="ials", unobserved_weight=0.5), "is for the implicit task"),
    (dict(model="gmf", task="implicit", unobserved_weight=0.5), "--unobserved-weight does not"),
    (dict(model="bayes-mf", epochs=10), "--epochs does not apply to model bayes-mf"),
    (dict(model="bayes-mf", refit=True), "--refit does not apply"),
    (dict(model="biased-mf", samples=10), "--samples does not apply to model biased-mf"),
    (dict(model="als", side_features=True), "--side-features does not apply"),
])
def test_settings_a_run_would_ignore_are_refused(settings, message):
    config = RunConfig(**{"task": "explicit", **settings})
    with pytest.raises(ConfigError, match=message):
        check_settings(config)


def test_compile_is_refused_where_its_step_would_not_run(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)  # --device auto: the CPU
    config = RunConfig(model="biased-mf", task="explicit", split="u1", compile=True)
    if shutil.which("g++"):
        check_settings(config)  # one process, a fused model, a compiler on PATH
    monkeypatch.setenv("CXX", "no-such-compiler")
    with pytest.raises(ConfigError, match="needs a C\\+\\+ compiler.*no-such-compiler"):
        check_settings(config)
    monkeypatch.delenv("CXX")
    towers = RunConfig(model="mlp", task="implicit", split="given", compile=True, dropout=0.1)
    with pytest.raises(ConfigError, match="towers without dropout"):
        check_settings(towers)
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun: DistributedDataParallel's autograd
    with pytest.raises(ConfigError, match="under torchrun"):
        check_settings(config)


@pytest.mark.skipif(not shutil.which("g++"), reason="the default needs a C++ compiler")
def test_compile_is_on_by_default_only_where_it_pays(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)  # --device auto: the CPU
    implicit = RunConfig(model="biased-mf", task="implicit", split="given")
    notes: dict = {}
    big = resolve(implicit, 1_000_000, notes)  # 9M samples x 128 factors an epoch
    assert big.compile is True and "where compiling (5-20 s) pays" in notes["compile"]
    assert resolve(RunConfig(model="biased-mf", task="explicit", split="u1"),
                   80_000).compile is False  # ml-100k's folds: 80,000 x 64
    assert resolve(replace(implicit, loss="bpr"), 1_000_000).compile is False
    assert resolve(replace(implicit, compile=False), 1_000_000).compile is False
    neumf = RunConfig(model="neumf", task="implicit", split="given")
    assert resolve(neumf, 1_000_000).compile is True  # 5M samples x (64 + 8) per pair
    assert resolve(neumf, 100_000).compile is False
    mlp = RunConfig(model="mlp", task="implicit", split="given", dim=16)  # 5M x 128
    assert resolve(mlp, 1_000_000).compile is True
    assert resolve(replace(mlp, dropout=0.1), 1_000_000).compile is False
    assert resolve(RunConfig(model="dmf", task="implicit", split="given"),
                   1_000_000).compile is None  # no compiled step: not its setting
    monkeypatch.setenv("CXX", "no-such-compiler")
    assert resolve(implicit, 1_000_000).compile is False


def test_compile_is_refused_where_auto_picks_a_gpu(monkeypatch):
    import torch

    from deepmf.experiment import plan

    monkeypatch.setattr(plan, "resolve_device", lambda name: torch.device("cuda"))
    assert "--device auto picks cuda here" in plan.compile_obstacle("bce", "auto")
    assert plan.compile_obstacle("bce", "cuda").endswith("does not go with --device cuda")
