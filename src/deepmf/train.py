"""A thin training loop over device tensors, with early stopping and callbacks.

A task (:mod:`deepmf.tasks`) says what a batch is, what the loss is and how to validate;
:func:`fit` runs epochs of it, keeps the best epoch and stops when validation stalls.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Iterable, Protocol, Sequence

import torch

from deepmf.distributed import SINGLE, mean_over_shards, replicated
from deepmf.errors import ConfigError, DeepMFError
from deepmf.optim import OPTIMIZERS, make_optimizer
from deepmf.prefetch import DrawnAhead, draws_ahead
from deepmf.snapshot import Budget


class TrainingDiverged(DeepMFError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train; what a batch holds (size, negatives, device) belongs to the task."""

    epochs: int = 30
    """Maximum number of passes over the training data."""
    lr: float = 0.005
    """Learning rate."""
    optimizer: str = "adam"
    """One of adam, lazy-adam, adamw, sgd, adagrad (:data:`deepmf.optim.OPTIMIZERS`)."""
    weight_decay: float = 0.0
    """The optimizer's own weight decay (applies to every parameter, every step)."""
    patience: int = 5
    """Epochs without improvement on the validation data before stopping; 0 = never stop."""
    lr_decay: float = 1.0
    """Multiply the learning rate by this after each epoch that does not improve the
    validation metric (PyTorch's ``ReduceLROnPlateau`` with patience 0); 1 = constant."""
    seed: int = 0
    """Seed of the random generator that shuffles and samples batches."""

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"unknown optimizer {self.optimizer!r}; choose from {', '.join(OPTIMIZERS)}"
            )
        if self.epochs < 1:
            raise ConfigError("epochs must be at least 1")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a positive number, not {self.lr}")
        if not 0 < self.lr_decay <= 1:
            raise ConfigError("lr_decay must lie in (0, 1]")




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

    def on_stage(self, split: str, phase: str) -> None:
        """Called by whoever runs :func:`fit` (not by ``fit``) before each call: which
        split and phase (``"select"``, ``"refit"``) the next training is, for labels."""

    def on_train_begin(self, model, config: TrainConfig) -> None: ...

    def on_epoch_end(self, record: dict, model) -> None: ...

    def on_train_end(self, history: list[dict]) -> None: ...


class LoopStore(Protocol):
    """Where :func:`fit` keeps its state after every epoch, so a killed run can go on."""

    def load(self) -> dict | None: ...

    def save(self, state: dict) -> None: ...


class _Best:
    """The best validated epoch so far and a copy of the model's state then."""

    def __init__(self, higher_is_better: bool):
        self.higher_is_better = higher_is_better
        self.value, self.state, self.epoch = None, None, 0

    def offer(self, value: float, epoch: int, model: torch.nn.Module) -> None:
        better = self.value is None or (
            value > self.value if self.higher_is_better else value < self.value)
        if better:
            self.value, self.epoch = value, epoch
            self.state = copy.deepcopy(model.state_dict())


class _Loop:
    """Everything a run of :func:`fit` changes as it goes, restorable from a snapshot:
    the model, the optimizer and its schedule, the random generators, the history."""

    def __init__(self, model: torch.nn.Module, task: Task, config: TrainConfig):
        self.model, self.done, self.epoch, self.history = model, False, 0, []
        self.generator = torch.Generator().manual_seed(config.seed)
        self.sweeps = getattr(model, "trainer", "sgd") == "sweep"
        shares = getattr(task, "lookup_shares", lambda: None)()
        self.optimizer = None if self.sweeps else make_optimizer(model, config, shares)
        self.plateau = None if self.sweeps else _plateau(self.optimizer, task, config)
        self.best = _Best(task.higher_is_better)
        shard = self.shard = getattr(task, "shard", SINGLE)
        self.ahead, self.epochs = None, config.epochs
        self.draws_ahead = not self.sweeps and draws_ahead(task)
        self.objective = None  # several processes: the loss goes through DDP
        if shard.world > 1 and not self.sweeps:
            device = next(model.parameters()).device
            self.objective = replicated(model, task, device)

    def state(self) -> dict:
        part = lambda x: None if x is None else x.state_dict()  # noqa: E731
        return {"epoch": self.epoch, "done": self.done, "history": self.history,
                "model": self.model.state_dict(), "optimizer": part(self.optimizer),
                "plateau": part(self.plateau),
                "generator": (self.ahead or self.generator).get_state(),
                "rng": torch.get_rng_state(), "best": {"value": self.best.value,
                                                       "epoch": self.best.epoch,
                                                       "state": self.best.state}}

    def restore(self, state: dict) -> None:
        self.epoch, self.done, self.history = state["epoch"], state["done"], state["history"]
        self.model.load_state_dict(state["model"])
        for part, saved in ((self.optimizer, state["optimizer"]),
                            (self.plateau, state["plateau"])):
            if part is not None:
                part.load_state_dict(saved)
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["rng"])
        best = state["best"]
        self.best.value, self.best.epoch, self.best.state = (best["value"], best["epoch"],
                                                             best["state"])

    def train_epoch(self, task: Task) -> dict:
        """One epoch: the model's own sweep, or minibatch steps on the task's loss."""
        if self.sweeps:
            self.model.train()
            return dict(self.model.sweep(task.train, self.generator))
        if self.draws_ahead and self.ahead is None:  # the same batches, on a thread
            self.ahead = DrawnAhead(task.batches, self.generator,
                                    epochs=self.epochs - self.epoch + 1)
        loss = train_epoch(self.model, task, self.optimizer, self.generator, self.objective,
                           None if self.ahead is None else self.ahead.epoch())
        return mean_over_shards({"loss": loss}, 1, self.shard)  # the same on every process


def train_epoch(model: torch.nn.Module, task: Task, optimizer: torch.optim.Optimizer,
                generator: torch.Generator, objective: torch.nn.Module | None = None,
                batches: Iterable | None = None) -> float:
    """One pass of minibatch steps over the task's batches (``batches``, where they were
    drawn already: :mod:`deepmf.prefetch`); returns the mean batch loss.

    A task whose ``fused_step(model)`` returns a function computes each batch's gradients
    with it, without autograd (see :mod:`deepmf.models.fused`); otherwise the loss goes
    through autograd. ``objective`` (the task's loss wrapped in ``DistributedDataParallel``)
    replaces ``task.loss`` when several processes train together."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    fused = getattr(task, "fused_step", None)
    fused = fused(model) if fused is not None and objective is None else None
    step = getattr(optimizer, "lean_step", optimizer.step)
    model.train()
    total, steps = 0.0, 0
    for batch in task.batches(generator) if batches is None else batches:
        if fused is not None:
            loss = fused(batch)  # sets every parameter's .grad
        else:
            loss = task.loss(model, batch) if objective is None else objective(*batch)
            for p in params:  # what zero_grad(set_to_none=True) does, minus its overhead
                p.grad = None
            loss.backward()
        step()
        total = total + loss.detach()
        steps += 1
    return float(total) / max(steps, 1)


def fit(
    model: torch.nn.Module,
    task: Task,
    config: TrainConfig,
    callbacks: Iterable[Callback] = (),
    *,
    validate_start: bool = False,
    lr_schedule: Sequence[float] = (),
    store: LoopStore | None = None,
) -> list[dict]:
    """Train ``model`` on ``task``; return one record per epoch.

    After each epoch the task validates the model; an epoch that does not improve the
    monitored metric multiplies the learning rate by ``config.lr_decay``, and when the
    metric has not improved for ``config.patience`` epochs training stops. The model ends
    with the parameters of its best epoch. Without validation data it trains all epochs.
    Models whose ``trainer`` is ``"sweep"`` (alternating solvers, Gibbs samplers) run
    their own ``sweep`` each epoch instead of minibatch steps; the rest is the same.

    ``validate_start`` also validates the model before any training, as epoch 0 (a record
    without loss), so a model that starts from trained parts is kept as it is when
    training only makes it worse; NCF's reference code selects among the same epochs.
    ``lr_schedule`` gives the learning rate of epochs 1, 2, ... (the rest keep the last),
    so a refit without validation data replays the decay its selection run went through.
    With a ``store``, the loop's whole state is saved after every epoch and, if the store
    holds one already, training continues from it exactly as if it had never stopped.
    """
    callbacks = list(callbacks)
    trainer = getattr(model, "trainer", "sgd")
    if trainer is None or (trainer == "sgd" and not any(p.requires_grad
                                                        for p in model.parameters())):
        return []  # nothing to learn (e.g. popularity)
    loop, saving = _Loop(model, task, config), Budget(SAVE_SHARE)
    saved = store.load() if store is not None else None
    if saved is not None:
        loop.restore(saved)
    elif validate_start:  # the starting point is epoch 0, without a loss
        model.eval()
        loop.history.append({"epoch": 0, **task.validate(model)})
        _judge(loop, task)
    for callback in callbacks:
        callback.on_train_begin(model, config)
    try:
        while not loop.done and loop.epoch < config.epochs:
            _run_epoch(loop, task, config, lr_schedule)
            validated = _judge(loop, task)
            for callback in callbacks:
                callback.on_epoch_end(loop.history[-1], model)
            stalled = config.patience and loop.epoch - loop.best.epoch >= config.patience
            loop.done = loop.epoch >= config.epochs or bool(validated and stalled)
            if store is not None and (loop.done or saving.due()):
                with saving:
                    store.save(loop.state())
    finally:
        if loop.ahead is not None:
            loop.ahead.close()
    if loop.best.state is not None:
        model.load_state_dict(loop.best.state)
    for callback in callbacks:
        callback.on_train_end(loop.history)
    return loop.history


SAVE_SHARE = 0.05
"""At most this share of training time goes to saving the loop's state: a model whose
snapshot is slow to write next to its epochs (Gibbs samplers keep every sample) saves
every few epochs instead of after each one."""


def _run_epoch(loop: _Loop, task: Task, config: TrainConfig, lr_schedule) -> None:
    """Train one more epoch and append its record (loss, seconds, rate, validation)."""
    loop.epoch += 1
    if loop.optimizer is not None and loop.epoch <= len(lr_schedule):
        for group in loop.optimizer.param_groups:
            group["lr"] = lr_schedule[loop.epoch - 1]
    rate = None if loop.optimizer is None else loop.optimizer.param_groups[0]["lr"]
    start = time.perf_counter()
    record = {"epoch": loop.epoch, **loop.train_epoch(task)}
    if not math.isfinite(record["loss"]):
        raise TrainingDiverged(
            f"training loss became {record['loss']} in epoch {loop.epoch}; try a lower --lr")
    record["seconds"] = time.perf_counter() - start
    if loop.plateau is not None or lr_schedule:
        record["lr"] = rate
    loop.history.append({**record, **task.validate(loop.model)})


def _plateau(optimizer, task: Task, config: TrainConfig):
    """The scheduler that scales the rate after an epoch without improvement, if any."""
    if config.lr_decay >= 1:
        return None
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max" if task.higher_is_better else "min", factor=config.lr_decay,
        patience=0, threshold=0.0)


def _judge(loop: _Loop, task: Task) -> bool:
    """Offer the latest epoch as the best and step the scheduler; False when the task has
    no validation data (an unvalidated epoch 0 is then dropped from the history)."""
    value = loop.history[-1].get(task.monitor)
    if value is None:
        if loop.history[-1]["epoch"] == 0:
            loop.history.pop()
        return False
    if loop.plateau is not None:
        loop.plateau.step(value)  # sets the rate of the next epoch
    loop.best.offer(value, loop.history[-1]["epoch"], loop.model)
    return True


def best_epoch(history: list[dict], monitor: str, higher_is_better: bool) -> int:
    """The epoch whose ``monitor`` value is best (the last epoch without validation)."""
    scored = [r for r in history if monitor in r]
    if not scored:
        return history[-1]["epoch"] if history else 0
    key = (lambda r: r[monitor]) if higher_is_better else (lambda r: -r[monitor])
    return max(scored, key=key)["epoch"]
