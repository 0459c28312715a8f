"""A run's settings resolved once: data, task, splits and every default made explicit.

:func:`make_plan` turns what the user asked for (a :class:`RunConfig` with unset fields)
into a :class:`Plan` whose ``config`` has every setting the run uses filled in from the
recipes, and nothing it does not use. The same plan trains the model and is written to
``config.toml``, so the file reproduces the run. A setting that the model or the task
does not use is refused here, in one line, before anything trains.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from deepmf.data import Dataset
from deepmf.errors import ConfigError
from deepmf.experiment.config import MODEL_FIELDS, RunConfig
from deepmf.experiment.recipes import TRAINING, recipe
from deepmf.models import EXPLICIT_MODELS, hyperparameters, model_class
from deepmf.readers import load_dataset
from deepmf.split import Split, make_splits, sample_users
from deepmf.train import TrainConfig

LOOP_SETTINGS = ("epochs", "patience", "seed")
"""What every trained model's loop reads."""
SGD_SETTINGS = ("batch_size", "lr", "optimizer", "weight_decay", "reg", "num_neg", "lr_decay",
                "loss")
"""What minibatch training reads besides the loop's settings."""


@dataclass(frozen=True, eq=False)
class Plan:
    """A resolved run: ``config`` holds every setting it uses (None: unused)."""

    config: RunConfig
    dataset: Dataset
    splits: list[Split]
    notes: dict[str, str] = field(default_factory=dict)
    """Why a rule of the log's statistics set a default (by setting), for config.toml."""

    @property
    def task(self) -> str:
        return self.config.task

    @property
    def split_spec(self) -> str:
        return self.config.split

    def model_options(self) -> dict:
        """Constructor keywords for the model (the ones the config sets)."""
        return {k: getattr(self.config, k) for k in MODEL_FIELDS
                if getattr(self.config, k) is not None}

    def train_config(self) -> TrainConfig:
        c = self.config
        return TrainConfig(epochs=c.epochs or 1, lr=c.lr or TRAINING["lr"],
                           optimizer=c.optimizer or TRAINING["optimizer"],
                           weight_decay=c.weight_decay or 0.0, patience=c.patience or 0,
                           lr_decay=c.lr_decay or 1.0, seed=c.seed)


def make_plan(config: RunConfig) -> Plan:
    """Load the data, make the splits and resolve every default of ``config``."""
    model_class(config.model)  # fail fast on an unknown model name
    dataset = load_dataset(config.dataset, config.data_dir, table=config.table_format())
    if config.sample_users is not None:
        dataset = dataset.restrict_users(
            sample_users(dataset.interactions, config.sample_users, config.seed))
    task = resolve_task(config, dataset)
    split_spec = resolve_split(config, dataset, task)
    splits = make_splits(dataset, split_spec, seed=config.seed)
    if task == "implicit":
        splits = [Split(s.name, s.train.implicit(config.min_rating),
                        s.test.implicit(config.min_rating)) for s in splits]
    config = replace(config, task=task, split=split_spec, out=None)
    check_settings(config)
    notes: dict[str, str] = {}
    return Plan(resolve(config, len(splits[0].train), notes), dataset, splits,
                {k: v for k, v in notes.items() if getattr(config, k) is None})


def resolve_task(config: RunConfig, dataset: Dataset) -> str:
    if config.task:
        task = config.task
    elif config.model in EXPLICIT_MODELS and dataset.interactions.is_explicit:
        task = "explicit"
    else:
        task = "implicit"
    if task == "explicit":
        if not dataset.interactions.is_explicit:
            raise ConfigError(f"dataset {dataset.name} has no ratings; use --task implicit")
        if config.model not in EXPLICIT_MODELS:
            raise ConfigError(f"model {config.model} ranks items; --task explicit takes "
                              f"{', '.join(EXPLICIT_MODELS)}")
    return task


def resolve_split(config: RunConfig, dataset: Dataset, task: str) -> str:
    """The split asked for; else the data's own, ``loo`` (implicit) or ``u1``/``random:0.2``."""
    if config.split:
        return config.split
    if "given" in dataset.given:
        return "given"
    if task == "implicit":
        return "loo"
    return "u1" if "u1" in dataset.given else "random:0.2"


def used_settings(config: RunConfig) -> set[str]:
    """The settings a resolved task and model read (model hyper-parameters aside)."""
    cls = model_class(config.model)
    if cls.trainer is None:
        return set()
    used = set(LOOP_SETTINGS)
    if cls.trainer == "sgd":
        used |= set(SGD_SETTINGS)
        if not cls.penalized():
            used.discard("reg")
    if config.task == "explicit":
        used -= {"num_neg", "loss"}
        used.add("refit")
    return used


def check_settings(config: RunConfig) -> None:
    """Refuse settings the model or the task would silently ignore."""
    cls, model = model_class(config.model), config.model
    takes = sorted(hyperparameters(model) & set(MODEL_FIELDS))
    for name in MODEL_FIELDS:
        if getattr(config, name) is None or (name in takes and not config.pretrain):
            continue
        reason = ("its parts set it (--pretrain)" if config.pretrain else
                  f"it takes {', '.join(map(_flag, takes)) or 'none of the model options'}")
        raise ConfigError(f"--{_flag(name)} does not apply to model {model} ({reason})")
    used = used_settings(config)
    for name in (*LOOP_SETTINGS[:2], *SGD_SETTINGS, "refit"):
        if getattr(config, name) is not None and name not in used and name != "loss":
            raise ConfigError(f"--{_flag(name)} does not apply to model {model} on the "
                              f"{config.task} task")
    if config.pretrain and not hasattr(cls, "from_pretrained"):
        raise ConfigError(f"model {model} cannot be pre-trained from other runs")
    if config.task == "explicit" and config.min_rating is not None:
        raise ConfigError("--min-rating applies to the implicit task only")
    if config.task == "explicit" and config.loss not in (None, "mse"):
        raise ConfigError(f"--loss {config.loss}: the explicit task trains with mse")
    if config.task == "implicit" and config.loss not in (None, "bce", "bpr"):
        raise ConfigError(f"unknown loss {config.loss!r} for the implicit task; choose from "
                          "bce, bpr")
    if config.refit and config.select_on == "test":
        raise ConfigError("--refit retrains on train + validation; with --select-on test "
                          "there is no validation data")


def resolve(config: RunConfig, n_train: int, notes: dict | None = None) -> RunConfig:
    """``config`` with every used setting filled in: user's value, else recipe, else global
    (``notes``: why a rule of the log changed a recipe's value, see ``recipe``)."""
    defaults = recipe(config.model, config.task, pretrain=bool(config.pretrain),
                      n_train=n_train, num_neg=config.num_neg, notes=notes)
    used = used_settings(config)
    values = {}
    if not config.pretrain:
        accepted = hyperparameters(config.model)
        values.update({k: v for k, v in defaults.items() if k in MODEL_FIELDS and k in accepted})
    values.update({k: v for k, v in {**TRAINING, **defaults}.items() if k in used})
    if "loss" in used:
        values["loss"] = "bce"
    if config.task == "explicit":
        values["loss"] = "mse"
        values["refit"] = config.select_on == "valid"
    values.update({k: v for k, v in vars(config).items() if v is not None})
    return replace(config, **values)


def _flag(name: str) -> str:
    return name.replace("_", "-")
