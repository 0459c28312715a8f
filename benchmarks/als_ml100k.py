"""ALS (biased, weighted-λ) against Surprise's SVD on the ml-100k folds u1..u5.

    DEEPMF_DATA_DIR=../shared/data .venv/bin/python benchmarks/als_ml100k.py [--threads T]

Both run in this process, one fold after the other, on ``T`` threads (torch's pool; Surprise
is single-threaded). Predictions are clipped to 1..5 for both. ``als`` is timed two ways:

* ``fixed``: ``SWEEPS`` sweeps on the fold's training data (the recipe's epoch count);
* ``selected``: what the training loop does for explicit models: sweeps chosen on a random
  5% of the training rows (best validation RMSE, stopping after ``PATIENCE`` sweeps without
  improvement), then a refit on all training rows for that many sweeps. The clock covers
  both phases and the validation scoring.

Surprise's SVD (``random_state=0``, its defaults: 100 factors, 20 epochs) is timed on
``fit`` alone. Needs scikit-surprise (skipped when missing).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks._common import data_dir, emit, machine
from deepmf.evaluate import evaluate_ratings
from deepmf.models.als import ALS
from deepmf.readers import load_dataset
from deepmf.split import make_splits, validation_split

SWEEPS, PATIENCE, MAX_SWEEPS = 10, 3, 30


def build(train):
    return ALS(train.n_users, train.n_items, global_mean=float(train.ratings.mean()))


def fixed(train, test) -> tuple[float, float]:
    start = time.perf_counter()
    model = build(train)
    for _ in range(SWEEPS):
        model.sweep(train, torch.Generator())
    seconds = time.perf_counter() - start
    return evaluate_ratings(model, test, clip=(1, 5))["rmse"], seconds


def selected(train, test) -> tuple[float, float, int]:
    start = time.perf_counter()
    fit_data, valid = validation_split(train, seed=0)
    model, curve = build(fit_data), []
    for _ in range(MAX_SWEEPS):
        model.sweep(fit_data, torch.Generator())
        curve.append(evaluate_ratings(model, valid, clip=(1, 5))["rmse"])
        if len(curve) - 1 - int(np.argmin(curve)) >= PATIENCE:
            break
    chosen = int(np.argmin(curve)) + 1
    model = build(train)
    for _ in range(chosen):
        model.sweep(train, torch.Generator())
    seconds = time.perf_counter() - start
    return evaluate_ratings(model, test, clip=(1, 5))["rmse"], seconds, chosen


def surprise_svd(train, test) -> tuple[float, float] | None:
    try:
        import pandas as pd
        from surprise import SVD, Dataset, Reader
    except ImportError:
        return None
    frame = pd.DataFrame({"u": train.users, "i": train.items, "r": train.ratings})
    trainset = Dataset.load_from_df(frame, Reader(rating_scale=(1, 5))).build_full_trainset()
    start = time.perf_counter()
    algo = SVD(random_state=0)
    algo.fit(trainset)
    seconds = time.perf_counter() - start
    pred = np.array([algo.predict(u, i).est for u, i in zip(test.users, test.items)])
    return float(np.sqrt(np.mean((np.clip(pred, 1, 5) - test.ratings) ** 2))), seconds


def summary(rows: list[tuple]) -> dict:
    return {"rmse": round(float(np.mean([r[0] for r in rows])), 4),
            "fold_rmse": [round(r[0], 4) for r in rows],
            "seconds": round(float(np.sum([r[1] for r in rows])), 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folds = make_splits(load_dataset("ml-100k", data_dir(), download=False), "folds")
    results = {"als fixed": [], "als selected": [], "surprise SVD": []}
    for split in folds:
        results["als fixed"].append(fixed(split.train, split.test))
        results["als selected"].append(selected(split.train, split.test))
        peer = surprise_svd(split.train, split.test)
        if peer is not None:
            results["surprise SVD"].append(peer)
    out = {name: summary(rows) for name, rows in results.items() if rows}
    out["als selected"]["sweeps"] = [r[2] for r in results["als selected"]]
    if "surprise SVD" not in out:
        out["surprise SVD"] = "skipped: scikit-surprise is not importable"
    emit({"benchmark": "als_ml100k", "split": "folds u1..u5", "machine": machine(),
          "threads": {"torch": args.threads, "surprise": 1},
          "als": {"defaults": build(folds[0].train).model_args | {"n_users": "...",
                                                                   "n_items": "..."},
                  "fixed_sweeps": SWEEPS, "patience": PATIENCE},
          "models": out})


if __name__ == "__main__":
    main()
