"""Every user's top k from the command line: seconds and peak RSS of ``deepmf recommend RUN
--all-users --out FILE`` (a fresh process, as a user runs it), beside the rows written.

    .venv/bin/python -m benchmarks.recommend_all [RUN_DIR ...] [--size N] [--model M]
        [--k 10] [--format parquet|csv]

Without run directories it first trains ``--model`` (default ``biased-mf``) one epoch on a
synthetic log of ``--size`` interactions in ml-20m's shape scaled down (as
``benchmarks/scale.py`` shapes it: 138,000 users x 27,000 items at 20M), into a temporary
folder; ``--size 20000000`` takes some minutes to train on two cores. Peak RSS is the
recommending process's own (``ru_maxrss`` from ``os.wait4``). Prints JSON.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks._common import deepmf, emit, timed
from benchmarks.scale import shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="run directories (deepmf train --out)")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--model", default="biased-mf")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    args = parser.parse_args()

    import pandas as pd

    result = {"benchmark": "recommend_all", "k": args.k, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        runs = [Path(r) for r in args.runs]
        if not runs:
            users, items = shape(args.size)
            run = Path(tmp, "run")
            trained = timed(deepmf(
                "train", "--model", args.model, "--epochs", "1", "--quiet", "--out", str(run),
                "--dataset", f"synthetic:users={users},items={items},interactions={args.size}"))
            result["trained"] = {k: trained[k] for k in ("wall", "code")}
            if trained["code"]:
                result["error"] = trained["stderr"]
                emit(result)
                return
            runs = [run]
        for run in runs:
            out = Path(tmp, f"top-{run.name}.{args.format}")
            done = timed(deepmf("recommend", str(run), "--all-users", "--k", str(args.k),
                                "--out", str(out)))
            row = {"run": str(run), "stdout": done["stdout"].strip()[-300:],
                   **{k: done[k] for k in ("wall", "cpu", "peak_rss_gb", "code", "stderr")}}
            if row["code"] == 0:
                table = pd.read_parquet(out) if args.format == "parquet" else pd.read_csv(out)
                row.update(rows=len(table), users=int(table["user"].nunique()),
                           file_mb=round(out.stat().st_size / 1e6, 1))
            result["runs"].append(row)
    emit(result)


if __name__ == "__main__":
    main()
