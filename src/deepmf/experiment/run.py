"""Training runs: one split fitted and scored, and the whole run from config to directory."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from deepmf import distributed
from deepmf.checkpoint import load_checkpoint
from deepmf.data import Interactions
from deepmf.device import threads
from deepmf.distributed import SINGLE, Shard
from deepmf.errors import ConfigError, DataError, DeepMFError
from deepmf.evaluate import evaluate_full, evaluate_ratings, evaluate_sampled
from deepmf.experiment.config import RunConfig
from deepmf.experiment.guards import LearnsSomething, check_pretrain, check_vocab, finite_metrics
from deepmf.experiment.plan import Plan, make_plan
from deepmf.experiment.recipes import WARM_REFIT
from deepmf.experiment.rundir import FoldResult, RunDir
from deepmf.models import Recommender, build_model, model_class
from deepmf.sampling import sample_test_negatives
from deepmf.split import Split, validation_split
from deepmf.tasks import RankingTask, RatingTask
from deepmf.train import Callback, best_epoch, fit


def train_run(config: RunConfig, callbacks: list[Callback] = (), *,
              resume: str | Path | None = None, announce=None) -> tuple[Path, dict]:
    """Train and evaluate per ``config``; return the finished run directory and its metrics.

    The directory is created before training starts and every epoch's state is saved in
    it, so a run killed at any point continues with ``resume=RUN`` (whose stored settings
    are used; ``config`` may only change where the data is and the device) and ends with
    the same metrics as if it had never stopped. ``announce`` is called with the run
    directory once it exists. A run that fails on bad input leaves nothing behind.
    """
    if resume is not None:
        run = RunDir(resume)
        if not run.is_unfinished():
            raise ConfigError(f"--resume {run.path}: not an unfinished run (no state/ there, "
                              "or metrics.json already written)")
        stored = run.load_config(finished=False)
        config = replace(stored, data_dir=config.data_dir or stored.data_dir,
                         device=config.device, threads=config.threads or stored.threads)
    plan = make_plan(config)
    check_pretrain(plan.config)
    torch.set_num_threads(plan.config.threads)
    shard = distributed.setup(distributed.process_device(plan.config.device))
    try:
        if resume is None:
            run = RunDir(distributed.share(
                str(config.out or RunDir.default_name(plan.config)), shard))
            if shard.main:
                run.begin(plan.config, plan.notes)
            distributed.barrier(shard)
        if announce is not None and shard.main:
            announce(run.path)
        try:
            results = [train_split(plan, s, [*(callbacks if shard.main else ()),
                                             LearnsSomething()], run, shard)
                       for s in plan.splits]
            if not shard.main:  # leave once the first process has written the run
                distributed.barrier(shard)
                return run.path, {}
            metrics = summarize(plan.config, results)
            finite_metrics(metrics, f"run {run.path}")
        except DeepMFError:
            if resume is None and shard.main:
                run.discard()
            raise
        run.finish(plan.config, plan.dataset, results, metrics, plan.notes)
        distributed.barrier(shard)  # every process leaves the group together
        return run.path, metrics
    finally:
        distributed.teardown()


def train_split(plan: Plan, split: Split, callbacks: list[Callback],
                run: RunDir | None = None, shard: Shard = SINGLE) -> FoldResult:
    """:func:`fit_split`, then score the model on the split's test data (among several
    processes, ``shard``, only the first does)."""
    result = fit_split(plan, split, callbacks, run, shard)
    if not shard.main:
        return result
    seen = result.fit_data if result.extra_seen is None else \
        result.fit_data.concat(result.extra_seen)
    result.test = evaluate_split(result.model, plan, split, seen)
    return result


def fit_split(plan: Plan, split: Split, callbacks: list[Callback],
              run: RunDir | None = None, shard: Shard = SINGLE) -> FoldResult:
    """Fit one model on one split, choosing its epochs on validation data (or on test
    when ``select_on == "test"``); the test data is not scored. With a ``run``, each
    training phase keeps its state there and continues from it. Among several processes
    (``shard``) only the first saves state."""
    def stores(phase: str):
        if run is None:
            return None
        store = run.store(split.name, phase)
        return store if shard.main else distributed.ReadOnly(store)

    _stage(callbacks, split.name, "select")
    if plan.task == "explicit":
        result = _fit_ratings(plan, split, callbacks, stores, shard)
    else:
        result = _fit_ranking(plan, split, callbacks, stores, shard)
    if shard.world > 1:
        distributed.report(split.name, result.history, result.best_epoch, shard)
    return result


def _stage(callbacks: list[Callback], split: str, phase: str) -> None:
    for callback in callbacks:
        callback.on_stage(split, phase)


def _new_model(plan: Plan, fit_data: Interactions, device) -> Recommender:
    """A fresh model for rating prediction; one with ``start_from`` starts from the ratings."""
    torch.manual_seed(plan.config.seed)  # parameter initialisation only; training uses generators
    model = build_model(plan.config.model, fit_data, **plan.model_options())
    if hasattr(model, "start_from") and len(fit_data):
        model.start_from(*(torch.from_numpy(a) for a in (fit_data.users, fit_data.items,
                                                          fit_data.ratings)))
    return model.to(device)


def _fit_ratings(plan: Plan, split: Split, callbacks: list[Callback], stores,
                 shard: Shard) -> FoldResult:
    c, tconfig, device = plan.config, plan.train_config(), _device(plan)
    if not model_class(c.model).selects_epochs:  # a sampler: nothing to choose, all of train
        fit_data, valid = split.train, None
    elif c.select_on == "test":
        fit_data, valid = split.train, split.test
    else:
        fit_data, valid = validation_split(split.train, fraction=c.valid_fraction, seed=c.seed)
    model = _new_model(plan, fit_data, device)
    rating_task = RatingTask(fit_data, valid, batch_size=c.batch_size or 1, device=device,
                             reg=c.reg or 0.0, clip=plan.dataset.rating_range, shard=shard,
                             compiled=bool(c.compile))
    history = fit(model, rating_task, tconfig, callbacks, store=stores("select"))
    chosen = best_epoch(history, rating_task.monitor, False)
    extra_seen = None if c.select_on == "test" or valid is None else valid
    if c.refit:  # train on train + validation: the chosen model goes on, or starts again
        fit_data, extra_seen = split.train, None
        refit_task = RatingTask(fit_data, None, batch_size=c.batch_size or 1, device=device,
                                reg=c.reg or 0.0, clip=plan.dataset.rating_range, shard=shard,
                                compiled=bool(c.compile))
        rates = [r["lr"] for r in history if "lr" in r and r["epoch"] <= chosen]
        _stage(callbacks, split.name, "refit")
        warm = WARM_REFIT.get(c.model) if model.trainer == "sgd" else None
        if warm:  # a few more epochs at the chosen epoch's rate
            epochs, rates = warm, rates[-1:]
        else:  # start again and run the chosen number, at the selection's rates
            model, epochs = _new_model(plan, fit_data, device), max(chosen, 1)
        refit_history = fit(model, refit_task, replace(tconfig, epochs=epochs, patience=0),
                            callbacks, lr_schedule=rates, store=stores("refit"))
        history += [{**r, "phase": "refit"} for r in refit_history]
    return FoldResult(split, model, fit_data, extra_seen, history, chosen)


def _fit_ranking(plan: Plan, split: Split, callbacks: list[Callback], stores,
                 shard: Shard) -> FoldResult:
    c, tconfig, device = plan.config, plan.train_config(), _device(plan)
    if c.select_on == "test":
        fit_data, valid, prefix = split.train, split.test, "test"
        valid_negatives = test_negatives(plan, split)
    else:
        fit_data, valid = validation_split(split.train, fraction=c.valid_fraction, seed=c.seed,
                                           per_user=True)
        valid_negatives = sample_test_negatives(split.train, valid, 99, seed=c.seed)
        prefix = "valid"
    torch.manual_seed(c.seed)  # parameter initialisation only; training uses generators
    model = make_model(plan, fit_data, split).to(device)
    ranking_task = RankingTask(fit_data, valid, batch_size=c.batch_size or 1, device=device,
                               num_neg=c.num_neg or 1, loss=c.loss or "bce", reg=c.reg or 0.0,
                               valid_negatives=valid_negatives, k=c.k, prefix=prefix,
                               shard=shard, compiled=bool(c.compile))
    # A model built from trained parts is a candidate before fine-tuning, too.
    history = fit(model, ranking_task, tconfig, callbacks, validate_start=bool(c.pretrain),
                  store=stores("select"))
    chosen = best_epoch(history, ranking_task.monitor, True)
    extra_seen = None if c.select_on == "test" else valid
    return FoldResult(split, model, fit_data, extra_seen, history, chosen)


def _device(plan: Plan) -> torch.device:
    return distributed.process_device(plan.config.device)


def make_model(plan: Plan, fit_data: Interactions, split: Split) -> Recommender:
    """A fresh model, or one initialised from trained runs (``--pretrain A,B``)."""
    c = plan.config
    if not c.pretrain:
        return build_model(c.model, fit_data, **plan.model_options())
    parts = []
    for run in c.pretrain.split(","):
        folder = RunDir(run.strip()).checkpoint(split.name)
        if not folder.is_dir():
            raise DataError(f"--pretrain: {run.strip()} has no checkpoint for split {split.name}")
        _, part, _ = load_checkpoint(folder)
        if (part.n_users, part.n_items) != (fit_data.n_users, fit_data.n_items):
            raise ConfigError(f"--pretrain: {run.strip()} was trained on other data")
        parts.append(part)
    return model_class(c.model).from_pretrained(*parts)


def test_negatives(plan: Plan, split: Split) -> np.ndarray:
    """The 99 negatives of each test row: the files' own, else drawn with a fixed seed."""
    if plan.split_spec == "given" and plan.dataset.test_negatives is not None:
        return plan.dataset.test_negatives
    return sample_test_negatives(plan.dataset.interactions, split.test, 99,
                                 seed=plan.config.seed)


def evaluate_split(model, plan: Plan, split: Split, seen: Interactions,
                   protocols: tuple[str, ...] = ("sampled", "full")) -> dict:
    """Test metrics of one split: RMSE/MAE, or the sampled protocol plus ``full`` ranking
    (those of ``protocols``)."""
    if plan.task == "explicit":
        return evaluate_ratings(model, split.test, clip=plan.dataset.rating_range)
    k = plan.config.k
    metrics = {}
    if "sampled" in protocols:
        metrics = evaluate_sampled(model, split.test, test_negatives(plan, split), k=k)
    if "full" in protocols:
        with threads():  # large products: worth the cores
            metrics["full"] = evaluate_full(model, seen, split.test, k=k)
    return metrics


def summarize(config: RunConfig, results: list[FoldResult]) -> dict:
    """``metrics.json``: what was run, the chosen epochs, epoch times and test metrics."""
    metrics = {
        "model": config.model, "dataset": config.dataset, "split": config.split,
        "task": config.task,
        "selection": "test (paper protocol)" if config.select_on == "test" else "validation",
        "best_epoch": results[0].best_epoch if len(results) == 1 else
        int(round(np.mean([r.best_epoch for r in results]))),
        "epoch_seconds": [round(r["seconds"], 4) for res in results for r in res.history
                          if "seconds" in r],
        "parameters": sum(p.numel() for p in results[0].model.parameters()),
        "test": results[0].test,
    }
    if len(results) > 1:
        metrics["folds"] = [{"split": r.split.name, "best_epoch": r.best_epoch, "test": r.test}
                            for r in results]
        metrics["test"] = mean_metrics([r.test for r in results])
        metrics["test_std"] = mean_metrics([r.test for r in results], np.std)
    return metrics


def mean_metrics(entries: list[dict], reduce=np.mean) -> dict:
    out = {}
    for key, value in entries[0].items():
        if isinstance(value, dict):
            out[key] = mean_metrics([e[key] for e in entries], reduce)
        else:
            out[key] = float(reduce([e[key] for e in entries]))
    return out


def evaluate_run(run_dir: str | Path, *, k: int | None = None, data_dir: str | None = None,
                 protocol: str | None = None) -> dict:
    """Reload every checkpoint of a run and score it again on its test data, on the CPU
    (a run trained on a GPU is scored on a machine without one); a ranking run by one
    ``protocol`` (``"sampled"`` or ``"full"``) where given, else both."""
    run = RunDir(run_dir)
    config = run.load_config()
    plan = make_plan(replace(config, k=k or config.k, data_dir=data_dir or config.data_dir,
                             device="cpu"))
    if protocol is not None and plan.task == "explicit":
        raise ConfigError(f"--protocol ranks items; {run_dir} is a rating (explicit) run, "
                          "scored by RMSE and MAE")
    protocols = (protocol,) if protocol else ("sampled", "full")
    check_vocab(run, plan.dataset)
    tests = []
    for split in plan.splits:
        _, model, seen = load_checkpoint(run.checkpoint(split.name),
                                         id_space=(plan.dataset.n_users, plan.dataset.n_items))
        tests.append(evaluate_split(model, plan, split, seen, protocols))
    return tests[0] if len(tests) == 1 else mean_metrics(tests)
