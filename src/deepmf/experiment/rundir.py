"""The run directory: the only code that knows its layout.

::

    RUN/config.toml          every setting the run used (``deepmf train --config`` reruns it)
    RUN/metrics.json         test metrics, chosen epochs, epoch seconds
    RUN/history.csv          one row per epoch (and per split and phase)
    RUN/curves.png           training curves
    RUN/vocab.json           raw user and item ids in index order
    RUN/items.csv            titles and genres, where the data has them
    RUN/checkpoints/SPLIT/   one model per split (see :mod:`deepmf.checkpoint`)
    RUN/tensorboard/SPLIT/   TensorBoard events, with ``--tensorboard``

    RUN/state/               while training: each split's loop state after its last epoch

A run directory is created when training starts, with ``config.toml`` and ``state/``;
``metrics.json`` is written last, when everything else is in place, and ``state/`` is then
removed. A directory without ``metrics.json`` is an unfinished run, which
``deepmf train --resume RUN`` continues from its last finished epoch. Every file is
written to a temporary name and renamed into place, so none is ever half-written.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from deepmf import snapshot
from deepmf.checkpoint import read_json, save_checkpoint
from deepmf.data import Dataset, Interactions, Vocabulary
from deepmf.errors import ConfigError, DataError
from deepmf.experiment.config import NOTES_HEADER, RunConfig
from deepmf.experiment.plots import plot_curves
from deepmf.experiment.runfiles import read_item_info, read_vocab, run_config
from deepmf.files import replacing, write_text
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
        self.state = self.path / "state"
        self.tensorboard = self.path / "tensorboard"

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

    def is_unfinished(self) -> bool:
        return self.state.is_dir() and not self.metrics.is_file()

    def check_free(self) -> None:
        """Refuse to train into a directory that already holds something."""
        if self.is_unfinished():
            raise ConfigError(f"{self.path} is an unfinished run; continue it with "
                              f"deepmf train --resume {self.path}")
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise ConfigError(f"run directory {self.path} already exists and is not empty")

    # -- reading -------------------------------------------------------------------------

    def load_config(self, finished: bool = True) -> RunConfig:
        """The run's resolved settings; a finished run's unless ``finished`` is False."""
        if finished and self.is_unfinished():
            raise DataError(f"{self.path} is an unfinished run; continue it with "
                            f"deepmf train --resume {self.path}")
        if not self.config.is_file() or (finished and not self.metrics.is_file()):
            raise DataError(f"{self.path}: not a deepmf run directory (config.toml or "
                            "metrics.json missing)")
        if finished:
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

    def begin(self, config: RunConfig, notes: dict | None = None) -> None:
        """Create the directory of a new run with its settings and an empty ``state/``."""
        self.check_free()
        self.state.mkdir(parents=True, exist_ok=True)
        write_text(self.config, config.to_toml(notes))

    def store(self, split: str, phase: str) -> LoopState:
        """Where one phase of one split keeps its loop state between epochs."""
        return LoopState(self.state / split, phase)

    def discard(self) -> None:
        """Remove the directory of a run that failed on bad input (nothing to resume)."""
        shutil.rmtree(self.path, ignore_errors=True)

    def finish(self, config: RunConfig, dataset: Dataset, results: list[FoldResult],
               metrics: dict, notes: dict | None = None) -> None:
        """Write every file of the finished run, ``metrics.json`` last; drop ``state/``.
        Without ``notes`` (a resumed run) those of ``config.toml`` are kept."""
        kept = self.config.read_text().split(NOTES_HEADER, 1) if self.config.is_file() else []
        text = config.to_toml(notes)
        write_text(self.config, text if notes or len(kept) < 2 else
                   text + "\n" + NOTES_HEADER + kept[1])
        self._write_history(results)
        with replacing(self.curves) as tmp:
            plot_curves(tmp, results, metrics["task"])
        vocab = {"users": dataset.users.to_list(), "items": dataset.items.to_list()}
        write_text(self.vocab, json.dumps(vocab, default=str))
        if dataset.item_info is not None:
            info = dataset.item_info.copy()
            info.insert(0, "item", dataset.items.raw(info.index))
            write_text(self.items, info.to_csv(index_label="index"))
        for result in results:
            folder = self.checkpoint(result.split.name)
            shutil.rmtree(folder, ignore_errors=True)
            save_checkpoint(folder, config.model, result.model, result.fit_data,
                            result.extra_seen)
        write_text(self.metrics, json.dumps(metrics, indent=2) + "\n")
        shutil.rmtree(self.state, ignore_errors=True)

    def _write_history(self, results: list[FoldResult]) -> None:
        rows = [{"split": r.split.name, "phase": "select", **record}
                for r in results for record in r.history]
        leading = ("split", "phase", "epoch", "loss", "seconds")  # epoch 0 has no loss
        columns = list(dict.fromkeys([*leading, *(k for row in rows for k in row)]))
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, columns)
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.history, text.getvalue())


class LoopState:
    """A :class:`deepmf.train.LoopStore` in a folder of the run: one snapshot per phase."""

    def __init__(self, folder: Path, name: str):
        self.folder, self.name = folder, name

    def load(self) -> dict | None:
        try:
            return snapshot.load(self.folder, self.name)
        except Exception as error:  # safetensors and JSON raise many kinds for a bad file
            raise DataError(f"{self.folder / self.name}: saved training state is damaged "
                            f"({' '.join(str(error).split())[:120]})") from None

    def save(self, state: dict) -> None:
        snapshot.save(self.folder, self.name, state)
