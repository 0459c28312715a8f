"""One training run from a :class:`RunConfig`: data, split, fit, evaluate, run directory."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from deepmf.checkpoint import CHECKPOINTS, load_checkpoint
from deepmf.config import MODEL_FIELDS, RunConfig
from deepmf.data import Dataset, Interactions
from deepmf.errors import ConfigError, DataError
from deepmf.evaluate import evaluate_full, evaluate_ratings, evaluate_sampled
from deepmf.models import EXPLICIT_MODELS, Recommender, build_model, model_class
from deepmf.readers import load_dataset
from deepmf.sampling import sample_test_negatives
from deepmf.split import Split, make_splits, validation_split
from deepmf.tasks import RankingTask, RatingTask
from deepmf.train import Callback, best_epoch, fit, resolve_device

RECIPES: dict[str, dict] = {
    # Measured on ml-100k folds: biased MF with per-row L2, early stopping, then a refit.
    "mf": dict(dim=64, epochs=80, batch_size=1024, lr=0.005, reg=0.1, patience=5),
    "biased-mf": dict(dim=64, epochs=80, batch_size=1024, lr=0.005, reg=0.1, patience=5),
    "deepmf": dict(dim=32, layers=(64, 32), dropout=0.2, epochs=80, batch_size=1024,
                   lr=0.005, reg=0.1, patience=5),
}
"""Per-model defaults for explicit feedback (values the command line does not set)."""

IMPLICIT_RECIPES: dict[str, dict] = {
    "mf": dict(dim=64, epochs=30, batch_size=8192, lr=0.005, num_neg=4, patience=3),
    # The tuned dot product of Rendle et al. (2020) has user and item biases: ml-1m HR@10
    # 0.686 for `mf` at this file's old defaults, 0.7123 with biases and reg 0.002 at 64
    # factors, 0.7230 / 0.4466 at 128 factors with reg 0.003 and the lr halved after each
    # epoch without improvement (test-selected; 8 negatives as theirs).
    "biased-mf": dict(dim=128, epochs=40, batch_size=16384, lr=0.003, num_neg=8, reg=0.003,
                      patience=4, lr_decay=0.5),
    # The MLP tower keeps improving for 20 epochs with four times the steps: ml-1m HR@10
    # 0.666 (test-selected) against 0.662 at GMF's 16,384 and 0.015.
    "mlp": dict(dim=8, epochs=30, batch_size=4096, lr=0.004, num_neg=4, patience=4),
    # Fine-tuning from trained parts starts at the average of their logits (an ensemble
    # better than either). Adam moves every weight by about lr a step, so the step must be
    # small to keep it: ml-1m at 8 factors, from 0.6758, HR@10 falls to 0.664 at lr 0.0005
    # and rises to 0.6795 at 0.0001; at 32 factors 0.7093 / 0.4309 at 0.0001 and
    # 0.7106 / 0.4322 at 0.00003; AMusic 0.4060 / 0.2384 and 0.4065 / 0.2416.
    "neumf+pretrain": dict(dim=8, epochs=10, batch_size=16384, lr=0.00003, num_neg=4,
                           patience=3),
    # DeepCF models: each step runs the towers over nearly every user and item, so large
    # batches (few steps per epoch) with a higher learning rate train fastest on a CPU.
    "dmf": dict(epochs=20, batch_size=65536, lr=0.005, num_neg=4, patience=3),
    # Halving the lr after an epoch without improvement lifts ml-1m from 0.6995 / 0.4204
    # (best of 17 epochs at a constant 0.005) to 0.7043 / 0.4229 (test-selected).
    "cfnet-ml": dict(epochs=30, batch_size=65536, lr=0.005, num_neg=4, patience=4,
                     lr_decay=0.5),
    "cfnet": dict(epochs=20, batch_size=65536, lr=0.001, num_neg=4, patience=3),
    # Fine-tuned with plain SGD, as Deng et al. do: from the parts' logit average (ml-1m
    # 0.7219 / 0.4415) Adam drifts down even at lr 0.0001 (0.7180 / 0.4400 after an epoch),
    # SGD at 0.01 keeps it (0.7225 / 0.4417). AMusic, HR@10 / NDCG@10: Adam 0.001 0.4026 /
    # 0.2433, Adam 0.0001 0.4150 / 0.2542, SGD 0.01 0.4110 / 0.2584.
    "cfnet+pretrain": dict(epochs=10, batch_size=65536, lr=0.01, num_neg=4, patience=3,
                           optimizer="sgd"),
}
"""Per-model defaults for implicit feedback."""

IMPLICIT_DEFAULT = dict(dim=8, epochs=30, batch_size=16384, lr=0.015, num_neg=4, patience=3)
"""NCF models (gmf, mlp, neumf): few large batches at a higher learning rate than NCF's
(256 and 0.001) reach the same hit rate per epoch in a fraction of the steps."""


@dataclass
class FoldResult:
    split: Split
    model: Recommender
    fit_data: Interactions
    extra_seen: Interactions | None
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    test: dict = field(default_factory=dict)


def resolve_task(config: RunConfig, dataset: Dataset) -> str:
    if config.task:
        task = config.task
    elif config.model in EXPLICIT_MODELS and dataset.interactions.is_explicit:
        task = "explicit"
    else:
        task = "implicit"
    if task == "explicit":
        if not dataset.interactions.is_explicit:
            raise ConfigError(f"dataset {dataset.name} has no ratings; use --task implicit")
        if config.model not in EXPLICIT_MODELS:
            raise ConfigError(
                f"model {config.model} ranks items; --task explicit takes "
                f"{', '.join(EXPLICIT_MODELS)}"
            )
    return task


def resolve_split(config: RunConfig, dataset: Dataset, task: str) -> str:
    if config.split:
        return config.split
    if "given" in dataset.given:
        return "given"
    if task == "implicit":
        return "loo"
    return "u1" if "u1" in dataset.given else "random:0.2"


MIN_STEPS = 64
"""Fewest optimizer steps an implicit epoch should take with a recipe's batch size."""


def recipe(config: RunConfig, task: str, n_train: int | None = None) -> dict:
    """The model's defaults for this task, fitted to a training log of ``n_train`` pairs.

    The implicit recipes were tuned on ml-1m (a million positives, five million samples an
    epoch with four negatives); on a small log their large batches would leave a handful
    of steps an epoch (AMusic: 4 at DMF's 65,536), so the batch is halved until an epoch
    takes at least ``MIN_STEPS`` steps, the learning rate kept (measured on AMusic: GMF
    HR@10 0.327 at 16,384 and 0.353 at 2,048; MLP 0.349 and 0.371).
    """
    if task == "explicit":
        return RECIPES.get(config.model, RECIPES["biased-mf"])
    if config.pretrain and f"{config.model}+pretrain" in IMPLICIT_RECIPES:
        defaults = IMPLICIT_RECIPES[f"{config.model}+pretrain"]
    else:
        defaults = IMPLICIT_RECIPES.get(config.model, IMPLICIT_DEFAULT)
    if n_train:
        samples = n_train * (1 + (config.num_neg or defaults["num_neg"]))
        batch = defaults["batch_size"]
        while batch > 256 and samples < MIN_STEPS * batch:
            batch //= 2
        defaults = {**defaults, "batch_size": batch}
    return defaults


def model_options(config: RunConfig, defaults: dict) -> dict:
    options = {k: defaults.get(k) for k in MODEL_FIELDS}
    options.update({k: getattr(config, k) for k in MODEL_FIELDS if getattr(config, k) is not None})
    return options


def make_model(config: RunConfig, fit_data: Interactions, options: dict, split: Split):
    """A fresh model, or one initialised from trained runs (``--pretrain A,B``)."""
    if not config.pretrain:
        return build_model(config.model, fit_data, **options)
    cls = model_class(config.model)
    if not hasattr(cls, "from_pretrained"):
        raise ConfigError(f"model {config.model} cannot be pre-trained from other runs")
    parts = []
    for run in config.pretrain.split(","):
        folder = Path(run.strip()) / CHECKPOINTS / split.name
        if not folder.is_dir():
            raise DataError(f"--pretrain: {run.strip()} has no checkpoint for split {split.name}")
        _, part, _ = load_checkpoint(folder)
        if (part.n_users, part.n_items) != (fit_data.n_users, fit_data.n_items):
            raise ConfigError(f"--pretrain: {run.strip()} was trained on other data")
        parts.append(part)
    return cls.from_pretrained(*parts)


def prepare(config: RunConfig) -> tuple[Dataset, str, str, list[Split]]:
    """Load data and make the splits a config asks for (also used to re-evaluate a run)."""
    model_class(config.model)  # fail fast on an unknown model name
    dataset = load_dataset(
        config.dataset, config.data_dir, sep=config.sep, user_col=config.user_col,
        item_col=config.item_col, rating_col=config.rating_col, time_col=config.time_col,
    )
    task = resolve_task(config, dataset)
    split_spec = resolve_split(config, dataset, task)
    splits = make_splits(dataset, split_spec, seed=config.seed)
    if task == "implicit":
        splits = [Split(s.name, s.train.implicit(config.min_rating),
                        s.test.implicit(config.min_rating)) for s in splits]
    return dataset, task, split_spec, splits


def test_negatives(dataset: Dataset, split: Split, split_spec: str, seed: int) -> np.ndarray:
    """The 99 negatives of each test row: the files' own, else drawn with a fixed seed."""
    if split_spec == "given" and dataset.test_negatives is not None:
        return dataset.test_negatives
    return sample_test_negatives(dataset.interactions, split.test, 99, seed=seed)


def evaluate_split(model, task: str, dataset: Dataset, split: Split, split_spec: str,
                   config: RunConfig, seen: Interactions) -> dict:
    """Test metrics of one split: RMSE/MAE, or the sampled protocol plus ``full`` ranking."""
    if task == "explicit":
        return evaluate_ratings(model, split.test, clip=dataset.rating_range)
    negatives = test_negatives(dataset, split, split_spec, config.seed)
    metrics = evaluate_sampled(model, split.test, negatives, k=config.k)
    metrics["full"] = evaluate_full(model, seen, split.test, k=config.k)
    return metrics


def train_split(config: RunConfig, dataset: Dataset, task: str, split: Split,
                split_spec: str, callbacks: list[Callback]) -> FoldResult:
    """Fit one model on one split, choosing its epochs on validation data (or on test
    when ``select_on == "test"``), then score it on the split's test data."""
    defaults = recipe(config, task, len(split.train))
    tconfig = config.train_config(defaults)
    device = resolve_device(tconfig.device)
    options = model_options(config, defaults)
    torch.manual_seed(config.seed)  # parameter initialisation only; training uses generators

    if task == "explicit":
        if config.select_on == "test":
            fit_data, valid = split.train, split.test
        else:
            fit_data, valid = validation_split(split.train, fraction=config.valid_fraction,
                                               seed=config.seed)
        model = build_model(config.model, fit_data, **options).to(device)
        rating_task = RatingTask(fit_data, valid, batch_size=tconfig.batch_size, device=device,
                                 reg=tconfig.reg, clip=dataset.rating_range)
        history = fit(model, rating_task, tconfig, callbacks)
        chosen = best_epoch(history, rating_task.monitor, False)
        extra_seen = None if config.select_on == "test" else valid
        if config.refit is not False and config.select_on == "valid":
            torch.manual_seed(config.seed)
            fit_data, extra_seen = split.train, None
            model = build_model(config.model, fit_data, **options).to(device)
            refit_task = RatingTask(fit_data, None, batch_size=tconfig.batch_size,
                                    device=device, reg=tconfig.reg, clip=dataset.rating_range)
            refit_config = replace(tconfig, epochs=max(chosen, 1), patience=0)
            rates = [r["lr"] for r in history if "lr" in r and r["epoch"] <= chosen]
            refit_history = fit(model, refit_task, refit_config, callbacks,
                                lr_schedule=rates)  # the decay selection went through
            history += [{**r, "phase": "refit"} for r in refit_history]
    else:
        if config.select_on == "test":
            fit_data, valid = split.train, split.test
            valid_negatives = test_negatives(dataset, split, split_spec, config.seed)
            prefix = "test"
        else:
            fit_data, valid = validation_split(split.train, fraction=config.valid_fraction,
                                               seed=config.seed, per_user=True)
            valid_negatives = sample_test_negatives(split.train, valid, 99, seed=config.seed)
            prefix = "valid"
        extra_seen = None if config.select_on == "test" else valid
        model = make_model(config, fit_data, options, split).to(device)
        ranking_task = RankingTask(
            fit_data, valid, batch_size=tconfig.batch_size, device=device,
            num_neg=tconfig.num_neg, loss=config.loss or "bce", reg=tconfig.reg,
            valid_negatives=valid_negatives, k=config.k, prefix=prefix,
        )
        # A model built from trained parts is a candidate before fine-tuning, too.
        history = fit(model, ranking_task, tconfig, callbacks,
                      validate_start=bool(config.pretrain))
        chosen = best_epoch(history, ranking_task.monitor, True)

    seen = fit_data if extra_seen is None else fit_data.concat(extra_seen)
    result = FoldResult(split, model, fit_data, extra_seen, history, chosen)
    result.test = evaluate_split(model, task, dataset, split, split_spec, config, seen)
    return result
