"""Guards that refuse a run before it crashes, exhausts memory or saves a result that means
nothing: every one is a ``ConfigError`` or ``DataError`` of one line.

* :func:`check_plan`: each split has rows to train and test on, ``--k`` fits the items,
  and the model and its training state fit in memory (estimated on PyTorch's ``meta``
  device, where building a model allocates nothing).
* :func:`check_pretrain`: ``--pretrain`` names runs of the models the composite is made of.
* :class:`LearnsSomething`: a training in which no weight moved is refused.
* :func:`finite_metrics`: no NaN or infinite metric is saved or printed.
* :func:`check_vocab`: a run is evaluated only on the ids it was trained on.
"""

from __future__ import annotations

import math
import typing

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from deepmf.batching import WHOLE_EPOCH_NEGATIVES
from deepmf.data import Dataset
from deepmf.device import check_memory, resolve_device
from deepmf.errors import ConfigError, DataError
from deepmf.experiment.config import RunConfig
from deepmf.experiment.rundir import RunDir
from deepmf.models import MODELS, build_model, model_class
from deepmf.split import Split
from deepmf.train import Callback, TrainConfig

TRAINING_COPIES = 4
"""Parameter-sized tensors while training: the weights, their gradients and Adam's two
moments (the best epoch's copy takes the gradients' place once they are freed)."""


def check_splits(config: RunConfig, dataset: Dataset, splits: list[Split],
                 stage: str = "") -> None:
    """Every split has training and test rows; ``stage`` says what removed them."""
    for split in splits:
        for part, rows in (("training", split.train), ("test", split.test)):
            if len(rows) == 0:
                cause = stage or (f"of the {len(dataset.interactions):,} rows of "
                                  f"{dataset.name}")
                raise ConfigError(f"split {split.name} leaves no {part} rows {cause}; a run "
                                  "needs both (more data, or another --split)")
    if config.select_on == "valid" and config.task == "explicit":
        n_train = min(len(s.train) for s in splits)
        if round(config.valid_fraction * n_train) >= n_train:
            raise ConfigError(f"--valid-fraction {config.valid_fraction} of {n_train} training "
                              "rows leaves none to fit")


def check_plan(config: RunConfig, dataset: Dataset, splits: list[Split],
               options: dict) -> None:
    """The resolved run fits the data and the memory (see the module's docstring);
    ``options`` are the model's constructor keywords."""
    if config.task == "implicit" and config.k > dataset.n_items:
        raise ConfigError(f"--k {config.k} is more than the {dataset.n_items:,} items of "
                          f"{dataset.name}: every item would be a hit")
    if not config.pretrain:  # a composite of trained parts is the size of its parts
        check_model_memory(config, splits[0].train, options)


def check_model_memory(config: RunConfig, train, options: dict) -> None:
    """``ConfigError`` naming the model's size when it and its training state would not
    fit in the device's memory; nothing is allocated to find out."""
    try:
        with torch.device("meta"), _SkipInit():
            model = build_model(config.model, train, **options)
    except (RuntimeError, OverflowError) as error:  # sizes past what a tensor can index
        raise ConfigError(f"model {config.model} with {_options(options)}too large to build "
                          f"({' '.join(str(error).split())})") from None
    n_params = sum(p.numel() for p in model.parameters())
    size = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    device = resolve_device(config.device)
    check_memory(TRAINING_COPIES * size, f"model {config.model} with {_options(options)}"
                 f"{n_params:,} parameters for {train.n_users:,} users and {train.n_items:,} "
                 "items, with its training state,", device)
    if config.num_neg:  # drawn for the whole epoch at once, or a batch at a time
        drawn = len(train) * config.num_neg
        if drawn > WHOLE_EPOCH_NEGATIVES:
            drawn = max(1, (config.batch_size or 1) // (1 + config.num_neg)) * config.num_neg
        check_memory(drawn * 8 * 4, f"--num-neg {config.num_neg} over {len(train):,} "
                     "training rows", device)


class _SkipInit(TorchFunctionMode):
    """Random and constant initialisers do nothing: on the ``meta`` device they have no
    values to set, and their first call there imports ``torch._dynamo`` (about 2 s of CPU,
    a fifth of a whole ml-100k run)."""

    SKIPPED = frozenset({"normal_", "uniform_", "trunc_normal_", "zeros_", "zero_", "ones_",
                         "constant_", "fill_", "xavier_uniform_", "xavier_normal_",
                         "kaiming_uniform_", "kaiming_normal_", "orthogonal_"})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs, name = kwargs or {}, getattr(func, "__name__", "")
        if name in ("randn", "rand"):  # a factory: an empty tensor of its size will do
            kwargs.pop("generator", None)
            return torch.empty(*args, **kwargs)
        target = args[0] if args else kwargs.get("tensor")  # nn.init passes it by name
        if name in self.SKIPPED and \
                isinstance(target, torch.Tensor) and target.is_meta:
            return target
        return func(*args, **kwargs)


def _options(options: dict) -> str:
    shown = [f"--{k.replace('_', '-')} {v if not isinstance(v, tuple) else ','.join(map(str, v))}"
             for k, v in options.items() if k not in ("dropout", "seed")]
    return f"{' '.join(shown)}: " if shown else ""


def pretrain_parts(model: str) -> list[str]:
    """The models a composite is built from, in ``--pretrain`` order (``gmf``, ``mlp``)."""
    hints = typing.get_type_hints(model_class(model).from_pretrained)
    names = {cls: name for name, cls in MODELS.items()}
    return [names[hint] for key, hint in hints.items() if key != "return" and hint in names]


def check_pretrain(config: RunConfig) -> None:
    """``--pretrain`` lists one finished run of each part the model is made of, in order."""
    if not config.pretrain:
        return
    wanted = pretrain_parts(config.model)
    runs = [run.strip() for run in config.pretrain.split(",")]
    order = " then ".join(f"a {name} run" for name in wanted)
    if len(runs) != len(wanted) or not all(runs):
        raise ConfigError(f"--pretrain takes {len(wanted)} runs for {config.model}: {order}")
    for run, name in zip(runs, wanted):
        part = RunDir(run).load_config()
        if part.model != name:
            raise ConfigError(f"--pretrain: {run} is a {part.model} run; {config.model} is "
                              f"built from {order}")
        if config.compile and part.dropout:
            raise ConfigError(f"--compile writes out the steps of towers without dropout; "
                              f"{run} trained with dropout {part.dropout} (leave --compile "
                              "out)")


class LearnsSomething(Callback):
    """Refuses a training after which every weight is what it was before: nothing was
    learned (a learning rate too small to move float32 weights, for one)."""

    def on_train_begin(self, model, config: TrainConfig) -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.start = [p.detach().clone() for p in self.params]
        self.lr, self.epochs = config.lr, 0

    def on_epoch_end(self, record: dict, model) -> None:
        self.epochs += 1
        if self.start and any(not torch.equal(a, p) for a, p in zip(self.start, self.params)):
            self.start = []  # something moved: no need to look again

    def on_train_end(self, history: list[dict]) -> None:
        if self.start and self.epochs:
            raise ConfigError(f"{self.epochs} epoch{'s' * (self.epochs > 1)} of training "
                              f"changed no weight (--lr {self.lr!r} too small?); nothing was "
                              "learned, so nothing is saved")


def finite_metrics(metrics: dict, what: str) -> None:
    """``DataError`` when any number in ``metrics`` (nested) is NaN or infinite."""
    for key, value in metrics.items():
        if isinstance(value, dict):
            finite_metrics(value, what)
        elif isinstance(value, float) and not math.isfinite(value):
            raise DataError(f"{what}: {key} is {value}, not a number a run can report; "
                            "nothing is saved or printed")


def check_vocab(run: RunDir, dataset: Dataset) -> None:
    """The run's ``vocab.json`` holds the ids of ``dataset`` as it reads now."""
    users, items = run.load_vocab()
    if not (np.array_equal(users.ids, dataset.users.ids)
            and np.array_equal(items.ids, dataset.items.ids)):
        raise DataError(f"{run.vocab}: the ids differ from those of {dataset.name} as it reads "
                        "now (the data changed since training, or the file was edited)")
