"""Helpers shared by the benchmark scripts (not part of the library)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path


def data_dir() -> Path:
    value = os.environ.get("DEEPMF_DATA_DIR")
    if not value or not Path(value).is_dir():
        sys.exit("set DEEPMF_DATA_DIR to the folder holding ml-100k/ and deepcf/")
    return Path(value)


def machine() -> dict:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
            "device": "cuda" if torch.cuda.is_available() else "cpu"}


def emit(result: dict) -> None:
    print(json.dumps(result, indent=2))


ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def old_checkout(ref: str):
    """The ``src/`` of commit ``ref``, checked out into a temporary git worktree for the
    block (benchmarks run it side by side with this checkout, ``PYTHONPATH`` set to it)."""
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old),
                        ref], check=True)
        try:
            yield old / "src"
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           check=False)


def child_json(module: str, settings: dict) -> dict:
    """``one(**settings)`` of the benchmark ``module``, run in a fresh process on this
    checkout's ``src/`` (see :func:`child_or_main`): the JSON it prints."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    child = subprocess.run([sys.executable, "-m", module, "--one", json.dumps(settings)],
                           cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(child.stdout)


def child_or_main(one, main) -> None:
    """A benchmark script's entry: ``--one SETTINGS`` (a child started by
    :func:`child_json`) prints ``one(**SETTINGS)`` as JSON; anything else runs ``main()``."""
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(one(**json.loads(sys.argv[2]))))
    else:
        main()
