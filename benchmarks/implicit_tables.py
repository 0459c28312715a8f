"""The NCF and DeepCF tables beside the published numbers: a thin caller of the recipes
that ``deepmf reproduce`` trains (``src/deepmf/recipes/*.toml``; ``deepmf recipes``).

    DEEPMF_DATA_DIR=../shared/data .venv/bin/python benchmarks/implicit_tables.py \
        [--tables ncf,deepcf] [--datasets ml-1m,AMusic] [--rows neumf-32,...] \
        [--select valid,test] [--keep DIR]

prints every table's rows (ours with both selection protocols, the numbers measured
before, the published ones) and the machine as JSON. Equivalent to
``deepmf reproduce TABLE --datasets ... --rows ... --select ... --out DIR``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks._common import data_dir, emit, machine
from deepmf.experiment.reproduce import reproduce, tables_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="ncf,deepcf")
    parser.add_argument("--datasets", default=None, help="default: each table's own")
    parser.add_argument("--rows", default=None, help="default: all (parts come along)")
    parser.add_argument("--select", default="valid,test")
    parser.add_argument("--keep", default=None,
                        help="folder to keep the run directories in (default: a temporary one)")
    args = parser.parse_args()
    split = lambda text: text.split(",") if text else None  # noqa: E731
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep or tmp)
        for table in split(args.tables):
            for recipes in tables_for(table, split(args.datasets)):
                results.append(reproduce(recipes, out / table, rows=split(args.rows),
                                         selections=tuple(split(args.select)),
                                         data_dir=str(data_dir()),
                                         say=lambda line: print(f"# {line}", flush=True)))
    emit({"benchmark": "implicit_tables", "machine": machine(), "tables": results})


if __name__ == "__main__":
    main()
