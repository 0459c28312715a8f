"""``deepmf compare``, ``tune``, ``reproduce`` and ``recipes``: many runs, one answer."""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from deepmf.cli.app import app, err
from deepmf.cli.commands import data_folder


def _say(line: str) -> None:
    err.print(line, markup=False, highlight=False, soft_wrap=True)


@contextmanager
def _hint_on_stop(hint: str, only_if: Path | None = None):
    """On Ctrl-C or SIGTERM (not on errors), say what was kept and how to go on."""
    try:
        yield
    except BaseException as stop:
        if not isinstance(stop, Exception) and (only_if is None or only_if.exists()):
            print(f"deepmf: {hint}", file=sys.stderr)
        raise


def _progress(quiet: bool, transient: bool = False):
    """A factory of progress callbacks labelled per run (none with ``--quiet``)."""
    from deepmf.progress import ProgressBar

    return lambda label: [] if quiet else [ProgressBar(err, label, transient=transient)]


@app.command()
def compare(
    models: str = typer.Option(..., help="comma-separated model names, e.g. mf,biased-mf"),
    dataset: str = typer.Option("ml-100k"),
    split: Optional[str] = typer.Option(None, show_default="the data's own, loo or u1"),
    task: Optional[str] = typer.Option(None, show_default="by model and data"),
    epochs: Optional[int] = typer.Option(None, min=1, show_default="each model's recipe"),
    seed: int = typer.Option(0, help="first seed"),
    seeds: int = typer.Option(1, min=1, help="seeds per model: SEED, SEED+1, ..."),
    jobs: int = typer.Option(1, min=1, help="runs trained at once, in separate processes"),
    select_on: str = typer.Option("valid"),
    sample_users: Optional[int] = typer.Option(None, help="keep N random users first"),
    data_dir: Optional[str] = typer.Option(None),
    out: Optional[str] = typer.Option(None, show_default="runs/compare-TIME",
                                      help="folder for the runs and the comparison"),
    tensorboard: bool = typer.Option(False, help="TensorBoard events in each run"),
    quiet: bool = typer.Option(False),
):
    """Train several models (each with several seeds) on one dataset and split; print one
    table and save comparison.csv, comparison.md, comparison.png and compare.json."""
    from deepmf.experiment.compare import best_models, cell
    from deepmf.experiment.compare import compare as run_compare
    from deepmf.experiment.config import RunConfig

    config = RunConfig(dataset=dataset, split=split, task=task, epochs=epochs, seed=seed,
                       select_on=select_on, data_dir=data_folder(data_dir),
                       sample_users=sample_users)
    folder = Path(out or f"runs/compare-{time.strftime('%Y%m%d-%H%M%S')}")
    names = [m.strip() for m in models.split(",") if m.strip()]
    progress = _progress(quiet)
    with _hint_on_stop(f"finished runs stay in {folder}; the same command with --out "
                       f"{folder} reuses them and resumes the interrupted one"):
        summary = run_compare(config, names, folder, seeds=seeds, jobs=jobs, say=_say,
                              callbacks=lambda model, run_seed: progress(
                                  f"{model} seed {run_seed}" if seeds > 1 else model),
                              tensorboard=tensorboard)
    best = best_models(summary)
    table = Table("model", *summary["metrics"], "seconds", "parameters",
                  title=f"{dataset} ({summary['split']}): test metrics, mean ± std over "
                        f"{seeds} seed{'s' if seeds > 1 else ''}")
    for name, row in summary["models"].items():
        cells = [f"[bold]{cell(row, m)}[/]" if best.get(m) == name else cell(row, m)
                 for m in summary["metrics"]]
        seconds = f"{row['seconds']:.1f}" + (f" ± {row['seconds_std']:.1f}" if seeds > 1 else "")
        table.add_row(name, *cells, seconds, f"{row['parameters']:,}")
    err.print(table)
    err.print(f"runs, comparison.md/.csv/.png and compare.json in [bold]{folder}[/]")
    print(json.dumps({k: summary[k] for k in ("dataset", "split", "task", "seeds", "models")},
                     indent=2))


@app.command()
def tune(
    model: str = typer.Option(..., help="the model whose settings to search"),
    dataset: str = typer.Option("ml-100k"),
    split: Optional[str] = typer.Option(None, show_default="the data's own, loo or u1"),
    task: Optional[str] = typer.Option(None, show_default="by model and data"),
    trials: int = typer.Option(..., min=1, help="trials to run now (a resumed study "
                                                "keeps its earlier ones)"),
    timeout: Optional[float] = typer.Option(None, min=1, help="stop starting trials after "
                                                              "S seconds"),
    space: Optional[str] = typer.Option(None, show_default="the model family's",
                                        help="TOML search space (see docs)"),
    seed: int = typer.Option(0),
    sample_users: Optional[int] = typer.Option(None, help="keep N random users first"),
    min_rating: Optional[float] = typer.Option(None, help="implicit: keep ratings >= this"),
    data_dir: Optional[str] = typer.Option(None),
    out: Optional[str] = typer.Option(None, show_default="runs/tune-MODEL-DATASET-SPLIT",
                                      help="study folder; the same folder resumes"),
    tensorboard: bool = typer.Option(False, help="a TensorBoard run per trial"),
    quiet: bool = typer.Option(False, help="no progress bars (trial lines stay)"),
):
    """Search a model's settings with Optuna on validation data carved from train, then
    retrain the best and score it once on test."""
    from deepmf.experiment.config import RunConfig
    from deepmf.experiment.tune import tune as run_tune

    config = RunConfig(model=model, dataset=dataset, split=split, task=task, seed=seed,
                       sample_users=sample_users, min_rating=min_rating,
                       data_dir=data_folder(data_dir))
    name = f"tune-{model}-{dataset}-{split or 'default'}".replace(":", "_").replace("/", "_")
    folder = Path(out or Path("runs") / name)
    trial_bars = _progress(quiet or not err.is_terminal, transient=True)
    best_bar = _progress(quiet)
    with _hint_on_stop(f"the study in {folder} keeps its finished trials; the same "
                       "command resumes it", only_if=folder / "study.db"):
        summary = run_tune(config, folder, trials=trials, timeout=timeout, space_file=space,
                           callbacks=lambda label: (best_bar if label.startswith("best")
                                                    else trial_bars)(label),
                           say=_say, tensorboard=tensorboard)
    err.print(f"best settings in [bold]{folder / 'config.toml'}[/], "
              f"tune.json, history.png and importance.png in [bold]{folder}[/]")
    print(json.dumps(summary, indent=2))


@app.command()
def reproduce(
    table: str = typer.Argument(..., help="ncf or deepcf (deepmf recipes lists them)"),
    datasets: Optional[str] = typer.Option(None, "--datasets", "--dataset",
                                           show_default="every dataset of the table",
                                           help="e.g. ml-1m,AMusic"),
    rows: Optional[str] = typer.Option(None, show_default="all",
                                       help="rows to train (their parts come along)"),
    select: str = typer.Option("valid,test", help="selection protocols: valid, test"),
    data_dir: Optional[str] = typer.Option(None),
    out: Optional[str] = typer.Option(None, show_default="runs/reproduce-TABLE",
                                      help="folder of the runs; the same folder reuses them"),
    tensorboard: bool = typer.Option(False, help="TensorBoard events in each run"),
    quiet: bool = typer.Option(False),
):
    """Train a paper's table from the shipped recipes (pre-training chains included) and
    print ours beside the published numbers."""
    from deepmf.experiment.reproduce import columns, tables_for
    from deepmf.experiment.reproduce import reproduce as run_reproduce

    chosen = tables_for(table, _names(datasets))
    folder = Path(out or Path("runs") / f"reproduce-{table}")
    summaries = []
    for recipes in chosen:
        with _hint_on_stop(f"finished runs stay in {folder}; the same command reuses them"):
            summary = run_reproduce(recipes, folder, rows=_names(rows),
                                    selections=tuple(_names(select) or ()),
                                    data_dir=data_folder(data_dir),
                                    callbacks=_progress(quiet), say=_say,
                                    tensorboard=tensorboard)
        shown = Table("row", "ours, valid-selected", "ours, test-selected", "README",
                      "published", title=f"{summary['title']}: {summary['metric']}")
        for entry in summary["rows"]:
            shown.add_row(*columns(entry)[:5])
        err.print(shown)
        summaries.append(summary)
    err.print(f"runs, reproduce.md and reproduce.json in [bold]{folder}[/]")
    print(json.dumps(summaries, indent=2))


def _names(text: str | None) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


@app.command()
def recipes(
    model: Optional[str] = typer.Option(None, help="show this model's default settings "
                                                   "instead"),
    task: Optional[str] = typer.Option(None, show_default="the model's own"),
):
    """List the shipped recipes (deepmf train --recipe NAME; deepmf reproduce TABLE)."""
    from deepmf.experiment.reproduce import load_tables

    if model is not None:
        from deepmf.experiment.recipes import TRAINING, recipe
        from deepmf.models import EXPLICIT_MODELS, model_class

        model_class(model)
        chosen = task or ("explicit" if model in EXPLICIT_MODELS else "implicit")
        print(json.dumps({**TRAINING, **recipe(model, chosen)}, indent=2))
        return
    shown = Table(title="deepmf train --recipe NAME; deepmf reproduce TABLE trains a "
                  "table's rows in order", title_justify="left")
    shown.add_column("recipe", no_wrap=True)
    for name in ("model", "settings", "published"):
        shown.add_column(name)
    for key, recipes_table in load_tables().items():
        for row in recipes_table.rows:
            settings = " ".join(f"{k}={v}" for k, v in row.settings.items())
            if row.pretrain:
                settings = (settings + " " if settings else "") + \
                    f"from {'+'.join(row.pretrain)}"
            published = " / ".join(f"{v:.4f}" for v in row.published if v == v) \
                if row.published else ""
            shown.add_row(f"{key}/{row.name}", row.model, settings, published)
    Console().print(shown)
