"""Biased MF trained the seeds' way versus deepmf's trainer, same data and epochs, one run.

The seed way: a ``torch.utils.data.Dataset`` whose ``__getitem__`` returns one sample,
through a shuffling ``DataLoader`` with batch 256, one optimizer step per batch. deepmf:
index tensors sliced from a fresh ``randperm`` each epoch, with its default batch and lr.
Both train the same model class with the same loss (MSE + per-row L2) on ml-100k's u1
fold and are scored on u1.test.

    DEEPMF_DATA_DIR=../shared/data .venv/bin/python benchmarks/seed_style.py [epochs]
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from benchmarks._common import data_dir, emit, machine
from deepmf.evaluate import evaluate_ratings
from deepmf.experiment.recipes import EXPLICIT as RECIPES
from deepmf.losses import mse
from deepmf.models import build_model
from deepmf.readers import load_dataset
from deepmf.split import make_splits
from deepmf.tasks import RatingTask
from deepmf.train import TrainConfig, fit


class RatingsDataset(TorchDataset):
    """One (user, item, rating) sample per call, as the seed notebooks build it."""

    def __init__(self, users, items, ratings):
        self.users, self.items, self.ratings = users, items, ratings

    def __len__(self):
        return len(self.users)

    def __getitem__(self, index):
        return (torch.tensor(self.users[index]), torch.tensor(self.items[index]),
                torch.tensor(self.ratings[index]))


def seed_style(model, train, epochs: int, lr: float, reg: float) -> list[float]:
    loader = DataLoader(RatingsDataset(train.users, train.items, train.ratings),
                        batch_size=256, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        for users, items, ratings in loader:
            loss = mse(model(users, items), ratings) + reg * model.penalty(users, items)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return seconds


def main(epochs: int) -> None:
    dataset = load_dataset("ml-100k", data_dir())
    split = make_splits(dataset, "u1")[0]
    recipe = RECIPES["biased-mf"]
    clip = dataset.rating_range

    torch.manual_seed(0)
    seed_model = build_model("biased-mf", split.train, dim=recipe["dim"])
    seed_seconds = seed_style(seed_model, split.train, epochs, lr=0.005, reg=recipe["reg"])
    seed_rmse = evaluate_ratings(seed_model, split.test, clip=clip)["rmse"]

    torch.manual_seed(0)
    model = build_model("biased-mf", split.train, dim=recipe["dim"])
    config = TrainConfig(epochs=epochs, lr=recipe["lr"], patience=0)
    task = RatingTask(split.train, None, batch_size=recipe["batch_size"],
                      device=torch.device("cpu"), reg=recipe["reg"], clip=clip)
    history = fit(model, task, config)
    ours_seconds = [r["seconds"] for r in history]
    ours_rmse = evaluate_ratings(model, split.test, clip=clip)["rmse"]

    seed_epoch, ours_epoch = float(np.median(seed_seconds)), float(np.median(ours_seconds))
    emit({
        "benchmark": "seed_style", "dataset": "ml-100k u1", "epochs": epochs,
        "machine": machine(),
        "seed_style": {"batch_size": 256, "lr": 0.005, "epoch_seconds": round(seed_epoch, 4),
                       "test_rmse": round(seed_rmse, 4)},
        "deepmf": {"batch_size": recipe["batch_size"], "lr": config.lr,
                   "epoch_seconds": round(ours_epoch, 4), "test_rmse": round(ours_rmse, 4)},
        "epoch_speedup": round(seed_epoch / ours_epoch, 1),
        "rmse_no_worse": ours_rmse <= seed_rmse,
    })


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
