"""The run directory: config, metrics, history, curves, checkpoints and vocabularies.

A run is written into a hidden sibling folder and renamed into place only when complete,
so a failed or interrupted run never leaves a directory that looks finished.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from deepmf.checkpoint import CHECKPOINTS, load_checkpoint, save_checkpoint
from deepmf.config import RunConfig, read_config
from deepmf.data import Dataset
from deepmf.errors import ConfigError, DataError
from deepmf.experiment import (
    FoldResult,
    evaluate_split,
    model_options,
    prepare,
    recipe,
    train_split,
)
from deepmf.train import Callback


def default_out(config: RunConfig, split: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{config.model}-{config.dataset}-{split}".replace(":", "_").replace("/", "_")
    return Path("runs") / f"{name}-{stamp}"


def train_run(config: RunConfig, callbacks: list[Callback] = ()) -> tuple[Path, dict]:
    """Train and evaluate per ``config``; return the finished run directory and its metrics."""
    dataset, task, split_spec, splits = prepare(config)
    out = Path(config.out) if config.out else default_out(config, split_spec)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"run directory {out} already exists and is not empty")
    results = [train_split(config, dataset, task, s, split_spec, list(callbacks))
               for s in splits]
    resolved = resolved_config(config, task, split_spec, out, len(splits[0].train))
    metrics = summarize(resolved, task, split_spec, results)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        write_run(tmp, resolved, dataset, results, metrics)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out, metrics


def resolved_config(config: RunConfig, task: str, split: str, out: Path,
                    n_train: int | None = None) -> RunConfig:
    """The config with every default made explicit, so that it reproduces the run."""
    defaults = recipe(config, task, n_train)
    tconfig = config.train_config(defaults)
    values = {k: v for k, v in model_options(config, defaults).items() if v is not None}
    values.update({k: getattr(tconfig, k) for k in
                   ("epochs", "batch_size", "lr", "optimizer", "weight_decay", "reg",
                    "num_neg", "patience", "lr_decay")})
    values.update(task=task, split=split, out=str(out))
    if task == "explicit":
        values.update(refit=config.refit is not False and config.select_on == "valid",
                      loss="mse")
    else:
        values.update(loss=config.loss or "bce")
    return replace(config, **values)


def summarize(config: RunConfig, task: str, split: str, results: list[FoldResult]) -> dict:
    metrics = {
        "model": config.model, "dataset": config.dataset, "split": split, "task": task,
        "selection": "test (paper protocol)" if config.select_on == "test" else "validation",
        "best_epoch": results[0].best_epoch if len(results) == 1 else
        int(round(np.mean([r.best_epoch for r in results]))),
        "epoch_seconds": [round(r["seconds"], 4) for res in results for r in res.history
                          if "seconds" in r],
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


def write_run(folder: Path, config: RunConfig, dataset: Dataset, results: list[FoldResult],
              metrics: dict) -> None:
    (folder / "config.toml").write_text(config.to_toml())
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_history(folder / "history.csv", results)
    plot_curves(folder / "curves.png", results, metrics["task"])
    vocab = {"users": dataset.users.to_list(), "items": dataset.items.to_list()}
    (folder / "vocab.json").write_text(json.dumps(vocab, default=str))
    if dataset.item_info is not None:
        info = dataset.item_info.copy()
        info.insert(0, "item", dataset.items.raw(info.index))
        info.to_csv(folder / "items.csv", index_label="index")
    for result in results:
        save_checkpoint(folder / CHECKPOINTS / result.split.name, config.model, result.model,
                        result.fit_data, result.extra_seen)


def write_history(path: Path, results: list[FoldResult]) -> None:
    rows = [{"split": r.split.name, "phase": "select", **record}
            for r in results for record in r.history]
    for row in rows:
        row.setdefault("phase", "select")
    leading = ("split", "phase", "epoch", "loss", "seconds")  # epoch 0 has no loss
    columns = list(dict.fromkeys([*leading, *(k for row in rows for k in row)]))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)


def plot_curves(path: Path, results: list[FoldResult], task: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for result in results:
        select = [r for r in result.history if r.get("phase", "select") == "select"]
        epochs = [r["epoch"] for r in select]
        tag = f" ({result.split.name})" if len(results) > 1 else ""
        for key, style in curve_keys(task, select):
            ax.plot(epochs, [r.get(key, np.nan) for r in select], style, label=key + tag)
        ax.axvline(result.best_epoch, color="grey", lw=0.6, ls=":")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("RMSE" if task == "explicit" else "metric")
    ax.set_title("training curves" + (" (dotted: chosen epoch)"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2 if len(results) > 1 else 1)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def curve_keys(task: str, history: list[dict]) -> list[tuple[str, str]]:
    if task == "explicit":
        return [("train_rmse", "-"), ("valid_rmse", "--")]
    keys = [k for k in (history[0] if history else {}) if k.endswith("hr@10")
            or k.endswith("ndcg@10")]
    return [("loss", "-")] + [(k, "--") for k in keys]


def load_run(run_dir: str | Path) -> tuple[RunConfig, dict]:
    folder = Path(run_dir)
    if not (folder / "config.toml").is_file() or not (folder / "metrics.json").is_file():
        raise DataError(f"{folder}: not a deepmf run directory (config.toml or metrics.json "
                        "missing)")
    config = RunConfig(**read_config(folder / "config.toml"))
    return config, json.loads((folder / "metrics.json").read_text())


def evaluate_run(run_dir: str | Path, *, k: int | None = None,
                 data_dir: str | None = None) -> dict:
    """Reload every checkpoint of a run and score it again on its test data."""
    folder = Path(run_dir)
    config, saved = load_run(folder)
    config = replace(config, k=k or config.k, data_dir=data_dir or config.data_dir)
    dataset, task, split_spec, splits = prepare(config)
    tests = []
    for split in splits:
        _, model, seen = load_checkpoint(folder / CHECKPOINTS / split.name)
        tests.append(evaluate_split(model, task, dataset, split, split_spec, config, seen))
    if len(tests) == 1:
        return tests[0]
    return mean_metrics(tests)
