"""How cost grows with the log: one epoch and one full ranking on synthetic logs of 1M to 20M.

    .venv/bin/python benchmarks/scale.py [SIZES] [MODELS] [--device cuda] [--optimizer O]
        [--compile | --no-compile] [--bitmap-bytes N] [--batch-size N] [--dim D]
        [--layers A,B,...]

SIZES are interaction counts (default 1000000,5000000,20000000), MODELS registry names
(default biased-mf,neumf,dmf,ials). Each log has ml-20m's shape at 20M (138,000 users x
27,000 items; users scale with the size, items with its square root), long-tailed item
popularity, varied user activity and a planted taste structure (`synthetic:`). Every
(size, model) runs in a fresh process, which trains one epoch with the model's implicit
recipe for those tables (as the CLI picks it: `neumf`'s batch grows with the users and
items past ``recipes.GROW_ROWS``; no validation) and ranks every item for every user who
has a held-out item (leave-one-out), and reports seconds, samples per second and its peak
RSS. Prints JSON with the ratios of each size's costs to the smallest one's.
Unless told, each run trains as ``deepmf train`` would on that log: with the recipe's
optimizer (``lazy-adam`` for ``biased-mf`` on more than ``recipes.LAZY_ROWS`` users and
items, else Adam) and compiled where the command line compiles by default
(``plan.compiles_by_default``). ``--optimizer O`` trains with O instead; ``--compile`` and
``--no-compile`` choose the steps (compiled first on a copy of the model, and timed apart
as ``compile_seconds``). ``--bitmap-bytes N`` caps the negative
sampler's pair bitmap at N bytes instead of ``deepmf.sampling.BITMAP_BYTES`` (134217728,
the cap before it grew, makes the 20M log search its sorted keys instead). ``--batch-size``
trains with batches of that many samples instead of the recipe's, its learning rate times
the square root of their ratio (as the recipes grow a batch). On a GPU (``--device
cuda``) a copy of the model takes one step first, so that the epoch leaves out the start of
the GPU's kernels, and each row reports the GPU's peak memory. ``--dim`` and ``--layers``
size the model instead of its defaults (``neumf --dim 64 --layers 256,256,128,64`` is
NVIDIA's NCF benchmark model).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

TOP = (20_000_000, 138_000, 27_000)


def shape(size: int) -> tuple[int, int]:
    scale = size / TOP[0]
    return max(100, int(TOP[1] * scale)), max(100, int(TOP[2] * scale ** 0.5))


def one(size: int, name: str, device: str, optimizer: str | None = None,
        compiled: bool | None = None, bitmap_bytes: int | None = None,
        batch_size: int | None = None, dim: int | None = None,
        layers: list[int] | None = None) -> dict:
    """Runs inside the child process."""
    import copy

    import torch

    from deepmf import sampling
    from deepmf.evaluate import evaluate_full
    from deepmf.experiment.plan import compiles_by_default
    from deepmf.experiment.recipes import recipe
    from deepmf.models import build_model
    from deepmf.readers.synthetic import synthetic
    from deepmf.split import leave_one_out
    from deepmf.tasks import RankingTask
    from deepmf.train import TrainConfig, fit, make_optimizer

    torch.set_num_threads(1 if device == "cpu" else torch.get_num_threads())
    if bitmap_bytes is not None:
        sampling.BITMAP_BYTES = bitmap_bytes
    users, items = shape(size)
    start = time.perf_counter()
    data = synthetic(users, items, size, seed=0).interactions
    train, test = leave_one_out(data)
    generated = time.perf_counter() - start
    settings = recipe(name, "implicit", n_train=len(train), n_rows=users + items)
    if batch_size and "batch_size" in settings:  # lr grows as in the recipes' growth rule
        settings["lr"] = settings.get("lr", 0.001) * (batch_size / settings["batch_size"]) ** 0.5
        settings["batch_size"] = batch_size
    optimizer = optimizer or settings.get("optimizer", "adam")
    if compiled is None:
        compiled = compiles_by_default({**settings, "model": name, "task": "implicit",
                                        "device": device}, len(train), None)
    options = {k: v for k, v in settings.items() if k in ("dim",)}
    options.update({k: v for k, v in (("dim", dim), ("layers", layers)) if v})
    model = build_model(name, train, **options).to(device)
    task = RankingTask(train, None, batch_size=settings.get("batch_size", 1),
                       device=torch.device(device), num_neg=settings.get("num_neg", 1),
                       reg=settings.get("reg", 0.0), compiled=compiled)
    config = TrainConfig(epochs=1, lr=settings.get("lr", 0.001), patience=0,
                         optimizer=optimizer)
    compiling = 0.0
    if (compiled or device != "cpu") and model.trainer == "sgd":  # compile (or start the
        # GPU's kernels) on a copy's first batch, so that the epoch is its steps alone
        start, warm = time.perf_counter(), copy.deepcopy(model)
        warm_optimizer = make_optimizer(warm, config, task.lookup_shares())  # as fit makes it
        batch = next(iter(task.batches(torch.Generator().manual_seed(1))))
        fused = task.fused_step(warm)
        if fused is not None:
            fused(batch)
        else:
            task.loss(warm, batch).backward()
        warm_optimizer.step()
        del warm, warm_optimizer, batch
        if device != "cpu":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        compiling = time.perf_counter() - start
    history = fit(model, task, config)
    epoch = history[0]["seconds"]
    samples = len(train) * (1 + settings.get("num_neg", 0))
    start = time.perf_counter()
    full = evaluate_full(model, train, test, k=10)
    ranking = time.perf_counter() - start
    return {"size": size, "model": name, "optimizer": optimizer, "compiled": compiled,
            "pair_bitmap": task.sampler.bits is not None,
            "batch_size": task.batch_size, "num_neg": task.num_neg, "lr": config.lr,
            "parameters": sum(p.numel() for p in model.parameters()),
            **{k: v for k, v in model.model_args.items() if k in ("dim", "layers")},
            "compile_seconds": round(compiling, 1), "users": users, "items": items,
            "positives": len(train), "generate_seconds": round(generated, 1),
            "epoch_seconds": round(epoch, 2),
            "samples_per_second": round(samples / epoch) if model.trainer == "sgd" else None,
            "full_ranking_seconds": round(ranking, 2), "full_hr@10": round(full["hr@10"], 4),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
            "peak_gpu_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2)
            if device != "cpu" else None}


def main(sizes: list[int], models: list[str], device: str, optimizer: str | None,
         compiled: bool | None, bitmap_bytes: int | None, batch_size: int | None = None,
         dim: int | None = None, layers: list[int] | None = None) -> None:
    rows = []
    for name in models:
        for size in sizes:
            settings = {"size": size, "name": name, "device": device, "optimizer": optimizer,
                        "compiled": compiled, "bitmap_bytes": bitmap_bytes,
                        "batch_size": batch_size, "dim": dim, "layers": layers}
            child = subprocess.run([sys.executable, __file__, "--one", json.dumps(settings)],
                                   capture_output=True, text=True)
            if child.returncode:
                rows.append({"size": size, "model": name, "error": child.stderr[-500:]})
            else:
                rows.append(json.loads(child.stdout))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    ratios = {}
    for name in models:
        mine = [r for r in rows if r["model"] == name and "error" not in r]
        if len(mine) > 1:
            base = mine[0]
            ratios[name] = {str(r["size"]): {
                "size": round(r["size"] / base["size"], 1),
                "epoch": round(r["epoch_seconds"] / base["epoch_seconds"], 1),
                "full_ranking": round(r["full_ranking_seconds"] / base["full_ranking_seconds"],
                                      1)} for r in mine[1:]}
    print(json.dumps({"benchmark": "scale", "device": device, "optimizer": optimizer,
                      "compiled": compiled, "bitmap_bytes": bitmap_bytes,
                      "batch_size": batch_size, "dim": dim, "layers": layers, "runs": rows,
                      "ratios_to_smallest": ratios},
                     indent=2))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="?", default="1000000,5000000,20000000")
    parser.add_argument("models", nargs="?", default="biased-mf,neumf,dmf,ials")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--optimizer", help="instead of the recipe's (as train picks it)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction,
                        help="their compiled steps or not (default: as train picks)")
    parser.add_argument("--bitmap-bytes", type=int,
                        help="cap on the negative sampler's pair bitmap (default: the library's)")
    parser.add_argument("--batch-size", type=int,
                        help="samples a batch instead of the recipe's (its growth rule off)")
    parser.add_argument("--dim", type=int, help="factors instead of the recipe's")
    parser.add_argument("--layers", help="a tower's sizes (e.g. 256,256,128,64) instead of "
                                         "the model's default")
    return parser.parse_args()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:  # the child process of one (size, model)
        print(json.dumps(one(**json.loads(sys.argv[2]))))
    else:
        args = parse()
        main([int(x) for x in args.sizes.split(",")], args.models.split(","), args.device,
             args.optimizer, args.compile, args.bitmap_bytes, args.batch_size, args.dim,
             [int(x) for x in args.layers.split(",")] if args.layers else None)
