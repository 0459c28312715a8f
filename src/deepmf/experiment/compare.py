"""Several models on one dataset and split: one table, one plot."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from deepmf.errors import ConfigError
from deepmf.experiment.config import RunConfig
from deepmf.experiment.plots import plot_comparison
from deepmf.experiment.run import train_run
from deepmf.experiment.rundir import RunDir
from deepmf.models import model_class
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
    RunDir(out).check_free()
    rows = {}
    for name in models:
        _, metrics = train_run(replace(config, model=name, out=str(out / name)), callbacks)
        rows[name] = {"task": metrics["task"], "split": metrics["split"],
                      "best_epoch": metrics["best_epoch"],
                      "seconds": round(sum(metrics["epoch_seconds"]), 2), **headline(metrics)}
    summary = {"dataset": config.dataset, "models": rows}
    (out / "compare.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot_comparison(out / "compare.png", rows)
    return summary
