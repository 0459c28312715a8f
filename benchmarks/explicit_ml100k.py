"""Each explicit model on the ml-100k folds u1..u5: mean RMSE/MAE and time.

    DEEPMF_DATA_DIR=../shared/data .venv/bin/python benchmarks/explicit_ml100k.py [models]

Prints JSON. Peers measured on the same folds (scikit-surprise 1.1.5): SVD 0.938,
SVD++ 0.922, KNNBaseline 0.920, BaselineOnly 0.946. ``bayes-mf`` and its feature sets,
beside myFM, are in ``benchmarks/bayes_ml100k.py``; ``als`` beside Surprise's SVD in
``benchmarks/als_ml100k.py``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import data_dir, emit, machine
from deepmf.experiment.config import RunConfig
from deepmf.experiment.run import train_run

PEERS = {"surprise SVD": 0.938, "surprise SVD++": 0.922, "surprise KNNBaseline": 0.920,
         "surprise BaselineOnly": 0.946}


def main(models: list[str]) -> None:
    root = data_dir()
    results = {}
    for name in models:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            _, metrics = train_run(RunConfig(model=name, dataset="ml-100k", split="folds",
                                             data_dir=str(root), out=str(Path(tmp) / "run")))
            total = time.perf_counter() - start
        results[name] = {
            "rmse": round(metrics["test"]["rmse"], 4),
            "rmse_std": round(metrics["test_std"]["rmse"], 4),
            "mae": round(metrics["test"]["mae"], 4),
            "fold_rmse": [round(f["test"]["rmse"], 4) for f in metrics["folds"]],
            "best_epoch": [f["best_epoch"] for f in metrics["folds"]],
            "seconds_per_epoch": round(float(np.mean(metrics["epoch_seconds"])), 4),
            "epochs": len(metrics["epoch_seconds"]),
            "total_seconds": round(total, 1),
        }
    # Global-mean baseline on the same folds, for scale.
    from deepmf.readers import load_dataset
    from deepmf.split import make_splits

    errors = []
    for split in make_splits(load_dataset("ml-100k", root), "folds"):
        errors.append(np.sqrt(np.mean((split.test.ratings - split.train.ratings.mean()) ** 2)))
    emit({"benchmark": "explicit_ml100k", "split": "folds u1..u5", "machine": machine(),
          "models": results, "global_mean_rmse": round(float(np.mean(errors)), 4),
          "peers_rmse": PEERS})


if __name__ == "__main__":
    main(sys.argv[1].split(",") if len(sys.argv) > 1 else ["mf", "biased-mf", "deepmf", "als"])
