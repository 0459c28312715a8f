"""Choosing where to compute: the device names, its memory, and how many CPU threads.

Threads: training steps on embedding-sized tensors are too small to split, and with
PyTorch's default of one thread per core the extra threads spin-wait; on a machine with
other work they cost several times the CPU for no speed. Training therefore uses one
thread unless told otherwise (``--threads``, ``$DEEPMF_THREADS``), except for models whose
steps are wide matrix products (DeepCF's towers over interaction rows,
``Recommender.wide_steps``), which train on the cores other work leaves free when the run
starts; the full-ranking pass, whose matrix products are large, also uses the free cores
(:func:`threads` as a context, :func:`free_cores`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from deepmf.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """The device to train on: ``auto`` picks CUDA if available, then Apple's MPS, then the
    CPU; ``ConfigError`` for an unknown name or a device this machine lacks."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name not in DEVICES and not name.startswith("cuda:"):
        raise ConfigError(f"unknown device {name!r}; choose from {', '.join(DEVICES)}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device cuda asked for, but no CUDA device is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device mps asked for, but MPS is not available")
    return torch.device(name)


def training_threads(asked: int | None = None, wide: bool = False) -> int:
    """Threads for training: ``asked``, else ``$DEEPMF_THREADS``, else 1, or the free cores
    for steps of ``wide`` matrix products (on NCF ml-1m, a ``cfnet-ml`` epoch took 47-49 s
    on two threads against 68-79 s on one, a ``dmf`` epoch 32-38 against 41-49 s)."""
    if asked is not None:
        return asked
    value = os.environ.get("DEEPMF_THREADS", "").strip()
    if not value:
        return free_cores() if wide else 1
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"DEEPMF_THREADS must be a positive whole number, not {value!r}")
    return int(value)


def free_cores(loadavg: str | Path = "/proc/loadavg",
               own_tasks: str | Path = "/proc/self/task") -> int:
    """Cores not taken by other processes' runnable work at this moment, at least one.

    A block of many matrix products split over every core runs at the pace of its slowest
    thread: where another process holds a core, its thread waits for a time slice at each
    product's end while the others spin. Linux's ``/proc/loadavg`` counts the threads that
    are running or ready to run; this process's own (the caller, and any pool thread still
    spinning) are taken off that count. Elsewhere every core counts as free.
    """
    cores = os.cpu_count() or 1
    try:
        running = int(Path(loadavg).read_text().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return cores
    return max(1, min(cores, cores - max(0, running - _running_threads(own_tasks))))


def _running_threads(tasks: str | Path) -> int:
    """This process's threads in state R (running or runnable); at least one, the caller."""
    count = 0
    for stat in Path(tasks).glob("*/stat"):
        try:
            count += stat.read_text().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):
            continue
    return max(1, count)


@contextlib.contextmanager
def threads(n: int | None = None):
    """Run the block with ``n`` intra-op threads (default: the cores other work leaves
    free, :func:`free_cores`), then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(n or free_cores())
    try:
        yield
    finally:
        torch.set_num_threads(before)


def memory_limit(device: torch.device | None = None) -> int | None:
    """Bytes of memory a run can use: the GPU's for a CUDA device, else the machine's
    physical memory; None where the system does not say."""
    if device is not None and device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(need: float, what: str, device: torch.device | None = None) -> None:
    """``ConfigError`` naming ``what`` and the limit when ``need`` bytes would not fit."""
    limit = memory_limit(device)
    if limit is not None and need > limit:
        where = f"the {device.type.upper()} device" if device is not None and \
            device.type != "cpu" else "this machine"
        raise ConfigError(f"{what} needs about {byte_size(need)}, more than the "
                          f"{byte_size(limit)} of memory of {where}")


def byte_size(n: float) -> str:
    """``n`` bytes for people: ``512 bytes``, ``12 MB``, ``7.3 TB``."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:,.0f} PB"
