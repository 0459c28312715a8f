"""The Optuna study behind ``deepmf tune``: opened or resumed from ``DIR/study.db``,
checked to be about the same model and data, and reported one line per trial."""

from __future__ import annotations

from pathlib import Path

from deepmf.errors import ConfigError, DataError

STUDY_FILE = "study.db"
STUDY_NAME = "deepmf-tune"
IDENTITY = ("model", "dataset", "split", "task", "seed", "sample_users", "min_rating",
            "valid_fraction", "k")
"""Settings that change what a trial's value means; a study keeps them fixed."""
PRUNE_KEEP = 66.0
"""A trial goes on while its best validation value so far is within the best two thirds
of the earlier trials' at the same epoch (from the 5th epoch and the 5th trial on). Tuning
biased-mf on ml-100k u1 pruned 23 of 30 trials, each at a validation RMSE of 0.935 or
worse when stopped (the best finished at 0.9227); the 30 trials took 389 s in all."""


def open_study(optuna, folder: Path, search, say):
    """Create the study in ``folder``, or load it and say how far it got.

    A study of another model, dataset or split, a file that is not a study and a folder
    that holds something else are refused in one line. Trials left running by a process
    that died (killed, or the machine went down) are marked failed, so they are not
    mistaken for running ones; the trial interrupted by Ctrl-C is already failed.
    """
    path = folder / STUDY_FILE
    existed = path.is_file()
    if not existed and folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"{folder} exists and holds no study ({STUDY_FILE}); choose "
                          "another --out")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        study = optuna.create_study(
            storage=f"sqlite:///{path.resolve()}", study_name=STUDY_NAME,
            direction=search.direction, load_if_exists=True,
            pruner=optuna.pruners.PercentilePruner(PRUNE_KEEP, n_startup_trials=4,
                                                   n_warmup_steps=4))
    except Exception as error:  # SQLAlchemy and Optuna raise many kinds for a bad file
        raise DataError(f"{path}: not an Optuna study deepmf can open "
                        f"({' '.join(str(error).split())[:100]})") from None
    identity = {k: getattr(search.base, k) for k in IDENTITY}
    stored = study.user_attrs.get("deepmf")
    if stored is None:
        study.set_user_attr("deepmf", identity)
    elif stored != identity:
        differ = [k for k in IDENTITY if stored.get(k) != identity[k]]
        raise ConfigError(
            f"{path} holds a study of {stored.get('model')} on {stored.get('dataset')} "
            f"(split {stored.get('split')}); it differs in {', '.join(differ)}: tune into "
            "another --out")
    _fail_stale(study, optuna)
    study.sampler = optuna.samplers.TPESampler(seed=search.base.seed + len(study.trials),
                                               n_startup_trials=8)
    if existed and study.trials:
        say(f"resuming the study in {path}: {_counts(study, optuna)}"
            + (f", best {search.monitor} {study.best_value:.4f} (trial "
               f"{study.best_trial.number})" if _has_complete(study, optuna) else ""))
    return study


def _fail_stale(study, optuna) -> None:
    running = optuna.trial.TrialState.RUNNING
    for trial in study.get_trials(states=(running,)):
        study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)


def _has_complete(study, optuna) -> bool:
    return bool(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))


def _counts(study, optuna) -> str:
    states = optuna.trial.TrialState
    parts = [(len(study.get_trials(states=(s,))), s.name.lower())
             for s in (states.COMPLETE, states.PRUNED, states.FAIL)]
    return f"{len(study.trials)} trials so far (" + ", ".join(
        f"{n} {name}" for n, name in parts if n) + ")"


def trial_line(study, trial, search, started: int, trials: int) -> str:
    """One line for a finished trial: its value or fate, the best so far, its settings."""
    state = trial.state.name.lower()
    n = trial.number - started + 1
    head = f"trial {trial.number} ({n}/{trials})"
    settings = "  ".join(f"{k}={_short(v)}" for k, v in trial.user_attrs.get(
        "settings", {}).items())
    seconds = (trial.datetime_complete - trial.datetime_start).total_seconds() \
        if trial.datetime_complete and trial.datetime_start else 0.0
    if state == "complete":
        what = f"{search.monitor} {trial.value:.4f}"
    elif state == "pruned":
        steps = trial.intermediate_values
        last = steps[max(steps)] if steps else float("nan")
        what = f"pruned at epoch {max(steps) if steps else 0} ({last:.4f})"
    else:
        what = "failed"
    best = ""
    try:
        best = f"  best {study.best_value:.4f} (trial {study.best_trial.number})"
    except ValueError:  # no complete trial yet
        pass
    return f"{head}: {what}{best}  {settings}  {seconds:.0f}s"


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return "-".join(map(str, value))
    return str(value)


def trial_rows(study):
    """A table of the study's trials (pandas): number, state, value, settings, epochs."""
    import pandas as pd

    rows = []
    for trial in study.trials:
        rows.append({"trial": trial.number, "state": trial.state.name.lower(),
                     "value": trial.value, "epochs": trial.user_attrs.get("epochs"),
                     "best_epoch": trial.user_attrs.get("best_epoch"),
                     **{k: _short(v) for k, v in trial.user_attrs.get("settings", {}).items()}})
    return pd.DataFrame(rows)
