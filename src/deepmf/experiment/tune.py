"""``deepmf tune``: search a model's settings with Optuna on validation data only.

::

    DIR/study.db        the Optuna study (SQLite): the same command again resumes it
    DIR/trials.csv      one row per trial: number, state, value, settings, epochs
    DIR/best/           the best setting retrained and scored once on test (a run directory)
    DIR/config.toml     the best settings, resolved: ``deepmf train --config`` accepts it
    DIR/tune.json       best settings and validation value, trial counts, ``test`` metrics
    DIR/history.png     every trial's validation value and the best so far
    DIR/importance.png  how much each setting mattered (PED-ANOVA, finished trials)
    DIR/tensorboard/    with ``--tensorboard``: one TensorBoard run per trial (and the
                        best run's in ``DIR/best/tensorboard/``)

Each trial trains on the split's training data (the first split's, for ``folds``) less a
validation part carved from it (as ``deepmf train`` does to choose epochs) and is worth
its best validation value over the epochs; the test data is never looked at until the
best setting is retrained. A trial whose validation metric falls in the worst third of
the earlier trials' at the same epoch is pruned. The first trial of a new study is the
model's recipe (its values of the searched settings, a value outside a range moved to its
nearest end), so the best setting is never worse than the defaults on validation data
(exactly so when the space holds the recipe).
"""

from __future__ import annotations

import inspect
import json
import shutil
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from deepmf.errors import ConfigError, DataError
from deepmf.experiment.config import RunConfig
from deepmf.experiment.plan import Plan, check_settings, make_plan, resolve, table_rows
from deepmf.experiment.plots import plot_importances, plot_tuning_history
from deepmf.experiment.reuse import train_or_reuse
from deepmf.experiment.run import fit_split
from deepmf.experiment.rundir import RunDir
from deepmf.experiment.space import Param, check_space, default_space, read_space
from deepmf.experiment.study import open_study, trial_line, trial_rows
from deepmf.models import model_class
from deepmf.train import Callback, TrainingDiverged

Callbacks = Callable[[str], list[Callback]]


def load_optuna():
    """Optuna, quiet; a one-line error when the ``tune`` extra is not installed."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("deepmf tune needs Optuna: pip install 'deepmf[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


@dataclass
class Search:
    """What every trial shares: the data, the settings before the search, the space."""

    plan: Plan
    base: RunConfig
    space: dict[str, Param]
    monitor: str
    direction: str

    def resolved(self, settings: dict, *, trial: bool = False) -> RunConfig:
        """The run's settings with ``settings`` applied and the recipe filling in the
        rest; a trial skips the explicit refit (it is judged on validation data)."""
        config = replace(self.base, **settings)
        check_settings(config)
        config = resolve(config, len(self.plan.splits[0].train),
                         n_rows=table_rows(self.plan.dataset))
        return replace(config, refit=False) if trial and config.refit else config

    def recipe_point(self) -> dict:
        """The recipe's values of the searched settings (a model option the recipe leaves
        unset: the model's own default), as near as the space allows."""
        resolved = self.resolved({})
        defaults = {name: p.default for name, p in
                    inspect.signature(model_class(resolved.model)).parameters.items()}
        point = {name: param.nearest(getattr(resolved, name) if getattr(resolved, name)
                                     is not None else defaults.get(name))
                 for name, param in self.space.items()}
        return {name: self.space[name].encode(v) for name, v in point.items() if v is not None}

    def trial_plan(self, settings: dict) -> Plan:
        return Plan(self.resolved(settings, trial=True), self.plan.dataset, self.plan.splits)

    def best_of(self, history: list[dict]) -> float:
        values = [r[self.monitor] for r in history if self.monitor in r]
        return (max if self.direction == "maximize" else min)(values)


class PruneTrial(Callback):
    """Report each epoch's best validation value so far to the trial; stop a poor trial
    by raising ``optuna.TrialPruned``."""

    def __init__(self, trial, search: Search):
        self.trial, self.search, self.history = trial, search, []

    def on_epoch_end(self, record, model):
        if self.search.monitor not in record:
            return
        self.history.append(record)
        self.trial.report(self.search.best_of(self.history), record["epoch"])
        if self.trial.should_prune():
            import optuna

            self.trial.set_user_attr("epochs", record["epoch"])
            raise optuna.TrialPruned(f"pruned at epoch {record['epoch']}")


def prepare(config: RunConfig, space_file: str | None) -> Search:
    """Load the data once, fix task and split, and check the search space."""
    if config.select_on != "valid":
        raise ConfigError("deepmf tune chooses settings on validation data only")
    plan = make_plan(config)
    base = replace(config, task=plan.task, split=plan.split_spec, out=None)
    if space_file:
        space, fixed = read_space(space_file)
    else:
        space, fixed = default_space(config.model, plan.task), {}
    check_space(space, fixed, base, space_file or f"the default space of {config.model}")
    monitor = "valid_rmse" if plan.task == "explicit" else f"valid_hr@{config.k}"
    return Search(plan, replace(base, **fixed), space, monitor,
                  "minimize" if plan.task == "explicit" else "maximize")


def objective(search: Search, callbacks: Callbacks, board_folder: Path | None):
    """The function Optuna calls per trial: train, return the best validation value."""

    def run_trial(trial) -> float:
        settings = {name: param.suggest(trial, name) for name, param in search.space.items()}
        trial.set_user_attr("settings", _jsonable(settings))
        plan = search.trial_plan(settings)
        pruner = PruneTrial(trial, search)
        extra = list(callbacks(f"trial {trial.number}"))
        board = None
        if board_folder is not None:
            from deepmf.experiment.tracking import TensorBoardLogger

            board = TensorBoardLogger(board_folder / f"trial-{trial.number:04d}",
                                      per_split=False)
        try:
            result = fit_split(plan, plan.splits[0], [pruner, *extra, *filter(None, [board])])
        finally:
            if board is not None and pruner.history:
                board.log_hparams(settings, {f"result/best_{search.monitor}":
                                             search.best_of(pruner.history)})
        trial.set_user_attr("epochs", len([r for r in result.history if "loss" in r]))
        trial.set_user_attr("best_epoch", result.best_epoch)
        return search.best_of(result.history)

    return run_trial


def tune(config: RunConfig, out: str | Path, *, trials: int, timeout: float | None = None,
         space_file: str | None = None, callbacks: Callbacks = lambda label: [],
         say: Callable[[str], None] = print, tensorboard: bool = False) -> dict:
    """Run ``trials`` more trials of the study in ``out``, then retrain the best setting
    and score it on test; write the files listed in the module docstring."""
    if trials < 1:
        raise ConfigError("--trials must be at least 1")
    optuna = load_optuna()
    out = Path(out)
    search = prepare(config, space_file)
    study = open_study(optuna, out, search, say)
    started = len(study.trials)
    if not started:  # trial 0 is the recipe: the study can only end above the defaults
        study.enqueue_trial(search.recipe_point())
    say(f"tuning {config.model} on {search.plan.dataset.name} ({search.plan.split_spec}): "
        f"{trials} trials, {search.monitor} on validation data carved from train")
    study.optimize(objective(search, callbacks, out / "tensorboard" if tensorboard else None),
                   n_trials=trials, timeout=timeout, catch=(TrainingDiverged,),
                   callbacks=[lambda s, t: say(trial_line(s, t, search, started, trials))])
    return finish(study, search, out, callbacks, say, tensorboard)


def finish(study, search: Search, out: Path, callbacks: Callbacks, say,
           tensorboard: bool = False) -> dict:
    """Retrain the best trial's setting on the whole split and write the results."""
    from optuna.trial import TrialState

    complete = study.get_trials(states=(TrialState.COMPLETE,))
    if not complete:
        raise DataError(f"no trial of the study in {out} finished (all pruned or failed); "
                        "run more trials or widen the space")
    best = study.best_trial
    settings = best.user_attrs["settings"]
    config = search.resolved(_settings(settings))
    say(f"best: trial {best.number}, {search.monitor} {best.value:.4f}; retraining it and "
        "scoring it once on test")
    _, metrics = train_or_reuse(config, out / "best", callbacks(f"best (trial {best.number})"),
                                say=say, replace_other=True, tensorboard=tensorboard)
    counts = {state.name.lower(): len(study.get_trials(states=(state,)))
              for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    summary = {
        "model": config.model, "dataset": config.dataset, "split": config.split,
        "task": config.task, "objective": search.monitor, "direction": search.direction,
        "best_trial": best.number, "best_value": best.value, "best_params": settings,
        "best_epoch": best.user_attrs.get("best_epoch"),
        "n_trials": counts["complete"] + counts["pruned"], "trials": counts,
        "run": str(out / "best"), "test": metrics["test"],
    }
    shutil.copyfile(RunDir(out / "best").config, out / "config.toml")
    _write(out / "trials.csv", trial_rows(study).to_csv(index=False))
    plot_tuning_history(out / "history.png", study, search.monitor)
    summary["importance"] = plot_importances(out / "importance.png", study)
    _write(out / "tune.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _settings(saved: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()}


def _jsonable(settings: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)

