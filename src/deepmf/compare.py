"""Several models on one dataset and split: one table, one plot."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from deepmf.config import RunConfig
from deepmf.errors import ConfigError
from deepmf.models import model_class
from deepmf.rundir import train_run
from deepmf.train import Callback


def headline(metrics: dict) -> dict[str, float]:
    """The flat test metrics worth a column: RMSE/MAE, or sampled and full HR/NDCG."""
    test = metrics["test"]
    row = {k: v for k, v in test.items() if isinstance(v, float)}
    row.update({f"full {k}": v for k, v in test.get("full", {}).items()})
    return row


def compare(config: RunConfig, models: list[str], out: Path,
            callbacks: list[Callback] = ()) -> dict:
    """Train each model with ``config``'s data settings into ``out/MODEL``; summarise."""
    if not models:
        raise ConfigError("--models needs at least one model name")
    for name in models:
        model_class(name)  # every name is checked before anything trains
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"output directory {out} already exists and is not empty")
    rows = {}
    for name in models:
        _, metrics = train_run(replace(config, model=name, out=str(out / name)), callbacks)
        rows[name] = {"task": metrics["task"], "split": metrics["split"],
                      "best_epoch": metrics["best_epoch"],
                      "seconds": round(sum(metrics["epoch_seconds"]), 2), **headline(metrics)}
    summary = {"dataset": config.dataset, "models": rows}
    (out / "compare.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(out / "compare.png", rows)
    return summary


def plot(path: Path, rows: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ("rmse", "mae", "hr@10", "ndcg@10", "full hr@10", "full ndcg@10")
            if any(k in r for r in rows.values())]
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(keys) * max(1, len(rows)) / 3, 4), dpi=110)
    width = 0.8 / max(len(rows), 1)
    for j, (name, row) in enumerate(rows.items()):
        xs = [i + j * width for i in range(len(keys))]
        ax.bar(xs, [row.get(k, 0.0) for k in keys], width, label=name)
    ax.set_xticks([i + width * (len(rows) - 1) / 2 for i in range(len(keys))], keys)
    ax.set_title("test metrics")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
