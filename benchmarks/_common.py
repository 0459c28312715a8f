"""Helpers shared by the benchmark scripts (not part of the library)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
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


def timed(args: list[str], src: Path | None = None, env: dict | None = None) -> dict:
    """Run ``args`` in a fresh process: its wall and CPU seconds, its own peak RSS
    (``os.wait4``: this child's, not the largest of every child so far), exit code, stdout
    and the end of its stderr. ``src``: a ``src/`` folder put on PYTHONPATH."""
    environment = {**os.environ, **(env or {})}
    if src is not None:
        environment["PYTHONPATH"] = str(src)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen(args, stdout=out, stderr=err, text=True, env=environment)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"wall": round(wall, 3), "cpu": round(usage.ru_utime + usage.ru_stime, 3),
                "peak_rss_gb": round(usage.ru_maxrss / 1e6, 2), "code": child.returncode,
                "stdout": out.read(), "stderr": err.read()[-400:]}


def deepmf(*args: str) -> list[str]:
    """The ``deepmf`` console script of whichever ``src/`` is on PYTHONPATH (the old code
    has no ``__main__``)."""
    return [sys.executable, "-c", "import sys; sys.argv[0] = 'deepmf'; "
            "from deepmf.cli import run; run()", *args]


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
