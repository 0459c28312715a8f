"""TensorBoard event files: every epoch's scalars, then the settings and test metrics.

::

    RUN/tensorboard/SPLIT/    one TensorBoard run per split of a run directory
    DIR/tensorboard/trial-N/  one per trial of ``deepmf tune``

Tags: ``train/loss``, ``train/lr``, ``train/epoch_seconds``, ``train/rmse``,
``valid/<metric>`` (``test/<metric>`` when epochs are chosen on test), and the same under
``refit/`` for the explicit refit. The HParams plugin gets the run's settings with its final
test metrics (``result/<metric>``), so ``tensorboard --logdir runs/`` lines up every run.
``tensorboard`` is an optional extra, imported only when a logger is made.
"""

from __future__ import annotations

from pathlib import Path

from deepmf.errors import ConfigError
from deepmf.experiment.config import RunConfig
from deepmf.experiment.rundir import RunDir
from deepmf.train import Callback

PREFIXES = ("train_", "valid_", "test_")


def summary_writer(folder: Path | None = None):
    """A ``SummaryWriter`` on ``folder`` (None: only check that one can be made); a
    one-line error when the tensorboard package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("--tensorboard needs the tensorboard package: "
                          "pip install 'deepmf[tensorboard]'") from None
    return None if folder is None else SummaryWriter(log_dir=str(folder))


def scalar_tag(key: str, phase: str = "select") -> str:
    """The TensorBoard tag of a history record's key (see the module docstring)."""
    name = "epoch_seconds" if key == "seconds" else key
    if phase != "select":
        return f"{phase}/{name}"
    for prefix in PREFIXES:
        if name.startswith(prefix):
            return f"{prefix[:-1]}/{name[len(prefix):]}"
    return f"train/{name}"


class TensorBoardLogger(Callback):
    """A callback that writes each epoch's record as scalars, stepped by epoch.

    Args:
        folder: where the event files go; may be given later with :meth:`attach` (a
            run's directory exists only once training starts).
        per_split: one TensorBoard run per split (``folder/SPLIT``), else all in ``folder``.
    """

    def __init__(self, folder: str | Path | None = None, *, per_split: bool = True):
        self.folder = None if folder is None else Path(folder)
        self.per_split = per_split
        self.split, self.phase = "train", "select"
        self.writer, self.lr = None, None
        summary_writer()  # fail before training when tensorboard is not installed

    def attach(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def attach_run(self, run: str | Path) -> None:
        """Log into a run directory's ``tensorboard/`` folder."""
        self.attach(RunDir(run).tensorboard)

    def run_folder(self, split: str | None = None) -> Path:
        if self.folder is None:
            raise RuntimeError("TensorBoardLogger has no folder; call attach() first")
        return self.folder / (split or self.split) if self.per_split else self.folder

    def on_stage(self, split, phase):
        self.split, self.phase = split, phase

    def on_train_begin(self, model, config):
        self.writer = summary_writer(self.run_folder())
        self.lr = config.lr  # records carry the rate only when it is scheduled

    def on_epoch_end(self, record, model):
        if "loss" in record and "lr" not in record:
            record = {**record, "lr": self.lr}
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(scalar_tag(key, self.phase), value, record["epoch"])

    def on_train_end(self, history):
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def log_hparams(self, hparams: dict, metrics: dict, split: str | None = None) -> None:
        """Write settings and final metrics for the HParams plugin into one run's folder."""
        from torch.utils.tensorboard.summary import hparams as hparams_summaries

        values = {k: _hparam_value(v) for k, v in hparams.items() if v is not None}
        writer = summary_writer(self.run_folder(split))
        for summary in hparams_summaries(values, metrics):
            writer.file_writer.add_summary(summary)
        for tag, value in metrics.items():
            writer.add_scalar(tag, value, 0)
        writer.close()

    def log_run(self, config: RunConfig, metrics: dict) -> None:
        """The finished run's settings and each split's test metrics (``metrics.json``);
        ``deepmf train`` passes the run's resolved ``config.toml``."""
        settings = {k: v for k, v in vars(config).items()
                    if k not in ("out", "data_dir", "device")}
        folds = metrics.get("folds") or [{"split": config.split, "test": metrics["test"]}]
        for fold in folds:
            self.log_hparams(settings, result_metrics(fold["test"]),
                             fold["split"] if self.per_split else None)


def result_metrics(test: dict) -> dict[str, float]:
    """``{"result/rmse": ...}``, full-ranking metrics as ``result/full_<name>``."""
    flat = {f"result/{k}": float(v) for k, v in test.items() if not isinstance(v, dict)}
    flat.update({f"result/full_{k}": float(v) for k, v in test.get("full", {}).items()})
    return flat


def _hparam_value(value):
    if isinstance(value, (bool, int, float, str)):
        return value
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)
