"""`biased-mf`'s step on ml-20m's shape with batches confined to strata (DSGD, LIBMF's blocks).

    .venv/bin/python -m benchmarks.strata [--size 20000000] [--blocks 32,8] [--steps 60]

On the synthetic log of ``--size`` interactions (``benchmarks/scale.py``'s shapes), with
``biased-mf``'s implicit recipe for those tables (compiled, lazy-adam at 20M): the median
time of the gradients and of the optimizer's update over ``--steps`` batches drawn as
training draws them (``random``), and over batches of the same size each confined to one
stratum of a ``U x I`` grid of user and item blocks (random blocks; consecutive batches in
the same stratum, negatives drawn from its item block), whose rows then stay in the cache
from one step to the next. The strata run twice: with the optimizer's rule for which tables
stay dense (``strata``), and with every table sparse (``strata_sparse``), since a batch then
looks up few of the items. Not adopted (README, "Large logs"); this measures why.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

from benchmarks._common import emit, machine
from benchmarks.scale import shape


def _strata(task, n_users: int, n_items: int, blocks: tuple[int, int], steps: int, k: int,
            size: int) -> list:
    import torch

    from deepmf.batching import _joined

    g = torch.Generator().manual_seed(1)
    users, items = task.users, task.items
    user_block = torch.randperm(n_users, generator=g) * blocks[0] // n_users
    item_block = torch.randperm(n_items, generator=g) * blocks[1] // n_items
    stratum = user_block[users] * blocks[1] + item_block[items]
    per_batch, batches = size // (1 + k), []
    for chosen in torch.randperm(blocks[0] * blocks[1], generator=g).tolist():
        rows = torch.nonzero(stratum == chosen).flatten()
        rows, anchors = (rows[torch.randperm(len(rows), generator=g)] for _ in range(2))
        candidates = torch.nonzero(item_block == chosen % blocks[1]).flatten()
        for start in range(0, len(rows) - per_batch, per_batch):
            mine, theirs = rows[start:start + per_batch], anchors[start:start + per_batch]
            negatives = candidates[torch.randint(len(candidates), (per_batch, k), generator=g)]
            batches.append(_joined(users[mine], items[mine], users[theirs], negatives))
            if len(batches) > steps:
                return batches
    return batches


def _timed(task, model, optimizer, batches) -> dict:
    step = task.fused_step(model)
    update = getattr(optimizer, "lean_step", optimizer.step)
    step(batches[0])  # compiles
    update()
    grads, updates = [], []
    for batch in batches[1:]:
        start = time.perf_counter()
        step(batch)
        middle = time.perf_counter()
        update()
        grads.append(middle - start)
        updates.append(time.perf_counter() - middle)
    return {"grads_ms": round(statistics.median(grads) * 1e3, 2),
            "update_ms": round(statistics.median(updates) * 1e3, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000_000)
    parser.add_argument("--blocks", default="32,8")
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    import torch

    from deepmf.experiment.recipes import recipe
    from deepmf.models import build_model
    from deepmf.optim import make_optimizer
    from deepmf.readers.synthetic import synthetic
    from deepmf.tasks import RankingTask
    from deepmf.train import TrainConfig

    torch.set_num_threads(1)
    n_users, n_items = shape(args.size)
    blocks = tuple(int(b) for b in args.blocks.split(","))
    train = synthetic(n_users, n_items, args.size, seed=0).interactions
    settings = recipe("biased-mf", "implicit", n_train=len(train), n_rows=n_users + n_items)
    k, size = settings["num_neg"], settings["batch_size"]
    task = RankingTask(train, None, batch_size=size, device=torch.device("cpu"), num_neg=k,
                       reg=settings.get("reg", 0.0), compiled=True)
    config = TrainConfig(epochs=1, lr=settings["lr"], optimizer=settings.get("optimizer", "adam"))
    drawn = task.batches(torch.Generator().manual_seed(0))
    kinds = {"random": ([next(drawn) for _ in range(args.steps + 1)], task.lookup_shares()),
             "strata": (_strata(task, n_users, n_items, blocks, args.steps, k, size),
                        task.lookup_shares())}
    kinds["strata_sparse"] = (kinds["strata"][0], (0.0, 0.0))
    base = build_model("biased-mf", train, dim=settings["dim"])
    result = {"benchmark": "strata", "machine": machine(), "size": args.size,
              "users": n_users, "items": n_items, "blocks": blocks,
              "optimizer": config.optimizer, "rounds": []}
    for _ in range(2):  # alternating
        runs = {}
        for label, (batches, shares) in kinds.items():
            model = copy.deepcopy(base)
            runs[label] = _timed(task, model, make_optimizer(model, config, shares), batches)
        result["rounds"].append(runs)
    emit(result)


if __name__ == "__main__":
    main()
