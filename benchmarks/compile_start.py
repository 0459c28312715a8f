"""What compiling `neumf`'s step costs a process on NCF ml-1m, and two ways round it.

    DEEPMF_DATA_DIR=../shared/data .venv/bin/python -m benchmarks.compile_start [--steps N]

The step is the recipe's (8 factors, batches of 16,384 samples), written out as
``models.towers.tower_whole``; its inputs (the weights and N batches) are saved once and
every part runs in a fresh process on one thread (README, "Compiled steps"):

- ``jit``: ``torch.compile`` as training runs it: the seconds to import ``torch._dynamo``,
  the first call (tracing, the Inductor's on-disk cache as this machine has it), and the
  median step after it.
- ``thread``: the same first call on a thread while the main thread takes autograd steps:
  the eager steps' median before and while it compiles, and the compile's seconds.
- ``aoti``: the step exported and packaged by AOTInductor once (``build_seconds``), then
  loaded in fresh processes by PyTorch's C++ package loader and by
  ``torch._inductor.aoti_load_package``: seconds to load, whether ``torch._dynamo`` got
  imported, and the median step, alternating with the JIT-compiled one in the C++ case.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import threading
import time
from pathlib import Path

from benchmarks._common import child_json, child_or_main, data_dir, emit, machine


def _inputs(folder: str, steps: int):
    """The model and ``steps`` batches of the recipe, saved to ``folder`` on first use."""
    import torch

    from deepmf import NeuMF, RankingTask, load_dataset
    from deepmf.split import make_splits

    torch.manual_seed(0)
    train = make_splits(load_dataset("ncf:deepcf/ml-1m"), "given")[0].train.implicit()
    model = NeuMF(train.n_users, train.n_items, dim=8)
    task = RankingTask(train, None, batch_size=16_384, device=torch.device("cpu"))
    batches = task.batches(torch.Generator().manual_seed(0))
    saved = Path(folder, "inputs.pt")
    if not saved.is_file():
        from deepmf.models.towers import tower_parameters

        params, gmf = tower_parameters(model)
        torch.save({"weights": [p.detach() for p in params], "gmf": gmf,
                    "batches": [next(batches) for _ in range(steps + 1)]}, saved)
    return model, task, torch.load(saved, weights_only=True)


def _median_ms(run, batches) -> float:
    times = []
    for batch in batches:
        start = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1e3, 2)


def _jit(weights, gmf):
    """The step compiled as training compiles it (the CPU's vector instructions trusted,
    not probed: ``models.compiled._trusted_isa``)."""
    import torch

    from deepmf.models.compiled import _trusted_isa
    from deepmf.models.towers import tower_whole

    compiled = torch.compile(tower_whole, dynamic=False, fullgraph=True)
    where, trusted = (None,) * len(weights), _trusted_isa()

    def run(batch):
        with trusted or contextlib.nullcontext():
            return compiled(weights, gmf, *batch, "bce", 0.0, where)

    return run


def one(part: str, folder: str, steps: int) -> dict:
    import sys

    import torch

    torch.set_num_threads(1)
    if part == "build":
        return _build(folder, steps)
    start = time.perf_counter()
    if part in ("aoti_cpp", "aoti_python"):
        loader = _load(Path(folder, "step.pt2"), part == "aoti_cpp")
        loaded = time.perf_counter() - start
        dynamo = "torch._dynamo" in sys.modules
        model, task, saved = _inputs(folder, steps)
        weights, batches = saved["weights"], saved["batches"]
        with torch.no_grad():
            aoti = _median_ms(lambda b: loader([*weights, *b]), batches)
            result = {"load_seconds": round(loaded, 3), "imports_dynamo": dynamo,
                      "step_ms": aoti}
            if part == "aoti_cpp":  # the JIT-compiled step alternating with it
                jit = _jit(weights, saved["gmf"])
                jit(batches[0])
                rounds = [(_median_ms(lambda b: loader([*weights, *b]), batches),
                           _median_ms(jit, batches)) for _ in range(3)]
                result["rounds_aoti_jit_ms"] = rounds
        return result
    model, task, saved = _inputs(folder, steps)
    weights, batches = saved["weights"], saved["batches"]
    if part == "jit":
        start = time.perf_counter()
        import torch._dynamo  # noqa: F401 - timed

        imported = time.perf_counter() - start
        with torch.no_grad():
            start = time.perf_counter()
            jit = _jit(weights, saved["gmf"])
            made = time.perf_counter() - start
            start = time.perf_counter()
            jit(batches[0])
            first = time.perf_counter() - start
            return {"import_dynamo_seconds": round(imported, 2),
                    "compile_call_seconds": round(made, 2),
                    "first_call_seconds": round(first, 2),
                    "step_ms": _median_ms(jit, batches[1:])}
    from deepmf.optim import LeanAdam  # as training steps it, without importing dynamo

    optimizer = LeanAdam(model.parameters(), lr=0.015, fused=True)

    def eager(batch):
        loss = task.loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.lean_step()

    alone = _median_ms(eager, batches[:10])
    finished = {}

    def compile_beside():
        began = time.perf_counter()
        with torch.no_grad():
            _jit(weights, saved["gmf"])(batches[0])
        finished["seconds"] = time.perf_counter() - began

    thread = threading.Thread(target=compile_beside)
    thread.start()
    during = []
    while thread.is_alive():
        during.append(_median_ms(eager, [batches[len(during) % len(batches)]]))
    thread.join()
    return {"eager_step_ms_alone": alone,
            "compile_seconds_beside": round(finished["seconds"], 2),
            "eager_steps_during": len(during),
            "eager_step_ms_during": round(statistics.median(during), 2) if during else None}


def _build(folder: str, steps: int) -> dict:
    import torch
    from torch._inductor import aoti_compile_and_package

    from deepmf.models.towers import tower_whole

    _, _, saved = _inputs(folder, steps)
    weights, gmf, batch = saved["weights"], saved["gmf"], saved["batches"][0]
    n = len(weights)

    class Step(torch.nn.Module):
        def forward(self, *args):
            value, tally, grads = tower_whole(list(args[:n]), gmf, *args[n:], "bce", 0.0,
                                              (None,) * n)
            return (value, tally, *grads)

    start = time.perf_counter()
    with torch.no_grad():
        exported = torch.export.export(Step(), (*weights, *batch))
    middle = time.perf_counter()
    aoti_compile_and_package(exported, package_path=str(Path(folder, "step.pt2")))
    return {"export_seconds": round(middle - start, 2),
            "package_seconds": round(time.perf_counter() - middle, 2)}


def _load(path: Path, cpp: bool):
    import torch

    if cpp:  # PyTorch's C++ loader (private); the package's one model, on one thread
        loader = torch._C._aoti.AOTIModelPackageLoader(str(path), "model", False, 1, -1)
        return loader.run
    from torch._inductor import aoti_load_package

    package = aoti_load_package(str(path))
    return lambda inputs: package(*inputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    data_dir()
    with tempfile.TemporaryDirectory() as folder:
        settings = {"folder": folder, "steps": args.steps}
        result = {"benchmark": "compile_start", "machine": machine()}
        for part in ("jit", "thread", "build", "aoti_cpp", "aoti_python"):
            result[part] = child_json("benchmarks.compile_start", {"part": part, **settings})
    emit(result)


if __name__ == "__main__":
    child_or_main(one, main)
