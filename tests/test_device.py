"""Threads: one for training unless told, the free cores for the full-ranking pass."""

from __future__ import annotations

import pytest
import torch

from deepmf.device import free_cores, threads, training_threads
from deepmf.errors import ConfigError


def test_training_takes_one_thread_unless_told(monkeypatch):
    monkeypatch.delenv("DEEPMF_THREADS", raising=False)
    assert training_threads() == 1
    monkeypatch.setenv("DEEPMF_THREADS", "3")
    assert training_threads() == 3
    assert training_threads(2) == 2  # --threads wins over the environment
    monkeypatch.setenv("DEEPMF_THREADS", "two")
    with pytest.raises(ConfigError, match="DEEPMF_THREADS must be a positive whole number"):
        training_threads()


@pytest.mark.parametrize("running,free", [(1, 4), (2, 3), (4, 1), (9, 1)])
def test_free_cores_leaves_the_cores_other_runnable_threads_hold(tmp_path, monkeypatch,
                                                                 running, free):
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    loadavg = tmp_path / "loadavg"
    loadavg.write_text(f"1.52 1.31 0.98 {running}/412 31337\n")
    assert free_cores(loadavg) == free


def test_free_cores_counts_every_core_where_the_load_is_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert free_cores(tmp_path / "missing") == 4
    (tmp_path / "garbled").write_text("not a load line")
    assert free_cores(tmp_path / "garbled") == 4


def test_threads_sets_and_restores():
    before = torch.get_num_threads()
    with threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
