"""Self-describing, pickle-free checkpoints: model name + constructor args + safetensors.

Loading trusts nothing in the folder: every file is parsed by a format that cannot run
code (JSON, safetensors; a pickle is recognised and refused, never opened), and the
weights must be exactly the tensors that ``model.json`` describes, finite, before any
full-size model is built. A damaged, edited or foreign checkpoint is one ``DataError``.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file as load_arrays
from safetensors.numpy import save_file as save_arrays
from safetensors.torch import load_file, save_file
from torch.overrides import TorchFunctionMode

from deepmf.data import Interactions
from deepmf.errors import DataError, DeepMFError
from deepmf.models import MODELS, Recommender, build_model

FORMAT = 1
"""Version of the checkpoint layout, written to ``model.json`` (absent: 1)."""
ARRAYS = ("fit_users", "fit_items", "extra_users", "extra_items")
PICKLE_STARTS = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
"""How ``torch.save`` files (a zip) and pickles (protocols 2 to 5) begin."""


def save_checkpoint(
    folder: Path, name: str, model: Recommender, fit_data: Interactions,
    extra_seen: Interactions | None = None,
) -> None:
    """Write ``model.json``, ``model.safetensors`` and ``interactions.safetensors``.

    ``fit_data`` is what the model was built and trained on (models such as DMF read its
    rows at build time); ``extra_seen`` holds further training rows the user has seen
    (the validation rows), excluded from recommendations along with ``fit_data``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    args = {k: v for k, v in model.model_args.items() if k not in ("n_users", "n_items")}
    meta = {"format": FORMAT, "model": name, "model_args": args,
            "n_users": fit_data.n_users, "n_items": fit_data.n_items}
    (folder / "model.json").write_text(json.dumps(meta, indent=2))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, folder / "model.safetensors")
    extra = extra_seen if extra_seen is not None else fit_data.take(slice(0, 0))
    save_arrays(
        {"fit_users": fit_data.users, "fit_items": fit_data.items,
         "extra_users": extra.users, "extra_items": extra.items},
        folder / "interactions.safetensors",
    )


def read_json(path: Path) -> dict:
    """The JSON object in ``path``; ``DataError`` when it is missing, damaged or not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: missing; the run directory is incomplete") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: unreadable ({_line(error)})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON (line {error.lineno}: {error.msg}); damaged "
                        "or cut short?") from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value


def _line(error: BaseException) -> str:
    return " ".join(str(error).split())


def read_safetensors(path: Path, loader=load_file) -> dict:
    """Tensors (or arrays, with ``loader``) of a safetensors file, never unpickling."""
    if not path.is_file():
        raise DataError(f"{path}: missing; the run directory is incomplete")
    with open(path, "rb") as handle:
        start = handle.read(9)  # safetensors: an 8-byte header length, then "{"
    if start[8:] != b"{" and start.startswith(PICKLE_STARTS):
        raise DataError(f"{path}: a pickle (torch.save) file, not safetensors; deepmf never "
                        "unpickles files, so it is refused")
    try:
        return loader(path)
    except Exception as error:  # SafetensorError, OSError...: all mean a bad file
        raise DataError(f"{path}: not a readable safetensors file ({_line(error)}); damaged "
                        "or cut short?") from None


def _read_meta(path: Path) -> tuple[str, dict, int, int]:
    meta = read_json(path)
    version = meta.get("format", 1)
    if version != FORMAT:
        raise DataError(f"{path}: checkpoint format {version!r}; this deepmf reads format "
                        f"{FORMAT} (a run from another version)")
    name, args = meta.get("model"), meta.get("model_args")
    if name not in MODELS:
        raise DataError(f"{path}: unknown model {name!r}")
    if not isinstance(args, dict):
        raise DataError(f"{path}: model_args must be an object, not {args!r}")
    sizes = [meta.get(key) for key in ("n_users", "n_items")]
    if not all(type(n) is int and n >= 0 for n in sizes):
        raise DataError(f"{path}: n_users and n_items must be whole numbers >= 0, not {sizes}")
    return name, args, sizes[0], sizes[1]


def _read_rows(path: Path, n_users: int, n_items: int) -> tuple[Interactions, Interactions]:
    arrays = read_safetensors(path, load_arrays)
    missing = [key for key in ARRAYS if key not in arrays]
    if missing:
        raise DataError(f"{path}: no {', '.join(missing)}; not a deepmf checkpoint")
    sizes = dict(n_users=n_users, n_items=n_items)
    try:
        fit_data = Interactions(arrays["fit_users"], arrays["fit_items"], **sizes)
        seen = Interactions(np.concatenate([arrays["fit_users"], arrays["extra_users"]]),
                            np.concatenate([arrays["fit_items"], arrays["extra_items"]]),
                            **sizes)
    except (DataError, ValueError) as error:
        raise DataError(f"{path}: {error} (model.json says {n_users} users, {n_items} "
                        "items)") from None
    return fit_data, seen


def _kind(tensor: torch.Tensor) -> str:
    return f"{str(tensor.dtype).removeprefix('torch.')} {list(tensor.shape)}"


def _check_state(path: Path, name: str, skeleton: Recommender, state: dict) -> None:
    """The weights must be the skeleton's tensors, same names, shapes and dtypes, finite."""
    expected = skeleton.state_dict()
    extra, missing = sorted(set(state) - set(expected)), sorted(set(expected) - set(state))
    if extra or missing:
        what = f"has {extra[0]}" if extra else f"lacks {missing[0]}"
        raise DataError(f"{path}: {what}, so it is not the {name} model that model.json "
                        "describes (files from different runs or models?)")
    for key, tensor in state.items():
        want = expected[key]
        if tuple(tensor.shape) != tuple(want.shape) or tensor.dtype != want.dtype:
            raise DataError(f"{path}: {key} is {_kind(tensor)} but model.json describes "
                            f"{_kind(want)} (edited, or files from different runs?)")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise DataError(f"{path}: {key} holds NaN or infinite values; the model is "
                            "unusable")


class _Unfilled(TorchFunctionMode):
    """Random fills skipped: ``normal_`` (the tensor method or ``nn.init``'s) returns its
    tensor and ``torch.randn`` an empty one, so a model built under it (and the meta
    device) draws nothing. Constructors should fill rather than compute (arithmetic on
    meta tensors runs Python references too)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in (torch.Tensor.normal_, torch.nn.init.normal_):
            return args[0] if args else kwargs["tensor"]
        if func is torch.randn:
            kwargs.pop("generator", None)
            return torch.empty(*args, **kwargs)
        return func(*args, **kwargs)


@contextmanager
def _shapes_only():
    """Modules built on the meta device (shapes, no storage), without their random
    initialisation: a meta tensor has no values to draw, and its ``normal_`` runs a Python
    reference whose first call imports ``torch._dynamo``, which took 3.4 s of every
    ``recommend``, ``evaluate`` and ``serve`` start (cProfile, 1M-log run)."""
    with torch.device("meta"), _Unfilled():
        yield


def load_checkpoint(folder: Path, device: str | torch.device = "cpu", *,
                    id_space: tuple[int, int] | None = None):
    """Rebuild a saved model; returns ``(name, model, seen)`` with ``seen`` the training rows.

    ``id_space`` (users, items), when given, is what the model must have been trained for.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such checkpoint folder; the run directory is incomplete")
    name, args, n_users, n_items = _read_meta(folder / "model.json")
    if id_space is not None and tuple(id_space) != (n_users, n_items):
        raise DataError(f"{folder}: a model of {n_users} users and {n_items} items, but the "
                        f"data has {id_space[0]} and {id_space[1]} (it changed since training?)")
    fit_data, seen = _read_rows(folder / "interactions.safetensors", n_users, n_items)
    weights = folder / "model.safetensors"
    state = read_safetensors(weights)
    try:
        with _shapes_only():  # nothing allocated for an edited size
            skeleton = build_model(name, fit_data, **args)
    except (DeepMFError, TypeError, ValueError) as error:
        raise DataError(f"{folder / 'model.json'}: model_args do not make a {name} model "
                        f"({_line(error)})") from None
    _check_state(weights, name, skeleton, state)
    model = build_model(name, fit_data, **args)
    model.load_state_dict(state)
    model.to(device).eval()
    return name, model, seen
