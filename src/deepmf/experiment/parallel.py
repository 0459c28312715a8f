"""Runs trained in separate processes (``deepmf compare --jobs J``): each process gets
its share of the CPU threads and reports one line when its run ends."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from deepmf.experiment.config import RunConfig


def _train(config: RunConfig, folder: str, threads: int, tensorboard: bool) -> tuple[str, dict]:
    import torch

    from deepmf.experiment.reuse import train_or_reuse

    torch.set_num_threads(threads)
    path, metrics = train_or_reuse(with_share(config, threads), folder,
                                   say=lambda line: None, tensorboard=tensorboard)
    return str(path), metrics


def with_share(config: RunConfig, threads: int) -> RunConfig:
    """``config`` for one of several processes: a model that would train on every free core
    (``wide_steps``) takes this process's share instead, unless its threads are set."""
    from dataclasses import replace

    from deepmf.models import model_class

    if config.threads is None and model_class(config.model).wide_steps:
        return replace(config, threads=threads)
    return config


def train_in_processes(configs: list[RunConfig], folders: list[Path], jobs: int, say,
                       tensorboard: bool = False) -> list[tuple[Path, dict]]:
    """Train (or reuse) each config into its folder, ``jobs`` at a time; results in order.

    Processes are spawned (no fork of a process that holds torch threads). On Ctrl-C the
    queued runs are cancelled; the running ones stop with their own Ctrl-C and stay
    resumable, and running the same command again picks them up.
    """
    threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")
    results: dict[int, tuple[Path, dict]] = {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(_train, c, str(f), threads, tensorboard): i
                   for i, (c, f) in enumerate(zip(configs, folders))}
        try:
            for future in as_completed(futures):
                index = futures[future]
                path, metrics = future.result()
                results[index] = (Path(path), metrics)
                config = configs[index]
                shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics["test"].items()
                                  if isinstance(v, float))
                say(f"{config.model} seed {config.seed}: {shown}  "
                    f"({sum(metrics['epoch_seconds']):.0f}s)  [{len(results)}/{len(configs)}]")
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return [results[i] for i in range(len(configs))]
