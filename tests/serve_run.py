"""One small trained ml-100k run shared by the recommend, serve and browser tests."""

from __future__ import annotations

import socket
from pathlib import Path


def make_run(tmp_path_factory, data_root: Path) -> Path:
    """Train biased MF on ml-100k u1 for one epoch (once per test session) and return its folder."""
    if not (data_root / "ml-100k" / "u.data").is_file():
        import pytest

        pytest.skip("ml-100k is missing from DEEPMF_DATA_DIR")
    out = tmp_path_factory.getbasetemp() / "deepmf-serve-run"
    if not (out / "metrics.json").is_file():
        from deepmf.cli import main

        code = main(["train", "--model", "biased-mf", "--dataset", "ml-100k", "--split", "u1",
                     "--epochs", "1", "--dim", "16", "--no-refit", "--quiet",
                     "--data-dir", str(data_root), "--out", str(out)])
        assert code == 0, "training the shared test run failed"
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
