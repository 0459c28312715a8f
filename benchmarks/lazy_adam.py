"""Adam against lazy-adam per training step, on ml-1m-sized and ml-20m-sized tables.

    .venv/bin/python -m benchmarks.lazy_adam [--steps 20] [--model biased-mf|neumf]

``biased-mf`` at its implicit recipe (128 factors, batch 16,384, 8 negatives, L2 0.003,
fused steps) or ``neumf`` at its (8 factors, batch 16,384, 4 negatives, autograd steps),
one thread, on random logs over 6,900 x 6,037 and 138,000 x 27,000 ids. CPU
milliseconds a step, split into the gradients and the optimizer's update (median over the
steps after three of warm-up), and the distinct rows a batch looks up. ``lazy-adam`` runs
as a run trains with it (tables a batch mostly covers kept dense, ``optim.DENSE_SHARE``)
and with every table sparse, as before that rule. Prints JSON.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from benchmarks._common import emit, machine
from deepmf.data import Interactions
from deepmf.models import build_model
from deepmf.tasks import RankingTask
from deepmf.train import TrainConfig, make_optimizer

SHAPES = {"ml-1m-sized": (6_900, 6_037), "ml-20m-sized": (138_000, 27_000)}


RECIPES = {"biased-mf": dict(dim=128, lr=0.003, num_neg=8, reg=0.003),
           "neumf": dict(dim=8, lr=0.015, num_neg=4, reg=0.0)}


def measure(users: int, items: int, optimizer: str, steps: int, name: str,
            every_table: bool = False) -> dict:
    rng = np.random.default_rng(0)
    log = Interactions(rng.integers(0, users, 400_000), rng.integers(0, items, 400_000), None,
                       n_users=users, n_items=items)
    settings = RECIPES[name]
    torch.manual_seed(0)
    model = build_model(name, log, dim=settings["dim"])
    task = RankingTask(log, None, batch_size=16_384, device=torch.device("cpu"),
                       num_neg=settings["num_neg"], reg=settings["reg"])
    update = make_optimizer(model, TrainConfig(epochs=1, lr=settings["lr"],
                                               optimizer=optimizer),
                            None if every_table else task.lookup_shares())
    update = getattr(update, "lean_step", update.step)
    sparse = [n for n, m in model.named_modules() if getattr(m, "sparse", False)]
    grads = task.fused_step(model) or autograd_step(model, task)
    batches = list(task.batches(torch.Generator().manual_seed(0)))[:steps + 3]
    grad_ms, update_ms = [], []
    for batch in batches:
        start = time.process_time()
        grads(batch)
        middle = time.process_time()
        update()
        grad_ms.append((middle - start) * 1e3)
        update_ms.append((time.process_time() - middle) * 1e3)
    grad, step = statistics.median(grad_ms[3:]), statistics.median(update_ms[3:])
    return {"gradients_ms": round(grad, 1), "update_ms": round(step, 1),
            "step_ms": round(grad + step, 1), "sparse_tables": sparse,
            "distinct_users": round(float(np.mean([len(torch.unique(b[0])) for b in batches]))),
            "distinct_items": round(float(np.mean([len(torch.unique(b[1])) for b in batches])))}


def autograd_step(model, task):
    """The training loop's step for a model without a fused one (gradients by autograd)."""
    params = list(model.parameters())

    def step(batch):
        for p in params:
            p.grad = None
        task.loss(model, batch).backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--model", choices=sorted(RECIPES), default="biased-mf")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = {"benchmark": "lazy_adam", "model": args.model, "machine": machine()}
    for label, (users, items) in SHAPES.items():
        runs = {name: measure(users, items, name, args.steps, args.model)
                for name in ("adam", "lazy-adam")}
        runs["lazy-adam, every table sparse"] = measure(users, items, "lazy-adam", args.steps,
                                                        args.model, every_table=True)
        runs["lazy_over_adam"] = round(runs["lazy-adam"]["step_ms"] / runs["adam"]["step_ms"], 2)
        runs["lazy_over_every_table_sparse"] = round(
            runs["lazy-adam"]["step_ms"] / runs["lazy-adam, every table sparse"]["step_ms"], 2)
        result[label] = {"users": users, "items": items, **runs}
    emit(result)


if __name__ == "__main__":
    main()
