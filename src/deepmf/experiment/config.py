"""The resolved configuration of a run: one flat, frozen record, saved as TOML."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import tomllib

from deepmf.errors import ConfigError
from deepmf.models import check_name
from deepmf.readers.formats import TableFormat

MODEL_FIELDS = ("dim", "layers", "user_layers", "item_layers", "dropout", "unobserved_weight",
                "samples", "burn_in", "implicit_items", "implicit_users", "days", "user_noise")
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
    unobserved_weight: float | None = None
    """iALS: the weight of every pair the user did not interact with (α₀)."""
    samples: int | None = None
    """bayes-mf: Gibbs sweeps kept and averaged for prediction."""
    burn_in: int | None = None
    """bayes-mf: sweeps drawn and discarded before the first kept one."""
    implicit_items: bool | None = None
    """bayes-mf: add the items each user rated in training to the user (SVD++)."""
    implicit_users: bool | None = None
    """bayes-mf: add the users who rated each item in training to the item ("flipped")."""
    days: bool | None = None
    """bayes-mf: the day of the rating as a field (None: where the data has timestamps)."""
    user_noise: bool | None = None
    """bayes-mf: a noise scale per user instead of one for all ratings."""
    side_features: bool | None = None
    """bayes-mf: the users' and items' labels the data ships (age, gender, genres...)."""
    # training
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    weight_decay: float | None = None
    reg: float | None = None
    """L2 strength: on the rows each batch uses (SGD models), or the models' own λ (ALS)."""
    num_neg: int | None = None
    patience: int | None = None
    lr_decay: float | None = None
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    """CPU threads for training; None: ``$DEEPMF_THREADS``, else 1, or the free cores for the
    DeepCF models (see :mod:`deepmf.device`)."""
    compile: bool | None = None
    """mf, biased-mf, gmf, mlp, neumf: their CPU steps compiled by ``torch.compile`` (a C++
    compiler needed; 5-20 s of compiling). None: on where it pays
    (:func:`deepmf.experiment.plan.compiles_by_default`)."""
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
    rating_range: tuple[float, float] | None = None
    """Lowest and highest valid rating of a log file; None: the ratings' own span."""

    def __post_init__(self):
        for field in fields(self):
            _check_kind(field.name, field.type, getattr(self, field.name))
            _check_finite(field.name, getattr(self, field.name))
        check_name(self.model)
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
        if self.lr_decay is not None and not 0 < self.lr_decay <= 1:
            raise ConfigError(f"--lr-decay must lie in (0, 1] (1: off), not {self.lr_decay}")
        if self.rating_range is not None:
            span = list(self.rating_range)
            numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in span)
            if len(span) != 2 or not numbers or not span[0] < span[1]:
                raise ConfigError("--rating-range must be two numbers LOW,HIGH with LOW below "
                                  f"HIGH, not {span}")
            object.__setattr__(self, "rating_range", (float(span[0]), float(span[1])))
        self.table_format()  # checks --sep
        for name in LAYER_FIELDS:  # how sizes fit together is the models' to check
            sizes = getattr(self, name)
            if sizes is not None:
                if not all(isinstance(x, int) and not isinstance(x, bool) for x in sizes):
                    raise ConfigError(f"--{name.replace('_', '-')} must be whole numbers, "
                                      f"not {list(sizes)}")
                if not sizes or min(sizes) < 1:  # before any data is read
                    raise ConfigError(f"--{name.replace('_', '-')} must be one or more "
                                      f"positive sizes, not {list(sizes)}")
                object.__setattr__(self, name, tuple(sizes))

    def table_format(self) -> TableFormat:
        """How to read the dataset when it is a log file."""
        return TableFormat(self.sep, self.user_col, self.item_col, self.rating_col,
                           self.time_col, rating_range=self.rating_range)

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


INT64 = 2**63
BOUNDS = (("dim", 1, INT64), ("dropout", 0, 1), ("reg", 0, None), ("weight_decay", 0, None),
          ("patience", 0, INT64), ("epochs", 1, INT64), ("batch_size", 1, INT64),
          ("num_neg", 1, INT64), ("sample_users", 1, INT64), ("seed", 0, INT64),
          ("k", 1, INT64), ("threads", 1, 1025), ("unobserved_weight", 0, None),
          ("samples", 1, INT64), ("burn_in", 0, INT64))
"""Ranges the trainer and models do not check themselves: (field, lowest, below this)."""

_KINDS = {  # annotation: the Python types it accepts, and how an error names them
    "int": ((int,), "a whole number"),
    "float": ((int, float), "a number"),
    "bool": ((bool,), "true or false"),
    "str": ((str,), "text"),
    "tuple[int, ...]": ((tuple, list), "a list of whole numbers"),
    "tuple[float, float]": ((tuple, list), "two numbers"),
}


def _check_finite(name: str, value) -> None:
    """Numbers, alone or in a list, must be finite (TOML and the command line allow nan
    and inf, which no setting means)."""
    values = value if isinstance(value, (tuple, list)) else (value,)
    for number in values:
        if isinstance(number, float) and not math.isfinite(number):
            raise ConfigError(f"--{name.replace('_', '-')} must be a finite number, not {number}")
        if isinstance(number, int) and not isinstance(number, bool) and abs(number) >= INT64:
            raise ConfigError(f"--{name.replace('_', '-')} must fit in 64 bits, not {number}")


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


def read_toml(path: str | Path, what: str) -> dict:
    """A TOML file's top table; a missing or malformed file is one line naming ``what``."""
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None


def read_config(path: str | Path) -> dict:
    """Keys of a TOML file (flag names, dashes or underscores), checked against RunConfig."""
    data = read_toml(path, "config file")
    known = {f.name for f in fields(RunConfig)}
    values = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ConfigError(f"{path}: unknown setting {key!r}")
        values[name] = value
    return values
