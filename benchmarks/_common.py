"""Helpers shared by the benchmark scripts (not part of the library)."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import torch


def data_dir() -> Path:
    value = os.environ.get("DEEPMF_DATA_DIR")
    if not value or not Path(value).is_dir():
        sys.exit("set DEEPMF_DATA_DIR to the folder holding ml-100k/ and deepcf/")
    return Path(value)


def machine() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
            "device": "cuda" if torch.cuda.is_available() else "cpu"}


def emit(result: dict) -> None:
    print(json.dumps(result, indent=2))
