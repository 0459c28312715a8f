"""A run's settings resolved once: data, task, splits and every default made explicit.

:func:`make_plan` turns what the user asked for (a :class:`RunConfig` with unset fields)
into a :class:`Plan` whose ``config`` has every setting the run uses filled in from the
recipes, and nothing it does not use. The same plan trains the model and is written to
``config.toml``, so the file reproduces the run. A setting that the model or the task
does not use is refused here, in one line, before anything trains.
"""

from __future__ import annotations

import inspect
import os
import shutil
from dataclasses import dataclass, field, replace

from deepmf.data import Dataset
from deepmf.device import resolve_device, training_threads
from deepmf.distributed import launched
from deepmf.errors import ConfigError
from deepmf.experiment.config import MODEL_FIELDS, RunConfig
from deepmf.experiment.guards import check_plan, check_splits
from deepmf.experiment.recipes import TRAINING, lazy_tables_note, recipe
from deepmf.models import EXPLICIT_MODELS, hyperparameters, model_class
from deepmf.readers import load_dataset
from deepmf.readers.movielens import MOVIELENS
from deepmf.readers.side import side_features
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
    notes: dict[str, str] = field(default_factory=dict)  # rules of the log's statistics

    @property
    def task(self) -> str:
        return self.config.task

    @property
    def split_spec(self) -> str:
        return self.config.split

    def model_options(self) -> dict:
        """Constructor keywords for the model (the ones the config sets)."""
        accepted = constructor_options(self.config.model)
        options = {k: getattr(self.config, k) for k in (*MODEL_FIELDS, "reg")
                   if k in accepted and getattr(self.config, k) is not None}
        if "seed" in accepted:
            options["seed"] = self.config.seed
        if "side_features" in accepted and self.config.side_features:
            options.update(side_features(self.dataset))  # labels, never from ratings
        return options

    def train_config(self) -> TrainConfig:
        c = self.config
        epochs = c.epochs or 1
        if not model_class(c.model).selects_epochs:  # a sampler: burn-in, then the samples
            epochs = (c.burn_in or 0) + (c.samples or 1)
        return TrainConfig(epochs=epochs, lr=c.lr or TRAINING["lr"],
                           optimizer=c.optimizer or TRAINING["optimizer"],
                           weight_decay=c.weight_decay or 0.0, patience=c.patience or 0,
                           lr_decay=c.lr_decay or 1.0, seed=c.seed)


def make_plan(config: RunConfig) -> Plan:
    """Load the data, make the splits and resolve every default of ``config``.

    A run that could not mean anything is refused here, before anything trains: a split
    without training or test rows, a ``--k`` above the number of items, a model too large
    for the memory (see :mod:`deepmf.experiment.guards`).
    """
    model_class(config.model)  # fail fast on an unknown model name
    check_table_options(config)
    dataset = load_dataset(config.dataset, config.data_dir, table=config.table_format())
    if config.sample_users is not None:
        dataset = dataset.restrict_users(
            sample_users(dataset.interactions, config.sample_users, config.seed))
    task = resolve_task(config, dataset)
    split_spec = resolve_split(config, dataset, task)
    splits = make_splits(dataset, split_spec, seed=config.seed)
    config = replace(config, task=task, split=split_spec, out=None)
    check_splits(config, dataset, splits)
    if task == "implicit":
        splits = [Split(s.name, s.train.implicit(config.min_rating),
                        s.test.implicit(config.min_rating)) for s in splits]
        if config.min_rating is not None:
            check_splits(config, dataset, splits, _kept_by(config.min_rating, dataset))
    check_settings(config)
    notes: dict[str, str | None] = {}
    settings = resolve(config, len(splits[0].train), notes, table_rows(dataset))
    notes["lazy_adam"] = lazy_tables_note(settings, dataset.n_users, dataset.n_items)
    plan = Plan(settings, dataset, splits,  # notes on what the user set are left out
                {k: v for k, v in notes.items() if v and getattr(config, k, None) is None})
    check_plan(plan.config, dataset, splits, plan.model_options())
    return plan


TABLE_OPTIONS = ("sep", "user_col", "item_col", "rating_col", "time_col", "rating_range")
"""Settings that say how to read a log file, and mean nothing for a named data set."""


def check_table_options(config: RunConfig) -> None:
    named = config.dataset in MOVIELENS or config.dataset.startswith(("ncf:", "synthetic:"))
    given = [name for name in TABLE_OPTIONS if getattr(config, name) is not None]
    if named and given:
        raise ConfigError(f"--{_flag(given[0])} applies to log files, not to {config.dataset}")


def _kept_by(min_rating: float, dataset: Dataset) -> str:
    ratings = dataset.interactions.ratings
    span = "" if ratings is None or not len(ratings) else \
        f"; the ratings span {ratings.min():g}..{ratings.max():g}"
    return f"with --min-rating {min_rating:g}{span}"


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


def constructor_options(model: str) -> set[str]:
    """Settings that become the model's constructor keywords (``reg``: the model's own λ;
    ``side_features``: the ``user_features``/``item_features`` the data's labels give)."""
    takes = hyperparameters(model)
    labels = {"side_features"} if {"user_features", "item_features"} <= takes else set()
    return (takes & {*MODEL_FIELDS, "reg"}) | labels


def used_settings(config: RunConfig) -> set[str]:
    """The settings a resolved task and model read (model hyper-parameters aside)."""
    cls = model_class(config.model)
    if cls.trainer is None:
        return set()
    used = set(LOOP_SETTINGS) if cls.selects_epochs else {"seed"}  # else epochs: its own
    if cls.trainer == "sgd":
        used |= set(SGD_SETTINGS)
        if not cls.penalized():
            used.discard("reg")
    if config.task == "explicit":
        used -= {"num_neg", "loss"}
        if cls.selects_epochs:
            used.add("refit")
    if hasattr(cls, "compiled_grads"):
        used.add("compile")
    return used


def check_settings(config: RunConfig) -> None:
    """Refuse settings the model or the task would silently ignore."""
    cls, model = model_class(config.model), config.model
    takes = sorted(constructor_options(model) - {"reg"})
    task = getattr(cls, "task", config.task)
    if task != config.task:
        raise ConfigError(f"model {model} is for the {task} task, not the {config.task} one")
    for name in (*MODEL_FIELDS, "side_features"):
        if getattr(config, name) is None or (name in takes and not config.pretrain):
            continue
        reason = ("its parts set it (--pretrain)" if config.pretrain else
                  f"it takes {', '.join(map(_flag, takes)) or 'none of the model options'}")
        raise ConfigError(f"--{_flag(name)} does not apply to model {model} ({reason})")
    used = used_settings(config) | (constructor_options(model) - set(MODEL_FIELDS))
    for name in (*LOOP_SETTINGS[:2], *SGD_SETTINGS, "refit"):
        if getattr(config, name) is not None and name not in used and name != "loss":
            raise ConfigError(f"--{_flag(name)} does not apply to model {model} on the "
                              f"{config.task} task")
    if launched() and cls.trainer == "sweep":
        raise ConfigError(f"model {model} trains by closed-form sweeps over every row at "
                          "once, which one process does; run it without torchrun")
    if config.pretrain and not hasattr(cls, "from_pretrained"):
        raise ConfigError(f"model {model} cannot be pre-trained from other runs")
    if config.task == "explicit" and config.min_rating is not None:
        raise ConfigError("--min-rating applies to the implicit task only")
    if config.task == "explicit" and config.loss not in (None, "mse"):
        raise ConfigError(f"--loss {config.loss}: the explicit task trains with mse")
    if config.task == "implicit" and config.loss not in (None, "bce", "bpr"):
        raise ConfigError(f"unknown loss {config.loss!r} for the implicit task; choose from "
                          "bce, bpr")
    if config.compile:
        check_compile(config, used)
    if config.refit and config.select_on == "test":
        raise ConfigError("--refit retrains on train + validation; with --select-on test "
                          "there is no validation data")


def check_compile(config: RunConfig, used: set[str]) -> None:
    """``--compile`` where a compiled step exists and a C++ compiler to build it."""
    if "compile" not in used:
        raise ConfigError(f"--compile does not apply to model {config.model} (mf, biased-mf, "
                          "gmf, mlp and neumf have compiled steps; the others train by "
                          "autograd)")
    if config.dropout:
        raise ConfigError("--compile writes out the steps of towers without dropout; leave "
                          "--compile out or set --dropout 0")
    reason = compile_obstacle(config.loss, config.device)
    if reason:
        raise ConfigError(reason)


def compile_obstacle(loss: str | None, device: str) -> str | None:
    """Why a compiled step cannot run in this process (one line), or None: it compiles the
    CPU step of the mse and bce losses, in one process, with a C++ compiler (``$CXX``, else
    g++, as the Inductor calls it) on PATH."""
    if loss == "bpr" or device not in ("auto", "cpu"):
        what = f"--loss {loss}" if loss == "bpr" else f"--device {device}"
        return f"--compile compiles the CPU step of the mse and bce losses; it does not go " \
               f"with {what}"
    picked = resolve_device(device).type
    if picked != "cpu":
        return f"--compile compiles the CPU steps; --device auto picks {picked} here (add " \
               "--device cpu, or leave --compile out)"
    if launched():
        return "--compile compiles the one-process step; under torchrun the steps go " \
               "through DistributedDataParallel's autograd"
    compiler = os.environ.get("CXX") or "g++"
    if not shutil.which(compiler):
        return f"--compile needs a C++ compiler for torch.compile; {compiler} is not on " \
               "PATH (install g++, or set CXX)"
    return None


def table_rows(dataset: Dataset) -> int:
    """Users plus items, for the recipes' lazy-adam rule; 0 under torchrun, where that rule
    stays off (sparse gradients across processes are untested)."""
    return 0 if launched() else dataset.n_users + dataset.n_items


def resolve(config: RunConfig, n_train: int, notes: dict | None = None,
            n_rows: int | None = None) -> RunConfig:
    """``config`` with every used setting filled in: user's value, else recipe, else global
    (``notes``: why a rule of the log changed a recipe's value, see ``recipe``)."""
    defaults = recipe(config.model, config.task, pretrain=bool(config.pretrain),
                      n_train=n_train, num_neg=config.num_neg, n_rows=n_rows,
                      batch_size=config.batch_size, notes=notes)
    used = used_settings(config)
    values = {}
    if not config.pretrain:  # the model's options: recipe, else the constructor's default
        accepted = constructor_options(config.model)
        signature = inspect.signature(model_class(config.model)).parameters
        values.update({k: signature[k].default for k in accepted & set(signature)
                       if signature[k].default not in (None, inspect.Parameter.empty)})
        if "side_features" in accepted:
            values["side_features"] = True
        values.update({k: v for k, v in defaults.items() if k in accepted})
    values.update({k: v for k, v in {**TRAINING, **defaults}.items() if k in used})
    if "loss" in used:
        values["loss"] = "bce"
    if config.task == "explicit":
        values["loss"] = "mse"
        if "refit" in used:
            values["refit"] = config.select_on == "valid"
    wide = model_class(config.model).wide_steps and not launched()  # a process per core
    values["threads"] = training_threads(config.threads, wide)
    values.update({k: v for k, v in vars(config).items() if v is not None})
    if "compile" in used and config.compile is None:
        values["compile"] = compiles_by_default(values, n_train, notes)
    return replace(config, **values)


COMPILE_WORK = 1 << 28
"""Looked-up values an epoch needs (samples x factors) before a run compiles its steps by
default. Compiling takes 5-20 s; biased-mf on NCF ml-1m (9M samples x 128 factors an
epoch) saves 6-9 s an epoch by it, ml-100k's explicit folds (80,000 x 64) nothing
measurable (README, "--compile")."""


def compiles_by_default(values: dict, n_train: int, notes: dict | None) -> bool:
    """``--compile``'s default: on where a compiled step exists and pays for its compiling
    (``COMPILE_WORK``), on the CPU, in one process, with a C++ compiler at hand; off for
    towers with dropout and for fine-tuning from parts (a few epochs; parts may have it)."""
    negatives = values.get("num_neg") or 0 if values.get("task") == "implicit" else 0
    samples = n_train * (1 + negatives)
    width = getattr(model_class(values["model"]), "compile_width", None)
    width = width(values) if width else values.get("dim") or 0
    work = samples * width
    if work < COMPILE_WORK or values.get("dropout") or values.get("pretrain") or \
            compile_obstacle(values.get("loss"), values.get("device", "auto")):
        return False
    if notes is not None:
        notes["compile"] = (f"on: an epoch looks up {work:,} values ({samples:,} samples x "
                            f"{width} per pair), over {COMPILE_WORK:,}, where compiling "
                            "(5-20 s) pays; --no-compile keeps the eager steps")
    return True


def _flag(name: str) -> str:
    return name.replace("_", "-")
