"""Several models on one dataset and split, each with several seeds: one table, one plot.

::

    DIR/MODEL/seed-S/    one run directory per model and seed
    DIR/comparison.csv   one row per model: mean and std of every test metric, seconds,
                         parameters
    DIR/comparison.md    the same as a Markdown table, mean ± std, the best in bold
    DIR/comparison.png   a panel per metric (bars, error bars, values) and the validation
                         curves of every model on one axis
    DIR/compare.json     every run's numbers and the summary

Running the same command again reuses the finished runs and resumes interrupted ones.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from deepmf.errors import ConfigError
from deepmf.experiment.config import RunConfig
from deepmf.experiment.plots import LOWER_IS_BETTER, plot_comparison
from deepmf.experiment.reuse import train_or_reuse
from deepmf.experiment.rundir import RunDir
from deepmf.models import model_class
from deepmf.train import Callback

Callbacks = Callable[[str, int], list[Callback]]
"""Callbacks for one run: (model, seed) -> list."""


def headline(metrics: dict) -> dict[str, float]:
    """The flat test metrics worth a column: RMSE/MAE, or sampled and full HR/NDCG/MAP."""
    test = metrics["test"]
    row = {k: v for k, v in test.items() if isinstance(v, float)}
    row.update({f"full {k}": v for k, v in test.get("full", {}).items()})
    return row


def main_metrics(task: str, k: int = 10) -> list[str]:
    """What the table and the plot show: RMSE and MAE, or HR, NDCG and MAP (sampled) and
    HR and NDCG (full ranking)."""
    if task == "explicit":
        return ["rmse", "mae"]
    return [f"hr@{k}", f"ndcg@{k}", f"map@{k}", f"full hr@{k}", f"full ndcg@{k}"]


def compare(config: RunConfig, models: list[str], out: str | Path, *, seeds: int = 1,
            jobs: int = 1, callbacks: Callbacks = lambda model, seed: [],
            say: Callable[[str], None] = print, tensorboard: bool = False) -> dict:
    """Train each model with ``config``'s data settings and ``seeds`` seeds (``config.seed``
    and the next ones) into ``out``; summarise and plot. ``jobs`` > 1 trains that many
    runs at once, in separate processes (one line per finished run, no callbacks).
    ``tensorboard``: one TensorBoard run per trained model, in its run directory."""
    if not models:
        raise ConfigError("--models needs at least one model name")
    if seeds < 1 or jobs < 1:
        raise ConfigError("--seeds and --jobs must be at least 1")
    for name in models:
        model_class(name)  # every name is checked before anything trains
    out = Path(out)
    todo = [(name, config.seed + i) for name in models for i in range(seeds)]
    configs = [replace(config, model=name, seed=seed) for name, seed in todo]
    folders = [out / name / f"seed-{seed}" for name, seed in todo]
    if jobs == 1:
        results = [train_or_reuse(c, f, callbacks(c.model, c.seed), say=say,
                                  tensorboard=tensorboard) for c, f in zip(configs, folders)]
    else:
        from deepmf.experiment.parallel import train_in_processes

        results = train_in_processes(configs, folders, jobs, say, tensorboard)
    runs = [_run_row(c, f, metrics) for c, f, (_, metrics) in zip(configs, folders, results)]
    summary = summarize(config, models, runs)
    write_comparison(out, summary)
    return summary


def _run_row(config: RunConfig, folder: Path, metrics: dict) -> dict:
    return {"model": config.model, "seed": config.seed, "run": str(folder),
            "task": metrics["task"], "split": metrics["split"],
            "best_epoch": metrics["best_epoch"], "parameters": metrics.get("parameters"),
            "seconds": round(sum(metrics["epoch_seconds"]), 2), **headline(metrics)}


def summarize(config: RunConfig, models: list[str], runs: list[dict]) -> dict:
    """Mean and standard deviation over seeds of each model's numbers."""
    table = {}
    for name in models:
        rows = [r for r in runs if r["model"] == name]
        entry = {"task": rows[0]["task"], "split": rows[0]["split"], "seeds": len(rows),
                 "parameters": rows[0]["parameters"]}
        for key in [k for k, v in rows[0].items() if isinstance(v, float) or k == "best_epoch"]:
            values = [r[key] for r in rows]
            entry[key] = float(np.mean(values))
            entry[f"{key}_std"] = float(np.std(values))
        table[name] = entry
    task = runs[0]["task"]
    return {"dataset": config.dataset, "split": runs[0]["split"], "task": task,
            "seeds": sorted({r["seed"] for r in runs}), "metrics": main_metrics(task, config.k),
            "models": table, "runs": runs}


def best_models(summary: dict) -> dict[str, str]:
    """The model with the best mean of each metric shown (lower RMSE/MAE, higher else)."""
    best = {}
    for metric in summary["metrics"]:
        values = {m: row[metric] for m, row in summary["models"].items() if metric in row}
        if values:
            pick = min if metric.split()[-1] in LOWER_IS_BETTER else max
            best[metric] = pick(values, key=values.get)
    return best


def cell(row: dict, key: str) -> str:
    """``0.9146 ± 0.0012`` (the ± only with several seeds)."""
    if key not in row:
        return ""
    std = row.get(f"{key}_std", 0.0)
    return f"{row[key]:.4f}" + (f" ± {std:.4f}" if row.get("seeds", 1) > 1 else "")


def markdown(summary: dict) -> str:
    best = best_models(summary)
    head = ["model", *summary["metrics"], "seconds", "parameters"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in summary["models"].items():
        cells = [f"**{cell(row, m)}**" if best.get(m) == name else cell(row, m)
                 for m in summary["metrics"]]
        seconds = f"{row['seconds']:.1f}" + (f" ± {row['seconds_std']:.1f}"
                                             if row["seeds"] > 1 else "")
        lines.append("| " + " | ".join([f"`{name}`", *cells, seconds,
                                        f"{row['parameters']:,}"]) + " |")
    seeds = ", ".join(map(str, summary["seeds"]))
    return (f"{summary['dataset']}, split {summary['split']}: test metrics, mean ± std over "
            f"seeds {seeds}\n\n" + "\n".join(lines) + "\n")


def write_comparison(out: Path, summary: dict) -> None:
    """``comparison.csv``, ``comparison.md``, ``comparison.png`` and ``compare.json``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "comparison.md").write_text(markdown(summary))
    keys = list(dict.fromkeys(k for row in summary["models"].values() for k in row))
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, ["model", *keys])
    writer.writeheader()
    writer.writerows({"model": name, **row} for name, row in summary["models"].items())
    (out / "comparison.csv").write_text(text.getvalue())
    curves = {name: [load_history(r["run"]) for r in summary["runs"] if r["model"] == name]
              for name in summary["models"]}
    seeds = len(summary["seeds"])
    title = (f"{summary['dataset']}, split {summary['split']}: test metrics, "
             + (f"mean ± std over {seeds} seeds" if seeds > 1 else "one seed"))
    plot_comparison(out / "comparison.png", summary["models"], curves, summary["metrics"],
                    title=title)


def load_history(run: str | Path) -> list[dict]:
    """The selection phase of a run's first split, from its ``history.csv``."""
    with RunDir(run).history.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    first = rows[0]["split"] if rows else None
    history = []
    for row in rows:
        if row["split"] == first and row["phase"] == "select":
            history.append({k: int(v) if k == "epoch" else float(v)
                            for k, v in row.items() if v and k not in ("split", "phase")})
    return history
