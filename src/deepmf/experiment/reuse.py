"""Train a run into a folder, or reuse the run already there: what lets ``compare``,
``tune`` and ``reproduce`` be run again after an interruption without redoing work."""

from __future__ import annotations

import shutil
from dataclasses import fields, replace
from pathlib import Path

from deepmf.errors import ConfigError
from deepmf.experiment.config import RunConfig
from deepmf.experiment.run import train_run
from deepmf.experiment.rundir import RunDir
from deepmf.train import Callback

PLACE = ("out", "data_dir", "device")
"""Settings that say where a run happens, not what it computes."""


def matches(requested: RunConfig, stored: RunConfig) -> bool:
    """Whether a stored (resolved) run is what ``requested`` asks for: every setting the
    request sets is the stored one (the recipe filled in the rest the same way)."""
    return all(getattr(stored, f.name) == getattr(requested, f.name) for f in fields(RunConfig)
               if f.name not in PLACE and getattr(requested, f.name) is not None)


def train_or_reuse(config: RunConfig, folder: str | Path, callbacks: list[Callback] = (), *,
                   say=print, replace_other: bool = False,
                   tensorboard: bool = False) -> tuple[Path, dict]:
    """Train ``config`` into ``folder``; when ``folder`` holds a run of the same settings,
    reuse it if finished and resume it if interrupted. A run of other settings there is
    replaced (``replace_other``) or refused in one line. ``tensorboard``: log what is
    trained into the run's ``tensorboard/`` folder."""
    run = RunDir(folder)
    resume = None
    if run.config.is_file():
        if matches(config, run.load_config(finished=False)):
            if run.metrics.is_file():
                say(f"{run.path}: finished earlier with these settings; reused")
                return run.path, run.load_metrics()
            if run.is_unfinished():
                say(f"{run.path}: interrupted earlier; resuming it")
                resume = run.path
        elif not replace_other:
            raise ConfigError(f"{run.path} holds a run with other settings; choose "
                              "another --out")
    if resume is None and run.path.exists() and replace_other:
        shutil.rmtree(run.path)
    board = None
    if tensorboard:
        from deepmf.experiment.tracking import TensorBoardLogger

        board = TensorBoardLogger(run.tensorboard)
    path, metrics = train_run(replace(config, out=str(run.path)),
                              [*callbacks, *filter(None, [board])], resume=resume)
    if board is not None:
        board.log_run(RunDir(path).load_config(), metrics)
    return path, metrics
