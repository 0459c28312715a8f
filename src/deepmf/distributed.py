"""Several processes (or GPUs, or machines) training one model with PyTorch's own engine.

``torchrun --nproc-per-node N -m deepmf train ...`` starts N processes and sets
``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` and the rendezvous address; :func:`setup` joins them
into a process group (gloo on the CPU, NCCL on CUDA). Each process then trains on its own
shard of every epoch's shuffled batches with its own negatives, the model wrapped in
``DistributedDataParallel`` so gradients are averaged every step and the replicas stay
identical; validation metrics are computed on shards and all-reduced, so every process
stops at the same epoch; only rank 0 writes the run directory.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from deepmf.device import resolve_device
from deepmf.errors import ConfigError


@dataclass(frozen=True)
class Shard:
    """This process's place among ``world`` processes."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


SINGLE = Shard()


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher) with peers."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device) -> Shard:
    """Join the process group torchrun describes (``device`` from :func:`process_device`);
    :data:`SINGLE` when not launched."""
    if not launched():
        return SINGLE
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend)
    return Shard(dist.get_rank(), dist.get_world_size())


@functools.cache  # the same answer for each fold of the run, and the note said once
def process_device(name: str) -> torch.device:
    """The device this process trains on: :func:`~deepmf.device.resolve_device`'s, and under
    torchrun the GPU of its local rank, one per process. Where this machine has fewer GPUs
    than processes, ``auto`` trains them all on the CPU (gloo) and says so; ``cuda`` is
    refused with the numbers."""
    device = resolve_device(name)
    if not launched() or device.type != "cuda":
        return device
    here, gpus = int(os.environ.get("LOCAL_WORLD_SIZE", "1")), torch.cuda.device_count()
    if gpus >= here:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    counts = f"torchrun started {here} processes on this machine, which has {gpus} CUDA GPU" \
             f"{'s' if gpus != 1 else ''}"
    if name != "auto":
        raise ConfigError(f"--device {name}: {counts}; each process needs one (--nproc-per-node"
                          f" {gpus}, or --device cpu)")
    if os.environ.get("RANK", "0") == "0":
        print(f"deepmf: --device auto: {counts}, so every process trains on the CPU (gloo)",
              file=sys.stderr, flush=True)
    return torch.device("cpu")


def shard_of(batches: list, shard: Shard) -> list:
    """This process's share of an epoch's batches: every ``world``-th, the same number on
    every process (a remainder of fewer than ``world`` batches is left out this epoch)."""
    if shard.world == 1:
        return batches
    per_process = len(batches) // shard.world
    return batches[shard.rank::shard.world][:per_process]


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(shard: Shard) -> None:
    if shard.world > 1:
        dist.barrier()


def share(value: str, shard: Shard) -> str:
    """Rank 0's ``value`` (a short text such as the run directory) on every rank."""
    if shard.world == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def report(split: str, history: list[dict], best: int, shard: Shard) -> None:
    """One line per process: what it trained to, so that a user (and a test) can see the
    replicas agree."""
    chosen = next((r for r in history if r.get("epoch") == best), history[-1] if history else {})
    shown = "  ".join(f"{k} {v:.6f}" for k, v in chosen.items()
                      if isinstance(v, float) and k not in ("seconds", "lr"))
    print(f"deepmf: rank {shard.rank}/{shard.world} split {split}: best epoch {best}  {shown}",
          file=sys.stderr, flush=True)


class ReadOnly:
    """A loop store that other ranks read (to resume alike) but only rank 0 writes."""

    def __init__(self, store):
        self.store = store

    def load(self):
        return self.store.load()

    def save(self, state) -> None:
        pass


def mean_over_shards(metrics: dict[str, float], count: int, shard: Shard) -> dict[str, float]:
    """Row-weighted means of per-shard means (``*rmse`` values averaged as squares)."""
    if shard.world == 1 or not metrics:
        return metrics
    keys = sorted(metrics)
    values = [metrics[k] ** 2 if k.endswith("rmse") else metrics[k] for k in keys]
    weighted = [v * count if count else 0.0 for v in values]  # an empty shard adds nothing
    totals = torch.tensor([*weighted, float(count)], dtype=torch.float64)
    dist.all_reduce(totals)
    means = (totals[:-1] / totals[-1]).tolist()
    return {k: (m ** 0.5 if k.endswith("rmse") else m) for k, m in zip(keys, means)}


def agree(value: float, shard: Shard) -> float:
    """Rank 0's value of ``value`` on every rank (a decision all must take alike)."""
    if shard.world == 1:
        return value
    box = torch.tensor([value], dtype=torch.float64)
    dist.broadcast(box, 0)
    return float(box.item())


class Objective(torch.nn.Module):
    """A task's loss as a module, so that ``DistributedDataParallel`` sees every parameter
    the loss touches (the model's forward and its penalty alike) in one forward call."""

    def __init__(self, model: torch.nn.Module, task):
        super().__init__()
        self.model, self.task = model, task

    def forward(self, *batch):
        return self.task.loss(self.model, batch)


def replicated(model: torch.nn.Module, task, device: torch.device) -> torch.nn.Module:
    """The task's loss wrapped for data-parallel training across the process group."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(Objective(model, task), device_ids=ids)
