"""Search spaces of ``deepmf tune``: one default per model family, or a TOML file.

A space maps setting names (``RunConfig`` fields, as in ``config.toml``) to a
:class:`Param`. In a ``--space`` file each entry is either a table, a range or a list of
choices, or a plain value that fixes the setting for every trial::

    lr = { low = 0.001, high = 0.05, log = true }   # floats: a float range
    num_neg = { low = 2, high = 8 }                  # whole numbers: an int range
    dim = { choices = [16, 32, 64] }
    layers = { choices = [[64, 32], [128, 64]] }
    batch_size = 1024                                # fixed

A file replaces the model's default space. Every name must be a setting that the model
and task use (checked against the run's plan before any trial, in one line).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

from deepmf.errors import ConfigError
from deepmf.experiment.config import RunConfig, read_toml
from deepmf.experiment.plan import check_settings

NOT_TUNABLE = ("model", "dataset", "split", "task", "data_dir", "out", "seed", "device",
               "select_on", "k", "valid_fraction", "refit", "min_rating", "sample_users",
               "pretrain", "sep", "user_col", "item_col", "rating_col", "time_col")
"""RunConfig fields that define the experiment rather than the model or its training."""


@dataclass(frozen=True)
class Param:
    """One searched setting: a range ``low``..``high`` (``log``: on a log scale; whole
    numbers when both ends are) or ``choices``."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple | None = None

    def suggest(self, trial, name: str):
        """This setting's value for an Optuna trial."""
        if self.choices is not None:
            codes = [_encode(c) for c in self.choices]
            return _decode(trial.suggest_categorical(name, codes))
        whole = KINDS.get(name, "int" if _whole(self.low) and _whole(self.high) else "")
        if whole.startswith("int"):
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(name, float(self.low), float(self.high), log=self.log)

    def nearest(self, value):
        """``value`` itself when the space holds it, else the nearest value it holds (a
        recipe's L2 of 0 becomes a log range's lowest); None for a value of another kind."""
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.choices is not None:
            if value in self.choices:
                return value
            numbers = [c for c in self.choices if isinstance(c, (int, float))]
            return min(numbers, key=lambda c: abs(c - value)) if number and numbers else None
        return min(max(value, self.low), self.high) if number else None

    def encode(self, value):
        """``value`` as Optuna stores it (see :meth:`suggest`)."""
        return _encode(value)

    def ends(self) -> tuple:
        """The values a check should try: each choice, or both ends of the range."""
        return tuple(self.choices) if self.choices is not None else (self.low, self.high)


KINDS = {f.name: str(f.type) for f in fields(RunConfig)}
"""Each setting's annotation: ``int | None`` settings are searched over whole numbers."""


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _encode(choice):
    """Optuna's choices are scalars: a layer list is kept as text, ``"64-32"``."""
    return "-".join(map(str, choice)) if isinstance(choice, (list, tuple)) else choice


def _decode(value):
    if isinstance(value, str) and value.replace("-", "").isdigit():
        return tuple(int(x) for x in value.split("-"))
    return value


def choose(*values) -> Param:
    return Param(choices=tuple(values))


SGD_EXPLICIT = {"dim": choose(16, 32, 64, 128), "lr": Param(0.001, 0.03, log=True),
                "reg": Param(0.003, 1.0, log=True), "batch_size": choose(256, 512, 1024, 2048)}
DOT_IMPLICIT = {"dim": choose(8, 16, 32, 64, 128), "lr": Param(0.0005, 0.05, log=True),
                "reg": Param(1e-5, 0.1, log=True), "num_neg": Param(1, 10),
                "batch_size": choose(1024, 2048, 4096, 8192, 16384),
                # halving the rate after an epoch without gain: the setting that lifts
                # gmf at 32 factors on ml-1m and ml-100k (README, "Defaults that travel")
                "lr_decay": choose(1.0, 0.5)}
DEEPCF_IMPLICIT = {"lr": Param(0.0005, 0.02, log=True), "num_neg": Param(2, 10),
                   "batch_size": choose(4096, 16384, 65536)}

SPACES: dict[tuple[str, str], dict[str, Param]] = {
    ("explicit", "mf"): SGD_EXPLICIT,
    ("explicit", "biased-mf"): SGD_EXPLICIT,
    ("explicit", "deepmf"): {**SGD_EXPLICIT, "layers": choose((64, 32), (128, 64), (64, 32, 16)),
                             "dropout": Param(0.0, 0.5)},
    ("implicit", "mf"): DOT_IMPLICIT,
    ("implicit", "biased-mf"): DOT_IMPLICIT,
    ("implicit", "gmf"): DOT_IMPLICIT,
    # Towers of 8F-4F-2F-F: at 64 factors a neumf trial on ml-100k took 679 s against
    # 49 s at 8, so the space stops at 32 to leave an hour room for 20 trials.
    ("implicit", "mlp"): {**DOT_IMPLICIT, "dim": choose(8, 16, 32), "dropout": Param(0.0, 0.5)},
    ("implicit", "neumf"): {**DOT_IMPLICIT, "dim": choose(8, 16, 32),
                            "dropout": Param(0.0, 0.5)},
    ("implicit", "dmf"): DEEPCF_IMPLICIT,
    ("implicit", "cfnet-ml"): DEEPCF_IMPLICIT,
    ("implicit", "cfnet"): DEEPCF_IMPLICIT,
    # The solvers: rank and ridge (iALS: and the weight of the unobserved pairs, which
    # Rendle et al. 2022 tune together with the ridge); Gibbs sampling has no rate to
    # tune, only the rank and how many samples are averaged.
    ("implicit", "ials"): {"dim": choose(64, 128, 192, 256),
                           "reg": Param(1e-4, 0.1, log=True),
                           "unobserved_weight": Param(0.003, 1.0, log=True)},
    ("explicit", "als"): {"dim": choose(4, 8, 16, 32, 64), "reg": Param(0.01, 1.0, log=True)},
    ("explicit", "bayes-mf"): {"dim": choose(5, 10, 16, 32), "samples": choose(100, 200, 500)},
}
"""The default search space of each (task, model); sizes, rates, L2 and sampling only:
the number of epochs (sweeps) is left to early stopping on the validation data."""


def default_space(model: str, task: str) -> dict[str, Param]:
    try:
        return dict(SPACES[(task, model)])
    except KeyError:
        raise ConfigError(f"no default search space for {model} on the {task} task; "
                          "give one with --space FILE.toml") from None


def read_space(path: str | Path) -> tuple[dict[str, Param], dict]:
    """A ``--space`` file: the searched settings and the fixed ones."""
    data = read_toml(path, "search space file")
    known = {f.name for f in fields(RunConfig)} - set(NOT_TUNABLE)
    space, fixed = {}, {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ConfigError(f"{path}: unknown parameter {key!r}; tunable: "
                              f"{', '.join(sorted(known))}")
        if isinstance(value, dict):
            space[name] = _param(path, name, value)
        else:
            fixed[name] = tuple(value) if isinstance(value, list) else value
    return space, fixed


def _param(path, name: str, table: dict) -> Param:
    unknown = set(table) - {"low", "high", "log", "choices"}
    if unknown:
        raise ConfigError(f"{path}: {name}: unknown key {sorted(unknown)[0]!r} "
                          "(use low and high, with log = true for a log scale, or choices)")
    if "choices" in table:
        choices = table["choices"]
        if not isinstance(choices, list) or not choices or set(table) != {"choices"}:
            raise ConfigError(f"{path}: {name}: choices must be a non-empty list, alone")
        return Param(choices=tuple(tuple(c) if isinstance(c, list) else c for c in choices))
    low, high, log = table.get("low"), table.get("high"), table.get("log", False)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        raise ConfigError(f"{path}: {name}: a range needs numbers low and high")
    if low > high:
        raise ConfigError(f"{path}: {name}: low {low} is above high {high}")
    if log is not False and (log is not True or low <= 0):
        raise ConfigError(f"{path}: {name}: log = true needs a positive low")
    return Param(low, high, log)


def check_space(space: dict[str, Param], fixed: dict, config: RunConfig,
                source: str = "search space") -> None:
    """Refuse, in one line, a space with nothing to search or with a setting the model
    and task do not use or a value out of its bounds. ``config`` is the run's plan config
    before the recipe fills in defaults (task and split resolved)."""
    if not space:
        what = "fixes every setting" if fixed else "is empty"
        raise ConfigError(f"{source} {what}: nothing to search")
    for name, value in fixed.items():
        _try(source, name, value, config)
    for name, param in space.items():
        for value in param.ends():
            _try(source, name, value, config)


def _try(source: str, name: str, value, config: RunConfig) -> None:
    try:
        check_settings(replace(config, **{name: value}))
    except (ConfigError, TypeError) as error:
        raise ConfigError(f"{source}: cannot use {name} = {value!r}: {error}") from None
