"""Data-parallel training: shards that partition an epoch, and a real 2-process gloo run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from deepmf.data import Interactions
from deepmf.distributed import Shard
from deepmf.tasks import RankingTask, RatingTask


def log(n=400, ratings=False) -> Interactions:
    rng = np.random.default_rng(0)
    return Interactions(rng.integers(0, 40, n), rng.integers(0, 30, n),
                        rng.integers(1, 6, n).astype(np.float32) if ratings else None,
                        n_users=40, n_items=30)


def test_rating_shards_partition_the_epoch_evenly():
    data = log(ratings=True)
    seen = []
    for rank in range(3):
        task = RatingTask(data, None, batch_size=32, device=torch.device("cpu"),
                          shard=Shard(rank, 3))
        batches = list(task.batches(torch.Generator().manual_seed(5)))
        assert len(batches) == (400 // 32 + 1) // 3  # the same step count on every process
        seen.append(torch.cat([torch.stack([u, i], 1) for u, i, _ in batches]))
    rows = torch.cat(seen)
    assert len(torch.unique(rows[:, 0] * 100 + rows[:, 1] + 0 * rows[:, 0])) <= len(rows)
    one = RatingTask(data, None, batch_size=32, device=torch.device("cpu"))
    whole = list(one.batches(torch.Generator().manual_seed(5)))
    mine = list(RatingTask(data, None, batch_size=32, device=torch.device("cpu"),
                           shard=Shard(1, 3)).batches(torch.Generator().manual_seed(5)))
    assert torch.equal(mine[0][0], whole[1][0]) and torch.equal(mine[1][0], whole[4][0])


@pytest.mark.parametrize("loss", ["bce", "bpr"])
def test_ranking_shards_take_disjoint_positives_with_their_own_negatives(loss):
    data = log()
    batches = {}
    for rank in range(2):
        task = RankingTask(data, None, batch_size=50, device=torch.device("cpu"), num_neg=2,
                           loss=loss, shard=Shard(rank, 2))
        batches[rank] = list(task.batches(torch.Generator().manual_seed(9)))
        assert batches[rank]
    assert len(batches[0]) == len(batches[1])
    if loss == "bce":
        firsts = [b[0][: int(b[2].sum())] for b in batches[0]], \
            [b[0][: int(b[2].sum())] for b in batches[1]]
        assert sum(map(len, firsts[0])) + sum(map(len, firsts[1])) <= 400
    negatives = [torch.cat([b[1][b[2] == 0] if loss == "bce" else b[2].reshape(-1)
                            for b in batches[r]]) for r in (0, 1)]
    assert not torch.equal(negatives[0][:20], negatives[1][:20])  # drawn apart


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun is not installed beside this Python")
def test_two_gloo_processes_train_one_run_and_agree(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    out = tmp_path / "ddp"
    spec = "synthetic:users=300,items=120,interactions=6000"
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "deepmf", "train",
         "--model", "gmf", "--dataset", spec, "--epochs", "3", "--batch-size", "512",
         "--quiet", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    lines = re.findall(r"deepmf: rank (\d)/2 split loo: (.*)", result.stderr)
    assert sorted(rank for rank, _ in lines) == ["0", "1"]
    assert lines[0][1] == lines[1][1]  # the replicas ended identical
    assert (out / "metrics.json").is_file() and not (out / "state").exists()
    assert len(list(tmp_path.iterdir())) == 1  # one run directory, nothing else


@pytest.mark.parametrize(("gpus", "asked", "expected"), [
    (2, "auto", "cuda:1"), (2, "cuda", "cuda:1"),  # one GPU per process
    (1, "auto", "cpu"),  # too few GPUs: auto trains every process on the CPU, and says so
    (1, "cuda", "torchrun started 2 processes on this machine, which has 1 CUDA GPU; each "
                "process needs one (--nproc-per-node 1, or --device cpu)"),
    (0, "cpu", "cpu"),
])
def test_each_process_under_torchrun_gets_a_gpu_of_its_own_or_none(gpus, asked, expected,
                                                                   monkeypatch, capsys):
    """It happened: two processes on a machine with one GPU, ``--device auto``, died with a
    CUDA traceback ('invalid device ordinal') in the second."""
    from deepmf import distributed
    from deepmf.errors import ConfigError

    for key, value in {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": "1",
                       "RANK": "0"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    distributed.process_device.cache_clear()
    try:
        if expected.startswith("torchrun"):
            with pytest.raises(ConfigError) as error:
                distributed.process_device(asked)
            assert str(error.value) == f"--device {asked}: {expected}"
            return
        assert distributed.process_device(asked) == torch.device(expected)
        told = capsys.readouterr().err
        assert ("trains on the CPU (gloo)" in told) == (asked == "auto" and gpus < 2), told
    finally:
        distributed.process_device.cache_clear()
