"""``deepmf train``, ``evaluate`` and ``datasets``: thin shells over the library."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import fields
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from deepmf.cli.app import app, err
from deepmf.errors import DeepMFError

_SIZES = re.compile(r"\s*[0-9]+(\s*[,-]\s*[0-9]+)*\s*")


def _layers(text: str | None, flag: str = "--layers"):
    """``64,32,16`` (or ``64-32-16``) as a tuple of ints; anything else is refused."""
    if text is None:
        return None
    if not _SIZES.fullmatch(text):
        raise DeepMFError(f"{flag} must be sizes like 64,32,16 (got {text!r})")
    return tuple(int(x) for x in re.split(r"[,-]", text))


def _span(text: str | None):
    """``LOW,HIGH`` as two floats (``--rating-range 1,5``)."""
    if text is None:
        return None
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise DeepMFError(f"--rating-range must be LOW,HIGH such as 1,5 (got {text!r})") from None
    return low, high


def _run_config(config: str | None, flags: dict):
    """A shipped ``--recipe``'s settings, then the ``--config`` file's, then the flags that
    were given, each overriding the one before."""
    from deepmf.experiment.config import LAYER_FIELDS, RunConfig, read_config

    recipe, pretrain = flags.get("recipe"), flags.get("pretrain")
    flags = {k: v for k, v in flags.items() if k in {f.name for f in fields(RunConfig)}}
    for name in LAYER_FIELDS:
        flags[name] = _layers(flags[name], f"--{name.replace('_', '-')}")
    flags["rating_range"] = _span(flags["rating_range"])
    data_folder(flags["data_dir"])
    values = {}
    if recipe:
        from deepmf.experiment.reproduce import recipe_settings

        values.update(recipe_settings(recipe, pretrain))
    values.update(read_config(config) if config else {})
    values.update({k: v for k, v in flags.items() if v is not None})
    return RunConfig(**values)


def _resume_only(config: str | None, flags: dict) -> None:
    """``--resume`` takes only where the data is, the device and the threads."""
    from deepmf.experiment.config import RunConfig

    names = {f.name for f in fields(RunConfig)} - {"data_dir", "device", "threads"}
    extra = [k for k, v in flags.items() if k in names and v is not None]
    given = [f"--{k.replace('_', '-')}" for k in extra] + \
        [flag for flag, value in (("--config", config), ("--recipe", flags.get("recipe")))
         if value]
    if given:
        shown = ", ".join(given)
        raise DeepMFError(f"--resume continues a run with its own settings; drop {shown}")


def data_folder(data_dir: str | None) -> str | None:
    """``--data-dir`` as given, after checking it names a folder (a typo would otherwise
    send the search elsewhere, or start a download)."""
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise DeepMFError(f"--data-dir {data_dir}: no such folder")
    return data_dir


@app.command()
def train(
    model: Optional[str] = typer.Option(None, help="mf, biased-mf, deepmf, ..."),
    dataset: Optional[str] = typer.Option(None, help="ml-100k, ml-1m, ncf:PATH/NAME, a file"),
    split: Optional[str] = typer.Option(None, help="u1..u5, ua, ub, folds, given, random:P, "
                                                   "loo, time:P"),
    task: Optional[str] = typer.Option(None, help="explicit or implicit"),
    epochs: Optional[int] = typer.Option(None, min=1),
    batch_size: Optional[int] = typer.Option(None, min=1),
    lr: Optional[float] = typer.Option(None),
    dim: Optional[int] = typer.Option(None, min=1, help="latent factors"),
    layers: Optional[str] = typer.Option(None, help="hidden sizes, e.g. 64,32,16"),
    user_layers: Optional[str] = typer.Option(None, help="dmf/cfnet user tower, e.g. 512,64"),
    item_layers: Optional[str] = typer.Option(None, help="dmf/cfnet item tower, e.g. 1024,64"),
    dropout: Optional[float] = typer.Option(None, min=0.0, max=0.99),
    unobserved_weight: Optional[float] = typer.Option(None, help="ials: weight of the pairs "
                                                                 "a user did not interact with"),
    samples: Optional[int] = typer.Option(None, help="bayes-mf: Gibbs samples averaged"),
    burn_in: Optional[int] = typer.Option(None, help="bayes-mf: sweeps discarded first"),
    implicit_items: Optional[bool] = typer.Option(
        None, "--implicit-items/--no-implicit-items", help="bayes-mf: SVD++ user sets"),
    implicit_users: Optional[bool] = typer.Option(
        None, "--implicit-users/--no-implicit-users", help="bayes-mf: 'flipped' item sets"),
    days: Optional[bool] = typer.Option(None, "--days/--no-days",
                                        help="bayes-mf: the day of the rating as a field"),
    user_noise: Optional[bool] = typer.Option(None, "--user-noise/--no-user-noise",
                                              help="bayes-mf: a noise scale per user"),
    side_features: Optional[bool] = typer.Option(
        None, "--side-features/--no-side-features",
        help="bayes-mf: user and item labels the data ships (age, gender, genres...)"),
    num_neg: Optional[int] = typer.Option(None, min=1, help="negatives per positive"),
    reg: Optional[float] = typer.Option(None, min=0.0, help="L2 on the rows each batch uses"),
    weight_decay: Optional[float] = typer.Option(None, min=0.0),
    optimizer: Optional[str] = typer.Option(None, help="adam, lazy-adam (large logs), adamw, "
                                                       "sgd, adagrad"),
    patience: Optional[int] = typer.Option(None, min=0, help="early-stopping patience; 0 off"),
    lr_decay: Optional[float] = typer.Option(None, help="lr factor after an epoch without "
                                                        "improvement; 1 off"),
    loss: Optional[str] = typer.Option(None, help="mse, bce, bpr"),
    seed: Optional[int] = typer.Option(None),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda, mps"),
    threads: Optional[int] = typer.Option(None, help="CPU threads for training (default: "
                                                     "$DEEPMF_THREADS, else 1; the free "
                                                     "cores for dmf, cfnet-ml, cfnet)"),
    compile: Optional[bool] = typer.Option(None, "--compile/--no-compile",
                                           help="mf, biased-mf, gmf, mlp, neumf: compiled CPU "
                                                "steps (a C++ "
                                                "compiler; pays on epochs of 2^28+ "
                                                "looked-up values)"),
    select_on: Optional[str] = typer.Option(None, help="valid (default) or test (papers)"),
    refit: Optional[bool] = typer.Option(None, "--refit/--no-refit",
                                         help="explicit: retrain on train+valid"),
    valid_fraction: Optional[float] = typer.Option(None),
    k: Optional[int] = typer.Option(None, min=1, help="cut-off of the ranking metrics"),
    min_rating: Optional[float] = typer.Option(None, help="implicit: keep ratings >= this"),
    sample_users: Optional[int] = typer.Option(None, help="keep N random users (seeded) and "
                                                          "all their rows: a quick first run"),
    pretrain: Optional[str] = typer.Option(None, help="RUN_A,RUN_B to initialise from"),
    data_dir: Optional[str] = typer.Option(None, help="where datasets are looked up first"),
    sep: Optional[str] = typer.Option(None, help="delimiter of a log file"),
    user_col: Optional[str] = typer.Option(None),
    item_col: Optional[str] = typer.Option(None),
    rating_col: Optional[str] = typer.Option(None),
    time_col: Optional[str] = typer.Option(None),
    rating_range: Optional[str] = typer.Option(None, help="LOW,HIGH valid ratings of a log "
                                                          "file (default: their own span)"),
    config: Optional[str] = typer.Option(None, help="TOML file of settings; flags override"),
    recipe: Optional[str] = typer.Option(None, help="a shipped recipe, e.g. ncf-ml-1m/gmf-32 "
                                                    "(deepmf recipes); --config, flags override"),
    out: Optional[str] = typer.Option(None, help="run directory (default runs/NAME-TIME)"),
    resume: Optional[str] = typer.Option(None, help="RUN_DIR: continue an interrupted run from "
                                                    "its last finished epoch"),
    quiet: bool = typer.Option(False, help="no progress bar"),
    tensorboard: bool = typer.Option(False, help="TensorBoard events in RUN/tensorboard/"),
):
    """Train a model, evaluate it on test data and save a run directory."""
    if resume is not None:
        _resume_only(config, locals())
    run_config = _run_config(config, locals())  # checked before PyTorch loads
    from deepmf.experiment.run import train_run
    from deepmf.experiment.rundir import RunDir
    from deepmf.experiment.tracking import TensorBoardLogger
    from deepmf.progress import ProgressBar

    callbacks = [] if quiet else [ProgressBar(err)]
    board = TensorBoardLogger() if tensorboard else None
    started: list = []

    def announce(path):
        started.append(path)
        if board is not None:
            board.attach_run(path)

    try:
        out_dir, metrics = train_run(run_config, [*callbacks, *filter(None, [board])],
                                     resume=resume, announce=announce)
    except BaseException as stop:
        if started and not isinstance(stop, (DeepMFError, Exception)):  # Ctrl-C, SIGTERM
            print(f"deepmf: the run is saved up to its last finished epoch; "
                  f"deepmf train --resume {started[0]} continues it", file=sys.stderr)
        raise
    if not metrics:  # another process of a torchrun job: rank 0 reports
        return
    if board is not None:
        board.log_run(RunDir(out_dir).load_config(), metrics)
    err.print(f"run saved to [bold]{out_dir}[/]")
    print(json.dumps(metrics["test"], indent=2))


@app.command()
def evaluate(
    run_dir: str = typer.Argument(..., help="a run directory written by deepmf train"),
    protocol: Optional[str] = typer.Option(None, help="sampled or full (default both)"),
    k: Optional[int] = typer.Option(None, min=1),
    data_dir: Optional[str] = typer.Option(None),
):
    """Reload a run's checkpoints and score them on its test data again."""
    from deepmf.experiment.guards import finite_metrics
    from deepmf.experiment.run import evaluate_run

    if protocol not in (None, "sampled", "full"):
        raise DeepMFError("--protocol must be sampled or full")
    metrics = evaluate_run(run_dir, k=k, data_dir=data_folder(data_dir), protocol=protocol)
    finite_metrics(metrics, f"evaluating {run_dir}")
    print(json.dumps(metrics["full"] if protocol == "full" else metrics, indent=2))


@app.command()
def datasets(data_dir: Optional[str] = typer.Option(None)):
    """List known datasets and where each is found."""
    from deepmf.readers import known_datasets

    table = Table("dataset", "found at", "description")
    for entry in known_datasets(data_folder(data_dir)):
        table.add_row(entry["name"], entry["found"] or "[dim]not found[/]", entry["description"])
    Console().print(table)
