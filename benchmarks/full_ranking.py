"""Seconds to rank every item for every user of the NCF ml-1m files (full-ranking protocol).

    DEEPMF_DATA_DIR=../shared/data .venv/bin/python -m benchmarks.full_ranking \
        [--models gmf,mlp,neumf,dmf,cfnet-ml] [--repeats 3] [--old REF [--rounds R]] \
        [--dataset NAME] [--users N] [--train-epochs N | --trained FOLDER]

Times ``evaluate_full`` (score all 3,706 items for each of the 6,040 test users in batches
of ``evaluate_full``'s default size, mask training items, take the top 10, compute the
metrics) for models built with seed 0 at their default sizes (``biased-mf`` at its ranking
recipe's 128 factors). For the models whose full ranking is screened on the popular
items first (``Recommender.scores_subsets``), the cost depends on the weights:
``--train-epochs N`` first trains each model N epochs with its recipe (``deepmf train
--epochs N``, before any timing; ``--trained FOLDER`` ranks runs already there), and
every version ranks those same trained models;
untrained, the screen rules out few users and the pass costs about what it did without
one. ``--dataset`` ranks another data set's users instead, split by leave-one-out where it
has no split of its own (``synthetic:users=138000,items=27000,interactions=20000000`` is
ml-20m's shape), and ``--users N`` only the test users with ids below N. On the ml-1m
files, each model's sampled ranking (each test item against the files' 99 negatives,
``evaluate_sampled``) is timed the same way (``sampled``). The first call
(warm-up: thread pools, allocator) is reported apart; ``seconds`` is the median of the
repeats after it. With ``--old REF`` the same runs, in a fresh process, use commit REF's
``src/`` (checked out into a temporary worktree), and each model reports the time ratio and
the largest difference between the two versions' metrics; ``--rounds R`` runs R processes
of each version, alternating (the machine's pace drifts), and takes the median over all of
a version's repeats. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks._common import ROOT, data_dir, emit, machine, old_checkout

ML1M = "ncf:deepcf/ml-1m"


def measure(models: list[str], repeats: int, dataset: str = ML1M,
            users: int | None = None, trained: str | None = None) -> dict:
    import torch

    from deepmf.checkpoint import load_checkpoint
    from deepmf.data import Interactions
    from deepmf.evaluate import evaluate_full, evaluate_sampled
    from deepmf.models import build_model
    from deepmf.readers import load_dataset
    from deepmf.split import make_splits

    loaded = load_dataset(dataset, data_dir() if dataset == ML1M else None)
    split = make_splits(loaded, "given" if dataset == ML1M else "loo")[0]
    train, test = split.train, split.test
    if users is not None:
        keep = test.users < users
        test = Interactions(test.users[keep], test.items[keep], n_users=test.n_users,
                            n_items=test.n_items)
    results = {}
    for name in models:
        torch.manual_seed(0)
        if trained:
            model = load_checkpoint(_checkpoint(trained, name))[1]
        else:
            model = build_model(name, train, **({"dim": 128} if name == "biased-mf" else {}))
        metrics, first, times = _timed(lambda: evaluate_full(model, train, test), repeats)
        results[name] = {"seconds": round(statistics.median(times), 3),
                         "runs": [round(t, 3) for t in times], "first_call": round(first, 3),
                         "metrics": metrics}
        if dataset == ML1M and users is None:  # and the papers' protocol, on its negatives
            sampled, _, times = _timed(lambda: evaluate_sampled(
                model, test, loaded.test_negatives), repeats)
            results[name]["sampled"] = {"seconds": round(statistics.median(times), 3),
                                        "runs": [round(t, 3) for t in times],
                                        "metrics": sampled}
    return results


def _timed(call, repeats: int) -> tuple:
    """``call()``'s result, the first call's seconds and those of ``repeats`` more."""
    start = time.perf_counter()
    result = call()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return result, first, times


def _checkpoint(folder: str, name: str):
    """The one checkpoint of ``folder``'s run of model ``name``."""
    from pathlib import Path

    return next((Path(folder) / name / "checkpoints").iterdir())


def train_models(models: list[str], dataset: str, epochs: int, folder: str) -> None:
    """Each model trained ``epochs`` epochs with its recipe into ``folder/NAME`` (by the CLI,
    in a process of its own: it sets the process's threads)."""
    for name in models:
        subprocess.run([sys.executable, "-m", "deepmf", "train", "--model", name, "--dataset",
                        dataset, "--epochs", str(epochs), "--out", os.path.join(folder, name),
                        "--quiet", *(["--data-dir", str(data_dir())] if dataset == ML1M else [])],
                       check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="gmf,mlp,neumf,dmf")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--old", help="also time commit OLD's code, in its own process")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --old: processes of each version, alternating")
    parser.add_argument("--dataset", default=ML1M, help="another data set to rank")
    parser.add_argument("--users", type=int, help="rank only the test users below this id")
    parser.add_argument("--train-epochs", type=int,
                        help="rank models trained this many epochs (each its recipe)")
    parser.add_argument("--trained", help="rank the runs FOLDER/NAME (deepmf train --out) "
                        "instead of untrained models")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    models = args.models.split(",")
    if args.worker:  # one version's side: plain JSON on stdout
        print(json.dumps(measure(models, args.repeats, args.dataset, args.users, args.trained)))
        return
    result = {"benchmark": "full_ranking", "dataset": args.dataset, "users": args.users,
              "train_epochs": args.train_epochs, "machine": machine()}
    with tempfile.TemporaryDirectory() as trained:
        if args.train_epochs:
            train_models(models, args.dataset, args.train_epochs, trained)
        _compare(args, models, result, trained if args.train_epochs else args.trained)


def _compare(args, models: list[str], result: dict, trained: str | None) -> None:
    """This version alone, or alternating with ``--old``'s in fresh processes."""
    if not args.old:
        result["models"] = measure(models, args.repeats, args.dataset, args.users, trained)
        emit(result)
        return
    worker = [sys.executable, "-m", "benchmarks.full_ranking", "--worker", "--models",
              args.models, "--repeats", str(args.repeats), "--dataset", args.dataset,
              *(["--users", str(args.users)] if args.users is not None else []),
              *(["--trained", trained] if trained else [])]
    sides: dict[str, list[dict]] = {"new": [], "old": []}
    with old_checkout(args.old) as old_src:
        for _ in range(args.rounds):  # alternating: the machine's drift falls on both
            for label, src in (("new", ROOT / "src"), ("old", old_src)):
                child = subprocess.run(worker, cwd=ROOT, capture_output=True, text=True,
                                       check=True, env={**os.environ, "PYTHONPATH":
                                                        f"{src}{os.pathsep}{ROOT}"})
                sides[label].append(json.loads(child.stdout))
    merged = {label: {name: _merged([r[name] for r in runs]) for name in models}
              for label, runs in sides.items()}
    result["models"], result["old"] = merged["new"], {"ref": args.old, "models": merged["old"]}
    for name, new in result["models"].items():
        for part, old in ((new, merged["old"][name]),
                          (new.get("sampled"), merged["old"][name].get("sampled"))):
            if part and old:
                part["new_over_old"] = round(part["seconds"] / old["seconds"], 3)
                part["max_metric_difference"] = max(abs(v - old["metrics"][k])
                                                    for k, v in part["metrics"].items())
    emit(result)


def _merged(runs: list[dict]) -> dict:
    """One model's processes as one: every timed run, their median, the first process's
    metrics (the same in each) and each process's first call; its sampled ranking too."""
    times = [t for r in runs for t in r["runs"]]
    merged = {"seconds": round(statistics.median(times), 3), "runs": times,
              "metrics": runs[0]["metrics"]}
    if "first_call" in runs[0]:
        merged["first_call"] = [r["first_call"] for r in runs]
    if "sampled" in runs[0]:
        merged["sampled"] = _merged([r["sampled"] for r in runs])
    return merged


if __name__ == "__main__":
    main()
