"""Choosing the device to compute on: the one place that knows the names."""

from __future__ import annotations

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
