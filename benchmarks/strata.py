"""`biased-mf`'s step on ml-20m's shape with batches confined to strata (DSGD, LIBMF's blocks).

    .venv/bin/python -m benchmarks.strata [--size 20000000] [--blocks 32,8] [--steps 60]
        [--epoch]

On the synthetic log of ``--size`` interactions (``benchmarks/scale.py``'s shapes), with
``biased-mf``'s implicit recipe for those tables (compiled, lazy-adam at 20M): the median
time of the gradients and of the optimizer's update over ``--steps`` batches drawn as
training draws them (``random``), and over batches of the same size each confined to one
stratum of a ``U x I`` grid of user and item blocks (random blocks; consecutive batches in
the same stratum, negatives drawn from its item block), whose rows then stay in the cache
from one step to the next. The strata run twice: with the optimizer's rule for which tables
stay dense (``strata``), and with every table sparse (``strata_sparse``), since a batch then
looks up few of the items. ``--epoch`` trains one whole epoch in each order from the
same start instead (leave-one-out split; drawing the batches timed with the steps) and
ranks all items for every held-out user: ``--blocks 1,1`` is a check of the strata's
batches, which must then do as the shuffled ones. Not adopted (README, "Large logs").
"""

from __future__ import annotations

import argparse
import copy
import itertools
import statistics
import time

from benchmarks._common import emit, machine
from benchmarks.scale import shape


def _strata(task, n_users: int, n_items: int, blocks: tuple[int, int], k: int, size: int,
            seed: int = 1):
    """An epoch of log-loss batches of ``size`` samples in strata: the positives ordered
    by stratum (the strata in a random order, the rows shuffled within each), each batch
    sliced from that order with its anchors from a second such order (so from the same
    strata), their negatives drawn from the anchor's item block (positives redrawn, as the
    sampler does). A batch where one stratum ends holds the start of the next."""
    import torch

    from deepmf.batching import _joined

    g = torch.Generator().manual_seed(seed)
    users, items, n = task.users, task.items, len(task.users)
    user_block = torch.randperm(n_users, generator=g) * blocks[0] // n_users
    item_block = torch.randperm(n_items, generator=g) * blocks[1] // n_items
    rank = torch.randperm(blocks[0] * blocks[1], generator=g)
    grouped = rank[user_block[users] * blocks[1] + item_block[items]] * n
    orders = [torch.argsort(grouped + torch.randperm(n, generator=g)) for _ in range(2)]
    members = torch.argsort(item_block, stable=True)  # the items, block by block
    counts = torch.bincount(item_block, minlength=blocks[1])
    starts = torch.cumsum(counts, 0) - counts
    per_batch = size // (1 + k)
    for start in range(0, n, per_batch):
        mine, theirs = (order[start:start + per_batch] for order in orders)
        anchor_users, block = users[theirs], item_block[items[theirs]]

        spots = torch.rand((len(theirs), k), generator=g) * counts[block][:, None]
        negatives = members[starts[block][:, None] + spots.long()]
        for _ in range(10):
            hit = task.sampler.is_positive(anchor_users[:, None], negatives)
            if not hit.any():
                break
            rows = block[:, None].expand(-1, k)[hit]
            negatives[hit] = members[starts[rows] + (torch.rand(rows.shape, generator=g)
                                                      * counts[rows]).long()]
        yield _joined(users[mine], items[mine], anchor_users, negatives)


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


def _epochs(task, base, config, test, orders: dict) -> dict:
    """One epoch from the same start in each order: its seconds (drawing the batches
    included) and the full-ranking metrics of every held-out user after it."""
    from deepmf.evaluate import evaluate_full
    from deepmf.optim import make_optimizer

    out = {}
    for label, batches in orders.items():
        model = copy.deepcopy(base)
        optimizer = make_optimizer(model, config, task.lookup_shares())
        step, update = task.fused_step(model), getattr(optimizer, "lean_step", optimizer.step)
        start = time.perf_counter()
        for batch in batches():
            step(batch)
            update()
        seconds = time.perf_counter() - start
        metrics = evaluate_full(model, task.train, test, k=10)
        out[label] = {"seconds": round(seconds, 1), "hr@10": round(metrics["hr@10"], 4),
                      "ndcg@10": round(metrics["ndcg@10"], 4)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000_000)
    parser.add_argument("--blocks", default="32,8")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--epoch", action="store_true",
                        help="train one whole epoch in each order instead (leave-one-out "
                             "split) and rank every held-out user's items")
    args = parser.parse_args()
    import torch

    from deepmf.experiment.recipes import recipe
    from deepmf.models import build_model
    from deepmf.optim import make_optimizer
    from deepmf.readers.synthetic import synthetic
    from deepmf.split import leave_one_out
    from deepmf.tasks import RankingTask
    from deepmf.train import TrainConfig

    torch.set_num_threads(1)
    n_users, n_items = shape(args.size)
    blocks = tuple(int(b) for b in args.blocks.split(","))
    train, test = leave_one_out(synthetic(n_users, n_items, args.size, seed=0).interactions)
    settings = recipe("biased-mf", "implicit", n_train=len(train), n_rows=n_users + n_items)
    k, size = settings["num_neg"], settings["batch_size"]
    task = RankingTask(train, None, batch_size=size, device=torch.device("cpu"), num_neg=k,
                       reg=settings.get("reg", 0.0), compiled=True)
    config = TrainConfig(epochs=1, lr=settings["lr"], optimizer=settings.get("optimizer", "adam"))
    base = build_model("biased-mf", train, dim=settings["dim"])
    result = {"benchmark": "strata", "machine": machine(), "size": args.size,
              "users": n_users, "items": n_items, "blocks": blocks,
              "optimizer": config.optimizer}
    if args.epoch:
        result["epoch"] = _epochs(task, base, config, test, {
            "random": lambda: task.batches(torch.Generator().manual_seed(0)),
            "strata": lambda: _strata(task, n_users, n_items, blocks, k, size)})
        emit(result)
        return
    drawn = task.batches(torch.Generator().manual_seed(0))
    kinds = {"random": ([next(drawn) for _ in range(args.steps + 1)], task.lookup_shares()),
             "strata": (list(itertools.islice(_strata(task, n_users, n_items, blocks, k, size),
                                              args.steps + 1)), task.lookup_shares())}
    kinds["strata_sparse"] = (kinds["strata"][0], (0.0, 0.0))
    result["rounds"] = []
    for _ in range(2):  # alternating
        runs = {}
        for label, (batches, shares) in kinds.items():
            model = copy.deepcopy(base)
            runs[label] = _timed(task, model, make_optimizer(model, config, shares), batches)
        result["rounds"].append(runs)
    emit(result)


if __name__ == "__main__":
    main()
