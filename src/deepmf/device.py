"""Choosing the device to compute on, and how much memory it has: the one place that
knows the names."""

from __future__ import annotations

import os

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
