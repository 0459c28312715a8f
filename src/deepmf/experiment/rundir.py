"""The run directory: the only code that knows its layout.

::

    RUN/config.toml          every setting the run used (``deepmf train --config`` reruns it)
    RUN/metrics.json         test metrics, chosen epochs, epoch seconds
    RUN/history.csv          one row per epoch (and per split and phase)
    RUN/curves.png           training curves
    RUN/vocab.json           raw user and item ids in index order
    RUN/items.csv            titles and genres, where the data has them
    RUN/checkpoints/SPLIT/   one model per split (see :mod:`deepmf.checkpoint`)

A run is written into a hidden sibling folder and renamed into place only when complete,
so a failed or interrupted run never leaves a directory that looks finished.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from deepmf.checkpoint import read_json, save_checkpoint
from deepmf.data import Dataset, Interactions, Vocabulary
from deepmf.errors import ConfigError, DataError
from deepmf.experiment.config import RunConfig
from deepmf.experiment.plots import plot_curves
from deepmf.experiment.runfiles import read_item_info, read_vocab, run_config
from deepmf.models import Recommender
from deepmf.split import Split


@dataclass
class FoldResult:
    """One split's trained model, the rows it saw, its epochs and its test metrics."""

    split: Split
    model: Recommender
    fit_data: Interactions
    extra_seen: Interactions | None
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    test: dict = field(default_factory=dict)



class RunDir:
    """Paths of one run directory, and reading and writing its files."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config = self.path / "config.toml"
        self.metrics = self.path / "metrics.json"
        self.history = self.path / "history.csv"
        self.curves = self.path / "curves.png"
        self.vocab = self.path / "vocab.json"
        self.items = self.path / "items.csv"
        self.checkpoints = self.path / "checkpoints"

    @staticmethod
    def default_name(config: RunConfig) -> Path:
        """``runs/MODEL-DATASET-SPLIT-TIME``."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"{config.model}-{config.dataset}-{config.split}"
        return Path("runs") / f"{name.replace(':', '_').replace('/', '_')}-{stamp}"

    def checkpoint(self, split: str) -> Path:
        return self.checkpoints / split

    def splits(self) -> list[str]:
        """Splits with a checkpoint, sorted."""
        return sorted(p.name for p in self.checkpoints.glob("*") if p.is_dir())

    def check_free(self) -> None:
        """Refuse to train into a directory that already holds something."""
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise ConfigError(f"run directory {self.path} already exists and is not empty")

    # -- reading -------------------------------------------------------------------------

    def load_config(self) -> RunConfig:
        if not self.config.is_file() or not self.metrics.is_file():
            raise DataError(f"{self.path}: not a deepmf run directory (config.toml or "
                            "metrics.json missing)")
        self.load_metrics()  # a damaged run is refused whole, whatever it is loaded for
        return run_config(self.config)

    def load_metrics(self) -> dict:
        return read_json(self.metrics)

    def load_vocab(self) -> tuple[Vocabulary, Vocabulary]:
        return read_vocab(self.vocab)

    def load_item_info(self, n_items: int) -> tuple[list, list]:
        """Titles (None where unknown) and genre tuples per dense item index."""
        titles, genres = [None] * n_items, [()] * n_items
        if not self.items.is_file():
            return titles, genres
        info = read_item_info(self.items)
        for index, title, genre in zip(info.index.tolist(), info.get("title", [""] * len(info)),
                                       info.get("genres", [""] * len(info))):
            if 0 <= index < n_items:
                titles[index] = str(title) or None
                genres[index] = tuple(g for g in str(genre).split("|") if g)
        return titles, genres

    # -- writing -------------------------------------------------------------------------

    def write(self, config: RunConfig, dataset: Dataset, results: list[FoldResult],
              metrics: dict) -> None:
        """Write every file into a hidden sibling folder, then rename it into place."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = RunDir(self.path.parent / f".{self.path.name}.tmp-{os.getpid()}")
        try:
            shutil.rmtree(tmp.path, ignore_errors=True)
            tmp.path.mkdir()
            tmp._write_files(config, dataset, results, metrics)
            if self.path.exists():
                self.path.rmdir()
            tmp.path.rename(self.path)
        except BaseException:
            shutil.rmtree(tmp.path, ignore_errors=True)
            raise

    def _write_files(self, config: RunConfig, dataset: Dataset, results: list[FoldResult],
                     metrics: dict) -> None:
        self.config.write_text(config.to_toml())
        self.metrics.write_text(json.dumps(metrics, indent=2) + "\n")
        self._write_history(results)
        plot_curves(self.curves, results, metrics["task"])
        vocab = {"users": dataset.users.to_list(), "items": dataset.items.to_list()}
        self.vocab.write_text(json.dumps(vocab, default=str))
        if dataset.item_info is not None:
            info = dataset.item_info.copy()
            info.insert(0, "item", dataset.items.raw(info.index))
            info.to_csv(self.items, index_label="index")
        for result in results:
            save_checkpoint(self.checkpoint(result.split.name), config.model, result.model,
                            result.fit_data, result.extra_seen)

    def _write_history(self, results: list[FoldResult]) -> None:
        rows = [{"split": r.split.name, "phase": "select", **record}
                for r in results for record in r.history]
        leading = ("split", "phase", "epoch", "loss", "seconds")  # epoch 0 has no loss
        columns = list(dict.fromkeys([*leading, *(k for row in rows for k in row)]))
        with open(self.history, "w", newline="") as handle:
            writer = csv.DictWriter(handle, columns)
            writer.writeheader()
            writer.writerows(rows)
