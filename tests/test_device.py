"""Threads: one for training unless told (the free cores for wide steps), the free cores for
the full-ranking pass."""

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


def test_wide_steps_train_on_the_free_cores_unless_told(monkeypatch):
    """DeepCF's models (``wide_steps``) default to the cores other work leaves free; the
    flag and the environment still win, and the plan records what was chosen."""
    import deepmf.device as device
    from deepmf.experiment.config import RunConfig
    from deepmf.experiment.plan import resolve

    monkeypatch.delenv("DEEPMF_THREADS", raising=False)
    monkeypatch.setattr(device, "free_cores", lambda: 3)
    assert training_threads(wide=True) == 3 and training_threads() == 1
    assert training_threads(2, wide=True) == 2
    for model, want in (("cfnet-ml", 3), ("dmf", 3), ("cfnet", 3), ("neumf", 1)):
        config = RunConfig(model=model, dataset="ml-100k", task="implicit")
        assert resolve(config, 1000).threads == want
    monkeypatch.setenv("DEEPMF_THREADS", "1")
    assert training_threads(wide=True) == 1


def test_parallel_runs_of_wide_models_take_their_share():
    """``deepmf compare --jobs J``: each process's DeepCF run takes its share of the cores,
    not every core that looked free when the processes started together."""
    from deepmf.experiment.config import RunConfig
    from deepmf.experiment.parallel import with_share

    assert with_share(RunConfig(model="cfnet-ml"), 1).threads == 1
    assert with_share(RunConfig(model="neumf"), 1).threads is None  # one thread anyway
    assert with_share(RunConfig(model="dmf", threads=2), 1).threads == 2  # as told


def own_threads(tmp_path, *states: str):
    """A fake ``/proc/self/task``: one ``stat`` line per thread in the given states."""
    tasks = tmp_path / "task"
    for tid, state in enumerate(states, 100):
        (tasks / str(tid)).mkdir(parents=True)
        (tasks / str(tid) / "stat").write_text(f"{tid} (pt_main) {state} 1 {tid} {tid} 0\n")
    return tasks


@pytest.mark.parametrize("running,own,free", [
    (1, ("R",), 4), (2, ("R",), 3), (4, ("R",), 1), (9, ("R",), 1),
    (2, ("R", "R", "S"), 4),  # our spinning pool thread is not another process's work
    (4, ("R", "R", "S"), 2),
])
def test_free_cores_leaves_the_cores_other_processes_hold(tmp_path, monkeypatch, running,
                                                          own, free):
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    loadavg = tmp_path / "loadavg"
    loadavg.write_text(f"1.52 1.31 0.98 {running}/412 31337\n")
    assert free_cores(loadavg, own_threads(tmp_path, *own)) == free


def test_this_process_counts_itself_running():
    from deepmf.device import _running_threads

    assert _running_threads("/proc/self/task") >= 1


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
