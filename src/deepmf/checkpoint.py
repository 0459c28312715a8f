"""Self-describing, pickle-free checkpoints: model name + constructor args + safetensors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file as load_arrays
from safetensors.numpy import save_file as save_arrays
from safetensors.torch import load_file, save_file

from deepmf.data import Interactions
from deepmf.errors import DataError
from deepmf.models import Recommender, build_model


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
    meta = {"model": name, "model_args": args,
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


def load_checkpoint(folder: Path, device: str | torch.device = "cpu"):
    """Rebuild a saved model; returns ``(name, model, seen)`` with ``seen`` the training rows."""
    try:
        meta = json.loads((folder / "model.json").read_text())
        arrays = load_arrays(folder / "interactions.safetensors")
        state = load_file(folder / "model.safetensors")
    except FileNotFoundError as error:
        raise DataError(f"{folder}: not a deepmf checkpoint ({Path(error.filename).name} "
                        "missing)") from None
    sizes = dict(n_users=meta["n_users"], n_items=meta["n_items"])
    fit_data = Interactions(arrays["fit_users"], arrays["fit_items"], **sizes)
    seen = Interactions(
        np.concatenate([arrays["fit_users"], arrays["extra_users"]]),
        np.concatenate([arrays["fit_items"], arrays["extra_items"]]),
        **sizes,
    )
    model = build_model(meta["model"], fit_data, **meta["model_args"])
    model.load_state_dict(state)
    model.to(device).eval()
    return meta["model"], model, seen
