"""A thin training loop over device tensors, with early stopping and callbacks."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Iterable, Protocol, Sequence

import torch

from deepmf.errors import ConfigError, DeepMFError


class TrainingDiverged(DeepMFError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train; every field has a command-line flag of the same name."""

    epochs: int = 30
    """Maximum number of passes over the training data."""
    batch_size: int = 1024
    """Samples per optimizer step."""
    lr: float = 0.005
    """Learning rate."""
    optimizer: str = "adam"
    """One of adam, adamw, sgd, adagrad."""
    weight_decay: float = 0.0
    """The optimizer's own weight decay (applies to every parameter, every step)."""
    reg: float = 0.0
    """L2 on the embedding rows each batch uses, times their batch-mean squared norm."""
    num_neg: int = 4
    """Negatives sampled per positive (implicit task)."""
    patience: int = 5
    """Epochs without improvement on the validation data before stopping; 0 = never stop."""
    lr_decay: float = 1.0
    """Multiply the learning rate by this after each epoch that does not improve the
    validation metric (PyTorch's ``ReduceLROnPlateau`` with patience 0); 1 = constant."""
    seed: int = 0
    """Seed of every random generator used in training."""
    device: str = "auto"
    """auto (CUDA > MPS > CPU), cpu, cuda or mps."""

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"unknown optimizer {self.optimizer!r}; choose from {', '.join(OPTIMIZERS)}"
            )
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if self.lr <= 0:
            raise ConfigError("--lr must be positive")
        if self.num_neg < 1:
            raise ConfigError("--num-neg must be at least 1")
        if not 0 < self.lr_decay <= 1:
            raise ConfigError("--lr-decay must lie in (0, 1]")


OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
}


def resolve_device(name: str = "auto") -> torch.device:
    """The device to train on: CUDA if available, then Apple's MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise ConfigError(f"unknown device {name!r}; choose from auto, cpu, cuda, mps")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but no CUDA device is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("--device mps asked for, but MPS is not available")
    return torch.device(name)


class Task(Protocol):
    """What a learning task tells the loop: its batches, its loss and how to validate.

    ``monitor`` names the validation metric used for early stopping and model selection;
    ``higher_is_better`` says which way it improves. ``validate`` returns ``{}`` when the
    task has no validation data.
    """

    monitor: str
    higher_is_better: bool

    def batches(self, generator: torch.Generator) -> Iterable[tuple[torch.Tensor, ...]]: ...

    def loss(self, model: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor: ...

    def validate(self, model: torch.nn.Module) -> dict[str, float]: ...


class Callback:
    """Hooks into :func:`fit`; override what you need."""

    def on_train_begin(self, model, config: TrainConfig) -> None: ...

    def on_epoch_end(self, record: dict, model) -> None: ...

    def on_train_end(self, history: list[dict]) -> None: ...


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The configured optimizer over the trainable parameters, fused into one kernel per
    step (far fewer small ops than the per-tensor loop; CPU and CUDA alike)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return OPTIMIZERS[config.optimizer](
        params, lr=config.lr, weight_decay=config.weight_decay, fused=True
    )


def fit(
    model: torch.nn.Module,
    task: Task,
    config: TrainConfig,
    callbacks: Iterable[Callback] = (),
    *,
    validate_start: bool = False,
    lr_schedule: Sequence[float] = (),
) -> list[dict]:
    """Train ``model`` on ``task``; return one record per epoch.

    After each epoch the task validates the model; an epoch that does not improve the
    monitored metric multiplies the learning rate by ``config.lr_decay``, and when the
    metric has not improved for ``config.patience`` epochs training stops. The model ends
    with the parameters of its best epoch. Without validation data it trains all epochs.

    ``validate_start`` also validates the model before any training, as epoch 0 (a record
    without loss), so a model that starts from trained parts is kept as it is when
    training only makes it worse; NCF's reference code selects among the same epochs.
    ``lr_schedule`` gives the learning rate of epochs 1, 2, ... (the rest keep the last),
    so a refit without validation data replays the decay its selection run went through.
    """
    callbacks = list(callbacks)
    if not any(p.requires_grad for p in model.parameters()):
        return []  # nothing to learn (e.g. popularity)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = make_optimizer(model, config)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max" if task.higher_is_better else "min", factor=config.lr_decay,
        patience=0, threshold=0.0,
    ) if config.lr_decay < 1 else None
    params = [p for group in optimizer.param_groups for p in group["params"]]
    history: list[dict] = []
    best_value, best_state, best_epoch = None, None, 0
    if validate_start:
        model.eval()
        record = {"epoch": 0, **task.validate(model)}
        if task.monitor in record:
            history.append(record)
            best_value, best_state = record[task.monitor], copy.deepcopy(model.state_dict())
            if plateau is not None:
                plateau.step(best_value)
    for callback in callbacks:
        callback.on_train_begin(model, config)

    for epoch in range(1, config.epochs + 1):
        if epoch <= len(lr_schedule):
            for group in optimizer.param_groups:
                group["lr"] = lr_schedule[epoch - 1]
        rate = optimizer.param_groups[0]["lr"]
        start = time.perf_counter()
        model.train()
        total, steps = 0.0, 0
        for batch in task.batches(generator):
            loss = task.loss(model, batch)
            for p in params:  # what zero_grad(set_to_none=True) does, minus its overhead
                p.grad = None
            loss.backward()
            optimizer.step()
            total = total + loss.detach()
            steps += 1
        train_loss = float(total) / max(steps, 1)
        if not torch.isfinite(torch.tensor(train_loss)):
            raise TrainingDiverged(
                f"training loss became {train_loss} in epoch {epoch}; try a lower --lr"
            )
        seconds = time.perf_counter() - start
        record = {"epoch": epoch, "loss": train_loss, "seconds": seconds}
        if plateau is not None or lr_schedule:
            record["lr"] = rate
        record.update(task.validate(model))
        history.append(record)

        value = record.get(task.monitor)
        if value is not None and plateau is not None:
            plateau.step(value)  # sets the rate of the next epoch
        if value is not None:
            improved = best_value is None or (
                value > best_value if task.higher_is_better else value < best_value
            )
            if improved:
                best_value, best_epoch = value, epoch
                best_state = copy.deepcopy(model.state_dict())
        for callback in callbacks:
            callback.on_epoch_end(record, model)
        if value is not None and config.patience and epoch - best_epoch >= config.patience:
            break

    if best_state is not None:
        model.load_state_dict(best_state)
    for callback in callbacks:
        callback.on_train_end(history)
    return history


def best_epoch(history: list[dict], monitor: str, higher_is_better: bool) -> int:
    """The epoch whose ``monitor`` value is best (the last epoch without validation)."""
    scored = [r for r in history if monitor in r]
    if not scored:
        return history[-1]["epoch"] if history else 0
    key = (lambda r: r[monitor]) if higher_is_better else (lambda r: -r[monitor])
    return max(scored, key=key)["epoch"]
