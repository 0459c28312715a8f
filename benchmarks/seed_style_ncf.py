"""NeuMF trained the seed-001 way versus deepmf's trainer on the NCF ml-1m files, one run.

The seed way: each epoch draws 4 negatives per positive in a Python loop against a set of
training pairs, wraps the samples in a ``Dataset`` returning one (user, item, label) per
``__getitem__``, and steps Adam (lr 0.001) on each batch of 256 from a shuffling
``DataLoader``. deepmf: negatives drawn as one tensor per epoch, each batch a random slice
of the positives with their negatives, with its NeuMF recipe. Both start from the same
initial weights and are scored after the same number of epochs with the sampled protocol
(the files' 99 negatives).

    DEEPMF_DATA_DIR=../shared/data .venv/bin/python benchmarks/seed_style_ncf.py [epochs]
"""

from __future__ import annotations

import copy
import sys
import time

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from benchmarks._common import data_dir, emit, machine
from deepmf.evaluate import evaluate_sampled
from deepmf.experiment.recipes import IMPLICIT as IMPLICIT_RECIPES
from deepmf.experiment.recipes import IMPLICIT_DEFAULT
from deepmf.losses import bce
from deepmf.models import build_model
from deepmf.readers import load_dataset
from deepmf.tasks import RankingTask
from deepmf.train import TrainConfig, fit


class Samples(TorchDataset):
    """One (user, item, label) per call, as seed 001 builds them."""

    def __init__(self, users, items, labels):
        self.users, self.items, self.labels = users, items, labels

    def __len__(self):
        return len(self.users)

    def __getitem__(self, index):
        return self.users[index], self.items[index], self.labels[index]


def seed_instances(train, n_items: int, num_neg: int, rng) -> Samples:
    positives = set(zip(train.users.tolist(), train.items.tolist()))
    users, items, labels = [], [], []
    for u, i in zip(train.users.tolist(), train.items.tolist()):
        users.append(u), items.append(i), labels.append(1.0)
        for _ in range(num_neg):
            j = int(rng.integers(n_items))
            while (u, j) in positives:
                j = int(rng.integers(n_items))
            users.append(u), items.append(j), labels.append(0.0)
    return Samples(users, items, labels)


def train_seed_style(model, train, epochs: int) -> list[float]:
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    rng = np.random.default_rng(0)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        loader = DataLoader(seed_instances(train, train.n_items, 4, rng), batch_size=256,
                            shuffle=True)
        model.train()
        for users, items, labels in loader:
            loss = bce(model(users, items), labels.float())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return seconds


def main(epochs: int) -> None:
    dataset = load_dataset("ncf:deepcf/ml-1m", data_dir())
    train, test = dataset.given["given"]
    recipe = IMPLICIT_RECIPES.get("neumf", IMPLICIT_DEFAULT)
    torch.manual_seed(0)
    initial = build_model("neumf", train, dim=8)

    seed_model = copy.deepcopy(initial)
    seed_seconds = train_seed_style(seed_model, train, epochs)
    seed_metrics = evaluate_sampled(seed_model, test, dataset.test_negatives, k=10)

    model = copy.deepcopy(initial)
    config = TrainConfig(epochs=epochs, lr=recipe["lr"], patience=0)
    task = RankingTask(train, None, batch_size=recipe["batch_size"], device=torch.device("cpu"),
                       num_neg=4)
    ours_seconds = [r["seconds"] for r in fit(model, task, config)]
    ours_metrics = evaluate_sampled(model, test, dataset.test_negatives, k=10)

    seed_epoch, ours_epoch = float(np.mean(seed_seconds)), float(np.mean(ours_seconds))
    emit({
        "benchmark": "seed_style_ncf", "dataset": "ncf ml-1m (given split, 99 negatives)",
        "model": "neumf dim 8", "epochs": epochs, "samples_per_epoch": len(train) * 5,
        "machine": machine(),
        "seed_style": {"batch_size": 256, "lr": 0.001, "epoch_seconds": round(seed_epoch, 2),
                       "us_per_sample": round(1e6 * seed_epoch / (len(train) * 5), 2),
                       "hr@10": round(seed_metrics["hr@10"], 4),
                       "ndcg@10": round(seed_metrics["ndcg@10"], 4)},
        "deepmf": {"batch_size": recipe["batch_size"], "lr": config.lr,
                   "epoch_seconds": round(ours_epoch, 2),
                   "each_epoch_seconds": [round(t, 2) for t in ours_seconds],
                   "hr@10": round(ours_metrics["hr@10"], 4),
                   "ndcg@10": round(ours_metrics["ndcg@10"], 4)},
        "epoch_speedup": round(seed_epoch / ours_epoch, 1),
        "hr_at_least_seed": ours_metrics["hr@10"] >= seed_metrics["hr@10"],
    })


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
