"""The resolved configuration of a run: one flat, frozen record, saved as TOML."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import tomllib

from deepmf.errors import ConfigError
from deepmf.readers.table import TableFormat

MODEL_FIELDS = ("dim", "layers", "user_layers", "item_layers", "dropout")
"""Settings that become model constructor keywords."""
LAYER_FIELDS = ("layers", "user_layers", "item_layers")


@dataclass(frozen=True)
class RunConfig:
    """Everything ``deepmf train`` needs; command-line flags override a ``--config`` file."""

    model: str = "biased-mf"
    dataset: str = "ml-100k"
    split: str | None = None
    """None: ``given`` for data that ships its own split (the NCF files), else ``loo`` for
    the implicit task, and for the explicit one ``u1`` where the data has ml-100k's
    official folds, else ``random:0.2``."""
    task: str | None = None
    """explicit or implicit; None picks by model and data."""
    data_dir: str | None = None
    out: str | None = None
    # model
    dim: int | None = None
    layers: tuple[int, ...] | None = None
    user_layers: tuple[int, ...] | None = None
    item_layers: tuple[int, ...] | None = None
    dropout: float | None = None
    # training
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    weight_decay: float | None = None
    reg: float | None = None
    num_neg: int | None = None
    patience: int | None = None
    lr_decay: float | None = None
    seed: int = 0
    device: str = "auto"
    loss: str | None = None
    """mse for explicit; bce or bpr for implicit (default bce)."""
    # protocol
    valid_fraction: float = 0.05
    refit: bool | None = None
    """Explicit task: after early stopping, retrain on train + validation for the best
    number of epochs (default on)."""
    select_on: str = "valid"
    """valid (honest default) or test (the papers' protocol: best epoch on test)."""
    k: int = 10
    min_rating: float | None = None
    """Implicit task: keep only ratings at or above this as positives."""
    sample_users: int | None = None
    """Keep this many randomly chosen users (seeded) and all their rows, before the split."""
    pretrain: str | None = None
    """``RUN_A,RUN_B``: initialise a composite model from two trained runs."""
    # generic log columns
    sep: str | None = None
    user_col: str | None = None
    item_col: str | None = None
    rating_col: str | None = None
    time_col: str | None = None

    def __post_init__(self):
        for field in fields(self):
            _check_kind(field.name, field.type, getattr(self, field.name))
        for name, low, high in BOUNDS:
            value = getattr(self, name)
            if value is not None and not (low <= value and (high is None or value < high)):
                upper = f" and below {high}" if high is not None else ""
                raise ConfigError(f"--{name.replace('_', '-')} must be at least {low}{upper}, "
                                  f"not {value}")
        if self.select_on not in ("valid", "test"):
            raise ConfigError("--select-on must be valid or test")
        if self.task not in (None, "explicit", "implicit"):
            raise ConfigError("--task must be explicit or implicit")
        if not 0 < self.valid_fraction < 1:
            raise ConfigError("--valid-fraction must lie strictly between 0 and 1")
        if self.k < 1:
            raise ConfigError("--k must be at least 1")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"--lr must be a positive number, not {self.lr}")
        for name in LAYER_FIELDS:  # their sizes are the models' to check
            sizes = getattr(self, name)
            if sizes is not None:
                if not all(isinstance(x, int) and not isinstance(x, bool) for x in sizes):
                    raise ConfigError(f"--{name.replace('_', '-')} must be whole numbers, "
                                      f"not {list(sizes)}")
                object.__setattr__(self, name, tuple(sizes))

    def table_format(self) -> TableFormat:
        """How to read the dataset when it is a log file."""
        return TableFormat(self.sep, self.user_col, self.item_col, self.rating_col,
                           self.time_col)

    def to_toml(self, notes: dict[str, str] | None = None) -> str:
        """TOML lines, then ``notes`` (why a rule set a value) as comments."""
        lines = []
        for key, value in asdict(self).items():
            if value is None:
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        if notes:
            lines += ["", NOTES_HEADER] + [f"# {key}: {note}" for key, note in notes.items()]
        return "\n".join(lines) + "\n"


NOTES_HEADER = "# Set by rules of this log's statistics (deepmf.experiment.recipes):"


BOUNDS = (("dim", 1, None), ("dropout", 0, 1), ("reg", 0, None), ("weight_decay", 0, None),
          ("patience", 0, None), ("epochs", 1, None), ("batch_size", 1, None),
          ("num_neg", 1, None), ("sample_users", 1, None))
"""Ranges the trainer and models do not check themselves: (field, lowest, below this)."""

_KINDS = {  # annotation: the Python types it accepts, and how an error names them
    "int": ((int,), "a whole number"),
    "float": ((int, float), "a number"),
    "bool": ((bool,), "true or false"),
    "str": ((str,), "text"),
    "tuple[int, ...]": ((tuple, list), "a list of whole numbers"),
}


def _check_kind(name: str, annotation: str, value) -> None:
    """One line, not a traceback deep in training, for a value of the wrong kind (as a
    config file can give: ``epochs = "3"``)."""
    if value is None:
        return
    kind = _KINDS.get(annotation.removesuffix(" | None"))
    if kind is None:
        return
    allowed, wanted = kind
    if isinstance(value, bool) and bool not in allowed or not isinstance(value, allowed):
        raise ConfigError(f"--{name.replace('_', '-')} must be {wanted}, not {value!r}")


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def read_config(path: str | Path) -> dict:
    """Keys of a TOML file (flag names, dashes or underscores), checked against RunConfig."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    known = {f.name for f in fields(RunConfig)}
    values = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ConfigError(f"{path}: unknown setting {key!r}")
        values[name] = value
    return values
