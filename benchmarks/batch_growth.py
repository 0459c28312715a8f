"""Large tables, larger batches: the recipe's batch against the batch grown to the tables' rows.

    .venv/bin/python -m benchmarks.batch_growth [SIZES] [MODEL] [--epochs E] [--users U]

For each synthetic log (``SIZES``, default 5000000,20000000; the shapes of
``benchmarks/scale.py``) the model (default neumf) trains ``E`` epochs (default 2) twice,
compiled as the CLI does at that size, with the recipe's optimizer for those tables
(``lazy-adam`` where its rule says so) and L2: with its recipe's batch and rate, and with
what the recipes' growth rule gives for those tables (``recipes.GROW_ROWS``: the batch
doubled up to the users plus items, the rate times the square root of the growth), whether
or not the model is one of ``recipes.GROW_MODELS`` today. After
each epoch it ranks every item for the first ``U`` (default 5,000) held-out users
(leave-one-out) and reports HR@10, with the epoch's seconds. Each run is a fresh process.
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from benchmarks._common import ROOT


def one(size: int, name: str, batch: int, lr: float, epochs: int, users: int,
        optimizer: str = "adam", reg: float = 0.0) -> list[dict]:
    """Runs inside the child process."""
    import numpy as np
    import torch

    from benchmarks.scale import shape
    from deepmf.evaluate import evaluate_full
    from deepmf.experiment.recipes import recipe
    from deepmf.models import build_model
    from deepmf.readers.synthetic import synthetic
    from deepmf.split import leave_one_out
    from deepmf.tasks import RankingTask
    from deepmf.train import Callback, TrainConfig, fit

    torch.set_num_threads(1)
    n_users, n_items = shape(size)
    train, test = leave_one_out(synthetic(n_users, n_items, size, seed=0).interactions)
    held_out = test.take(np.arange(min(len(test), users)))
    settings = recipe(name, "implicit", n_train=len(train))
    torch.manual_seed(0)
    model = build_model(name, train, dim=settings["dim"])
    task = RankingTask(train, None, batch_size=batch, device=torch.device("cpu"),
                       num_neg=settings["num_neg"], reg=reg, compiled=True)
    records = []

    class Ranked(Callback):
        def on_epoch_end(self, record, model):
            start = time.perf_counter()
            hr = evaluate_full(model, train, held_out, k=10)["hr@10"]
            records.append({"epoch": record["epoch"], "seconds": round(record["seconds"], 1),
                            "loss": round(record["loss"], 4), "hr@10": round(hr, 4),
                            "ranking_seconds": round(time.perf_counter() - start, 1)})

    fit(model, task, TrainConfig(epochs=epochs, lr=lr, patience=0, optimizer=optimizer),
        [Ranked()])
    return records


def main(sizes: list[int], name: str, epochs: int, users: int) -> None:
    from benchmarks.scale import shape
    from deepmf.experiment import recipes

    rows = []
    for size in sizes:
        n_users, n_items = shape(size)
        n_train = size - n_users  # leave-one-out holds one pair per user out
        runs = {}
        for label, growing in (("recipe", ()), ("grown", (name,))):
            # the CLI's settings for these tables (lazy-adam where its rule says so), with
            # the growth rule off, then on for this model whether or not it grows today
            kept, recipes.GROW_MODELS = recipes.GROW_MODELS, growing
            try:
                runs[label] = recipes.recipe(name, "implicit", n_train=n_train,
                                             n_rows=n_users + n_items)
            finally:
                recipes.GROW_MODELS = kept
        for label, settings in runs.items():
            args = [str(size), name, str(settings["batch_size"]), str(settings["lr"]),
                    str(epochs), str(users), settings.get("optimizer", "adam"),
                    str(settings.get("reg", 0.0))]
            child = subprocess.run([sys.executable, "-m", "benchmarks.batch_growth", "--one",
                                    *args], capture_output=True, text=True, cwd=ROOT)
            row = {"size": size, "rows": n_users + n_items, "run": label,
                   "batch_size": settings["batch_size"], "lr": settings["lr"],
                   "optimizer": settings.get("optimizer", "adam")}
            row.update({"error": child.stderr[-500:]} if child.returncode else
                       {"epochs": json.loads(child.stdout)})
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps({"benchmark": "batch_growth", "model": name, "runs": rows}, indent=2))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        size, name, batch, lr, epochs, users, optimizer, reg = sys.argv[2:10]
        print(json.dumps(one(int(size), name, int(batch), float(lr), int(epochs), int(users),
                             optimizer, float(reg))))
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("sizes", nargs="?", default="5000000,20000000")
        parser.add_argument("model", nargs="?", default="neumf")
        parser.add_argument("--epochs", type=int, default=2)
        parser.add_argument("--users", type=int, default=5000)
        args = parser.parse_args()
        main([int(s) for s in args.sizes.split(",")], args.model, args.epochs, args.users)
