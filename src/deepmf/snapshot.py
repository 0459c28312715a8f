"""Nested training state (state dicts, optimizer state, generator states) as two plain files:
its tensors for safetensors and the rest as JSON. Nothing is pickled, so loading a
snapshot never runs code.

:func:`flatten` turns a nested structure of dicts, lists, tuples, numbers, strings, None
and tensors into ``(tensors, skeleton)``: every tensor lands in ``tensors`` under a path
key and is replaced in the JSON-able ``skeleton`` by a reference. :func:`unflatten`
inverts it exactly (dict key types and tuples included).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from deepmf.files import fsync, replacing

_TENSOR, _TUPLE, _DICT = "__tensor__", "__tuple__", "__dict__"


def flatten(value, prefix: str = "") -> tuple[dict[str, torch.Tensor], object]:
    tensors: dict[str, torch.Tensor] = {}

    def walk(node, path: str):
        if isinstance(node, torch.Tensor):
            tensors[path] = node.detach().cpu().contiguous().clone()
            return {_TENSOR: path}
        if isinstance(node, dict):
            return {_DICT: [[key, walk(item, f"{path}.{key}")] for key, item in node.items()]}
        if isinstance(node, tuple):
            return {_TUPLE: [walk(item, f"{path}.{i}") for i, item in enumerate(node)]}
        if isinstance(node, list):
            return [walk(item, f"{path}.{i}") for i, item in enumerate(node)]
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        raise TypeError(f"cannot snapshot a {type(node).__name__} at {path}")

    return tensors, walk(value, prefix or "state")


def unflatten(tensors: dict[str, torch.Tensor], skeleton):
    def walk(node):
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, dict):
            if _TENSOR in node:
                return tensors[node[_TENSOR]]
            if _TUPLE in node:
                return tuple(walk(item) for item in node[_TUPLE])
            return {key: walk(item) for key, item in node[_DICT]}
        return node

    return walk(skeleton)


def save(folder: Path, name: str, value) -> None:
    """Write ``value`` as ``NAME.json`` plus a tensor file, replacing an older one atomically.

    The tensors go to a new file first; the JSON, written to a temporary file and renamed
    over the old one, is the commit point that names it. A crash at any moment leaves the
    previous snapshot or the new one, never a mix.
    """
    folder.mkdir(parents=True, exist_ok=True)
    tensors, skeleton = flatten(value)
    index = folder / f"{name}.json"
    serial = 1 + max([int(p.stem.rsplit("-", 1)[1]) for p in folder.glob(f"{name}-*.safetensors")
                      if p.stem.rsplit("-", 1)[1].isdigit()] or [0])
    weights = f"{name}-{serial}.safetensors"
    save_file(tensors, folder / weights)
    fsync(folder / weights)
    with replacing(index, sync=True) as tmp:
        tmp.write_text(json.dumps({"tensors": weights, "skeleton": skeleton}))
    for stale in folder.glob(f"{name}-*.safetensors"):
        if stale.name != weights:
            stale.unlink(missing_ok=True)


def load(folder: Path, name: str):
    """The value last saved under ``name``, or None if there is none."""
    index = folder / f"{name}.json"
    if not index.is_file():
        return None
    meta = json.loads(index.read_text())
    return unflatten(load_file(folder / meta["tensors"]), meta["skeleton"])


class Budget:
    """A context that times what it wraps, and says when it is due again so that it takes
    no more than ``share`` of the time in between."""

    def __init__(self, share: float):
        self.share, self.cost, self.last = share, 0.0, time.perf_counter()

    def due(self) -> bool:
        return self.cost <= self.share * (time.perf_counter() - self.last)

    def __enter__(self):
        self.start = time.perf_counter()

    def __exit__(self, *exc):
        self.last = time.perf_counter()
        self.cost = self.last - self.start
