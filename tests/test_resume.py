"""Crash-safe training: state saved every epoch, SIGKILL mid-epoch, resume, same result."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from deepmf import snapshot
from deepmf.cli import main

TRAIN = ["train", "--model", "biased-mf", "--dataset", "ml-100k", "--split", "u1",
         "--sample-users", "300", "--dim", "8", "--epochs", "6", "--batch-size", "32",
         "--quiet"]
# Ctrl-C as in a terminal even where the tests run in the background, which starts them
# with SIGINT ignored (and a child inherits that)
ONE_THREAD = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
              "import torch; torch.set_num_threads(1); from deepmf.cli import run; run()")


def start(args: list[str], data_root) -> subprocess.Popen:
    env = {**os.environ, "DEEPMF_DATA_DIR": str(data_root)}
    return subprocess.Popen([sys.executable, "-c", ONE_THREAD, *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_epoch(state_file, epoch: int, process: subprocess.Popen, timeout=120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if json.loads(state_file.read_text())["skeleton"] and \
                    _epoch(state_file) >= epoch:
                return
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.02)
    pytest.fail("training did not reach the epoch in time")


def _epoch(state_file) -> int:
    items = dict(json.loads(state_file.read_text())["skeleton"]["__dict__"])
    return items["epoch"]


def metrics_without_time(run) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.pop("epoch_seconds")
    return metrics


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("resume") / "whole"
    assert main([*TRAIN, "--data-dir", str(data_root), "--out", str(out)]) == 0
    return out


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(uninterrupted, tmp_path,
                                                                    data_root, capsys):
    out = tmp_path / "killed"
    process = start([*TRAIN, "--out", out], data_root)
    wait_for_epoch(out / "state" / "u1" / "select.json", 2, process)
    process.send_signal(signal.SIGKILL)  # in the middle of epoch 3
    process.wait()
    assert not (out / "metrics.json").exists() and (out / "state").is_dir()
    planted = tmp_path / "planted"
    shutil.copytree(out, planted)
    _plant_a_pickle(planted, data_root, capsys)
    code = main(["evaluate", str(out)])
    assert code == 2 and "deepmf train --resume" in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "--data-dir", str(data_root)]) == 0
    assert metrics_without_time(out) == metrics_without_time(uninterrupted)
    history = (out / "history.csv").read_text().splitlines()
    strip = lambda lines: [",".join(x for i, x in enumerate(r.split(",")) if i != 4)  # noqa
                           for r in lines]  # every column but the seconds
    assert strip(history) == strip((uninterrupted / "history.csv").read_text().splitlines())
    assert not (out / "state").exists()


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_stop_cleanly_and_leave_a_resumable_run(sig, code, tmp_path,
                                                                   data_root):
    out = tmp_path / "stopped"
    process = start([*TRAIN, "--out", out], data_root)
    wait_for_epoch(out / "state" / "u1" / "select.json", 1, process)
    process.send_signal(sig)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code
    assert "Traceback" not in err and f"--resume {out}" in err
    assert (out / "state").is_dir() and not (out / "metrics.json").exists()
    assert main(["train", *TRAIN[1:], "--out", str(out)]) == 2  # refused: resume it instead


def test_resume_refuses_other_settings_and_finished_runs(uninterrupted, capsys):
    assert main(["train", "--resume", str(uninterrupted), "--epochs", "3"]) == 2
    assert "drop --epochs" in capsys.readouterr().err
    assert main(["train", "--resume", str(uninterrupted)]) == 2
    assert "not an unfinished run" in capsys.readouterr().err


def test_a_run_failing_on_bad_input_leaves_nothing(tmp_path, data_root, capsys):
    out = tmp_path / "diverged"
    assert main([*TRAIN, "--lr", "1e30", "--optimizer", "sgd", "--data-dir", str(data_root),
                 "--out", str(out)]) == 2
    assert "lower --lr" in capsys.readouterr().err
    assert not out.exists()


def test_snapshot_round_trip_keeps_types(tmp_path):
    value = {"a": (1, 2.5, None), 3: [torch.arange(4), {"b": torch.ones(2, 2)}], "s": "x",
             "inf": float("inf")}
    snapshot.save(tmp_path, "state", value)
    snapshot.save(tmp_path, "state", value)  # replaces the previous files
    back = snapshot.load(tmp_path, "state")
    assert back["a"] == (1, 2.5, None) and back["s"] == "x" and back["inf"] == float("inf")
    assert torch.equal(back[3][0], torch.arange(4)) and torch.equal(back[3][1]["b"],
                                                                   torch.ones(2, 2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state-2.safetensors", "state.json"]


def _plant_a_pickle(run, data_root, capsys) -> None:
    """A pickle where the saved state should be is refused, never unpickled."""
    index = json.loads((run / "state" / "u1" / "select.json").read_text())
    torch.save({"boom": torch.ones(1)}, run / "state" / "u1" / index["tensors"])
    assert main(["train", "--resume", str(run), "--data-dir", str(data_root)]) == 2
    assert "saved training state is damaged" in capsys.readouterr().err
