"""deepmf: matrix-factorization recommenders, classic and deep, on PyTorch.

The names below are the public Python API; see the README for a runnable example. They
are loaded on first use, so ``import deepmf`` (and the command line's ``--help``) does not
pay for torch and pandas until something needs them.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "deepmf.checkpoint": ("load_checkpoint", "save_checkpoint"),
    "deepmf.data": ("Dataset", "Interactions", "Vocabulary"),
    "deepmf.errors": ("ConfigError", "DataError", "DeepMFError"),
    "deepmf.evaluate": ("evaluate_full", "evaluate_ratings", "evaluate_sampled"),
    "deepmf.losses": ("bce", "bpr", "mse"),
    "deepmf.models": ("GMF", "MF", "MLP", "MODELS", "BiasedMF", "DeepMF", "ItemPop", "NeuMF",
                      "DMF", "CFNet", "CFNetML", "Recommender", "build_model"),
    "deepmf.readers": ("load_dataset",),
    "deepmf.split": ("leave_one_out", "make_splits", "random_split", "validation_split"),
    "deepmf.tasks": ("RankingTask", "RatingTask"),
    "deepmf.train": ("TrainConfig", "fit"),
    "deepmf.experiment.trained": ("TrainedModel",),
}
# Not re-exported: ``recommend`` and ``similar_items`` (``from deepmf.recommend import ...``);
# the module of the same name would shadow the function once anything imported it.
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'deepmf' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
