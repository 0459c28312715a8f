"""BayesMF feature sets on the ml-100k folds u1..u5, with myFM's Bayesian FM side by side.

    DEEPMF_DATA_DIR=../shared/data .venv/bin/python benchmarks/bayes_ml100k.py \\
        [--settings plain,svdpp,...] [--samples 500] [--burn-in 20] [--folds u1,u2]

Prints JSON: for each setting, test RMSE per fold (predictions clipped to 1..5, the day of
each test rating passed to models that use it), the mean, and wall seconds (fit + predict);
and, when ``myfm`` is importable (``pip install myfm "setuptools<81"``: myFM 0.4 imports
``pkg_resources``), myFM's MyFMRegressor on the same folds with the same features (relation
blocks for the user and item sides, day one-hot as plain columns, one prior group per
block), the same rank and the same sweeps and kept samples, run right after ours in the
same process at one thread, with the wall-time ratio ours / myFM. myFM has no per-user
noise, so settings with it are matched to myFM's homoscedastic FM over the same features.

Measured (500 kept samples, 20 burn-in, rank 10, one thread, 2 shared cores; mean RMSE
over u1..u5, ours / myFM 0.4.0, wall-time ratio ours / myFM): plain 0.8974 / 0.8969
(0.89), per-user noise alone 0.8931, svdpp 0.8942 / 0.8930 (0.72), flipped 0.8848 /
0.8850 (0.60), days 0.8948 / 0.8935 (1.02), side 0.8893 / 0.8890 (0.86),
timesvdpp-flipped 0.8798 / 0.8792 (0.58), all-but-days 0.8769 / 0.8796 (0.69),
defaults 0.8744 (u1 0.8788) / 0.8777 (u1 0.8830) (0.74).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/torch/myFM load their pools

import time  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402

from benchmarks._common import data_dir, emit, machine  # noqa: E402
from deepmf.models.bayes import BayesMF  # noqa: E402
from deepmf.models.bayes_gibbs import day_numbers, implicit_design, label_design  # noqa: E402
from deepmf.readers import load_dataset  # noqa: E402
from deepmf.readers.side import side_features  # noqa: E402

OFF = dict(implicit_items=False, implicit_users=False, days=False, user_noise=False,
           side=False)
SETTINGS = {  # name -> BayesMF switches (side: the ml-100k user/item labels)
    "plain": OFF,
    "svdpp": OFF | dict(implicit_items=True),
    "flipped": OFF | dict(implicit_users=True),
    "days": OFF | dict(days=True),
    "side": OFF | dict(side=True),
    "user-noise": OFF | dict(user_noise=True),
    "timesvdpp-flipped": OFF | dict(implicit_items=True, implicit_users=True, days=True),
    "all-but-days": dict(days=False),
    "defaults": {},  # BayesMF's own defaults (all on), plus the side labels ml-100k ships
}


def ours(setting: dict, train, test, features, args) -> tuple[float, float]:
    options = {k: v for k, v in setting.items() if k != "side"}
    if setting.get("side", True):
        options.update(features)
    start = time.perf_counter()
    model = BayesMF(train.n_users, train.n_items, dim=args.dim, samples=args.samples,
                    burn_in=args.burn_in, global_mean=float(train.ratings.mean()),
                    interactions=train, **options)
    generator = torch.Generator().manual_seed(args.seed)
    for _ in range(args.burn_in + args.samples):
        model.sweep(train, generator)
    with torch.no_grad():
        pred = model(torch.tensor(test.users), torch.tensor(test.items),
                     torch.tensor(test.timestamps)).clamp(1, 5)
    seconds = time.perf_counter() - start
    return float((pred - torch.tensor(test.ratings)).square().mean().sqrt()), seconds


def peer(setting: dict, train, test, features, args) -> tuple[float, float]:
    """myFM's MyFMRegressor over the same features, as relation blocks."""
    import myfm

    on = {**dict(implicit_items=True, implicit_users=True, days=True, side=True), **setting}
    start = time.perf_counter()
    sides, groups = [], []
    for name, n, implicit, labels in (
            ("user", train.n_users, implicit_design(train.csr), features["user_features"]),
            ("item", train.n_items, implicit_design(train.csr.T.tocsr()),
             features["item_features"])):
        blocks = [sp.identity(n, format="csr")]
        if on[f"implicit_{'items' if name == 'user' else 'users'}"]:
            blocks.append(implicit)
        if on["side"] and labels is not None:
            blocks.append(label_design(labels)[0])
        sides.append(sp.hstack(blocks, format="csr"))
        groups.append([b.shape[1] for b in blocks])
    first = int(day_numbers(train.timestamps).min())
    n_days = int(day_numbers(train.timestamps).max()) - first + 1

    def dates(log):
        if not on["days"]:
            return None
        rows = np.clip(day_numbers(log.timestamps) - first, 0, n_days - 1)
        return sp.csr_matrix((np.ones(len(log)), (np.arange(len(log)), rows)),
                             shape=(len(log), n_days))

    shapes = ([n_days] if on["days"] else []) + groups[0] + groups[1]
    rel = [myfm.RelationBlock(log_ids, side) for log_ids, side in
           ((train.users, sides[0]), (train.items, sides[1]))]
    fm = myfm.MyFMRegressor(rank=args.dim, random_seed=args.seed)
    fm.fit(dates(train), train.ratings.astype(np.float64), X_rel=rel, group_shapes=shapes,
           n_iter=args.burn_in + args.samples, n_kept_samples=args.samples)
    rel_test = [myfm.RelationBlock(test.users, sides[0]), myfm.RelationBlock(test.items, sides[1])]
    pred = np.clip(fm.predict(dates(test), rel_test), 1, 5)
    seconds = time.perf_counter() - start
    return float(np.sqrt(np.mean((pred - test.ratings) ** 2))), seconds


def summary(values: list[tuple[float, float]], folds: list[str]) -> dict:
    errors = [round(e, 4) for e, _ in values]
    return {"fold_rmse": dict(zip(folds, errors)), "rmse": round(float(np.mean(errors)), 4),
            "seconds": round(sum(s for _, s in values), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--folds", default="u1,u2,u3,u4,u5")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--burn-in", type=int, default=20)
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-myfm", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        import myfm  # noqa: F401

        has_peer = not args.no_myfm
    except ImportError:
        has_peer = False
    dataset = load_dataset("ml-100k", data_dir())
    features = side_features(dataset)
    folds, results = args.folds.split(","), {}
    for name in args.settings.split(","):
        mine, theirs = [], []
        for fold in folds:
            train, test = dataset.given[fold]
            mine.append(ours(SETTINGS[name], train, test, features, args))
            if has_peer:
                theirs.append(peer(SETTINGS[name], train, test, features, args))
        results[name] = {"bayes-mf": summary(mine, folds)}
        if has_peer:
            results[name]["myfm"] = summary(theirs, folds)
            results[name]["time_ratio"] = round(results[name]["bayes-mf"]["seconds"]
                                                / results[name]["myfm"]["seconds"], 3)
        print(name, results[name], flush=True)  # progress; the JSON follows at the end
    emit({"benchmark": "bayes_ml100k", "split": "folds " + ",".join(folds),
          "samples": args.samples, "burn_in": args.burn_in, "dim": args.dim,
          "machine": machine(), "settings": results})


if __name__ == "__main__":
    main()
