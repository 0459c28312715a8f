"""iALS against the ``implicit`` package's ALS, and iALS's quality under both selections.

    DEEPMF_DATA_DIR=../shared/data .venv/bin/python benchmarks/implicit_solvers.py \
        [--threads T] [--dim D] [--iterations N] [--repeats R] [--quality ml-1m,AMusic,ml-100k]

Race (always): on the NCF ml-1m files, ``ials`` at ``D`` factors (its other defaults) and
``implicit.cpu.als.AlternatingLeastSquares`` at ``D`` factors (3 CG steps; once with its
defaults, Hu et al.'s confidence alpha 1 and regularization 0.01, once with the stronger
``PEERS`` setting) run ``N`` iterations each, one after the other in this process, all on
``T`` threads (torch's intra-op pool; implicit's ``num_threads`` with BLAS held to one
thread, as implicit asks). After every iteration the test HR@10 / NDCG@10 (the files' 99
negatives) are measured outside the clock; the clock holds everything else (ours: model
construction and sweeps; implicit: ``fit``'s set-up and iterations). It reports the seconds
to HR@10 >= 0.70 for each and the ratios, over ``R`` rounds in rotating order (the machine
is shared, and its load drifts).

Quality (``--quality``): ``ials`` with all its defaults, ``valid`` (sweeps chosen on one
held-out training interaction per user with 99 sampled negatives; the test numbers of that
sweep) and ``test`` (trained on all of train, best sweep on test: the papers' protocol).
``ml-100k`` is leave-latest-out on all ratings as implicit feedback. Needs ``implicit``
(the race's peer only; skipped when missing).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks._common import data_dir, emit, machine
from deepmf.evaluate import evaluate_sampled
from deepmf.models.als import IALS
from deepmf.models.mf import MF
from deepmf.readers import load_dataset
from deepmf.sampling import sample_test_negatives
from deepmf.split import make_splits, validation_split

TARGET = 0.70
PEERS = {"implicit (defaults)": {},
         # Hu et al.'s confidence 10 is iALS's alpha0 = 0.1; on ml-1m's test curves this
         # pair reaches 0.70 in 3 iterations where the defaults level off at 0.694 (chosen
         # on test to give the peer its best case, not ours).
         "implicit (alpha=10, regularization=50)": {"alpha": 10.0, "regularization": 50.0}}


def first_reaching(curve: list[dict]) -> float | None:
    return next((row["seconds"] for row in curve if row["hr@10"] >= TARGET), None)


def point(iteration: int, seconds: float, metrics: dict) -> dict:
    return {"iteration": iteration, "seconds": round(seconds, 3),
            "hr@10": round(metrics["hr@10"], 4), "ndcg@10": round(metrics["ndcg@10"], 4)}


def race_ours(train, test, negatives, dim: int, iterations: int) -> list[dict]:
    start, curve = time.perf_counter(), []
    model = IALS(train.n_users, train.n_items, dim=dim)
    seconds = time.perf_counter() - start
    for iteration in range(1, iterations + 1):
        start = time.perf_counter()
        model.sweep(train, torch.Generator())
        seconds += time.perf_counter() - start  # the evaluation is off the clock
        curve.append(point(iteration, seconds, evaluate_sampled(model, test, negatives)))
    return curve


def race_implicit(train, test, negatives, dim: int, iterations: int, threads: int,
                  options: dict):
    try:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    curve, off_clock = [], [0.0]
    scorer = MF(train.n_users, train.n_items, dim=dim)

    def callback(iteration, _elapsed, _loss):
        paused = time.perf_counter()
        seconds = paused - start - off_clock[0]
        with torch.no_grad():
            scorer.user_factors.weight.copy_(torch.from_numpy(model.user_factors))
            scorer.item_factors.weight.copy_(torch.from_numpy(model.item_factors))
        curve.append(point(iteration + 1, seconds, evaluate_sampled(scorer, test, negatives)))
        off_clock[0] += time.perf_counter() - paused

    with threadpool_limits(1, "blas"):
        start = time.perf_counter()
        model = AlternatingLeastSquares(factors=dim, iterations=iterations,
                                        num_threads=threads, random_state=0, **options)
        model.fit(train.csr, show_progress=False, callback=callback)
    return curve


def race(root, threads: int, dim: int, iterations: int, repeats: int) -> dict:
    """Each contender ``repeats`` times, the order rotated every round, so a machine that
    is busier in one stretch slows all of them; ratios are taken within a round."""
    dataset = load_dataset("ncf:deepcf/ml-1m", root)
    train, test = dataset.given["given"]
    negatives = dataset.test_negatives
    runners = {"ials": lambda: race_ours(train, test, negatives, dim, iterations)}
    for name, options in PEERS.items():
        runners[name] = lambda options=options: race_implicit(
            train, test, negatives, dim, iterations, threads, options)
    names, curves = list(runners), {name: [] for name in runners}
    for round_ in range(repeats):
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            curves[name].append(runners[name]())
    result = {}
    ours = [first_reaching(curve) for curve in curves["ials"]]
    for name in names:
        if curves[name][0] is None:
            result[name] = "skipped: the implicit package is not importable"
            continue
        times = [first_reaching(curve) for curve in curves[name]]
        result[name] = {"options": PEERS.get(name, "defaults"), "curve": curves[name][0],
                        "seconds_to_target": times}
        if name != "ials":
            ratios = [a / b for a, b in zip(ours, times) if a and b]
            result[name]["ratio_ials_over_it"] = [round(r, 3) for r in ratios]
            result[name]["median_ratio"] = round(float(np.median(ratios)), 3) \
                if ratios else None
    return result


def splits(name: str, root):
    """``(train, test, test negatives, known rows for validation negatives)``."""
    if name == "ml-100k":
        dataset = load_dataset("ml-100k", root, download=False)
        split = make_splits(dataset, "loo")[0]
        negatives = sample_test_negatives(dataset.interactions, split.test, 99, seed=0)
        return split.train.implicit(), split.test.implicit(), negatives
    dataset = load_dataset(f"ncf:deepcf/{name}", root)
    train, test = dataset.given["given"]
    return train, test, dataset.test_negatives


def select(model, fit_data, valid, valid_negatives, test, negatives, sweeps: int) -> dict:
    """Best sweep on ``valid`` (HR@10, then NDCG@10), with its test metrics."""
    best, seconds = None, 0.0
    for sweep in range(1, sweeps + 1):
        start = time.perf_counter()
        model.sweep(fit_data, torch.Generator())
        seconds += time.perf_counter() - start
        score = evaluate_sampled(model, valid, valid_negatives)
        key = (score["hr@10"], score["ndcg@10"])
        if best is None or key > best[0]:
            tested = evaluate_sampled(model, test, negatives) if valid is not test else score
            best = (key, sweep, tested)
    return {"sweep": best[1], "hr@10": round(best[2]["hr@10"], 4),
            "ndcg@10": round(best[2]["ndcg@10"], 4), "train_seconds": round(seconds, 2)}


def quality(name: str, root, sweeps: int) -> dict:
    train, test, negatives = splits(name, root)
    fit_data, valid = validation_split(train, seed=0, per_user=True)
    valid_negatives = sample_test_negatives(train, valid, 99, seed=0)
    make = lambda: IALS(train.n_users, train.n_items)  # noqa: E731  (all defaults)
    return {
        "valid": select(make(), fit_data, valid, valid_negatives, test, negatives, sweeps),
        "test": select(make(), train, test, negatives, test, negatives, sweeps),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quality", default="")
    parser.add_argument("--sweeps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = data_dir()
    result = {"benchmark": "implicit_solvers", "machine": machine(),
              "threads": {"torch": args.threads, "implicit num_threads": args.threads,
                          "implicit BLAS": 1},
              "race": {"dataset": "ncf:deepcf/ml-1m", "dim": args.dim,
                       "iterations": args.iterations, "repeats": args.repeats,
                       "target_hr@10": TARGET,
                       **race(root, args.threads, args.dim, args.iterations, args.repeats)}}
    if args.quality:
        result["quality"] = {"model": "ials, all defaults", "sweeps": args.sweeps,
                             **{name: quality(name, root, args.sweeps)
                                for name in args.quality.split(",")}}
    emit(result)


if __name__ == "__main__":
    main()
