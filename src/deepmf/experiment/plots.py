"""The run's pictures: training curves and model comparisons (Matplotlib, no screen)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(path: Path, results: list, task: str) -> None:
    """Each split's training curves, the chosen epoch dotted."""
    plt = _pyplot()
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


def plot_comparison(path: Path, rows: dict) -> None:
    """One group of bars per metric, one bar per model."""
    plt = _pyplot()

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
