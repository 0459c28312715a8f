"""Model registry: a literal dict from CLI name to class (loaded lazily), and one builder."""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING

from deepmf.errors import ConfigError

if TYPE_CHECKING:
    from deepmf.data import Interactions
    from deepmf.models.base import Recommender

REGISTRY: dict[str, str] = {
    "mf": "mf.MF",
    "biased-mf": "mf.BiasedMF",
    "deepmf": "mf.DeepMF",
    "gmf": "ncf.GMF",
    "mlp": "ncf.MLP",
    "neumf": "ncf.NeuMF",
    "itempop": "popularity.ItemPop",
    "dmf": "deepcf.DMF",
    "cfnet-ml": "deepcf.CFNetML",
    "cfnet": "deepcf.CFNet",
    "ials": "als.IALS",
    "als": "als.ALS",
    "bayes-mf": "bayes.BayesMF",
}
"""CLI name -> ``module.Class`` under :mod:`deepmf.models`. A model's module is imported when
it is first used, so the command line can check a name without loading PyTorch;
``MODELS`` (and ``from deepmf.models import GMF``) give the classes themselves."""

EXPLICIT_MODELS = ("mf", "biased-mf", "deepmf", "als", "bayes-mf")
"""Models whose default task is rating prediction; all others default to implicit."""

FILLED_IN = ("n_users", "n_items", "global_mean", "interactions", "seed")
"""Constructor arguments :func:`build_model` fills in from the training data."""


def model_class(name: str) -> type[Recommender]:
    """The registered class; ``ConfigError`` with the valid names for an unknown one."""
    check_name(name)
    module, cls = REGISTRY[name].rsplit(".", 1)
    return getattr(importlib.import_module(f"deepmf.models.{module}"), cls)


def check_name(name: str) -> None:
    """``ConfigError`` with the valid names unless ``name`` is a registered model."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown model {name!r}; choose from {', '.join(REGISTRY)}")


def __getattr__(attr: str):
    if attr == "MODELS":
        return {name: model_class(name) for name in REGISTRY}
    if attr == "Recommender":
        from deepmf.models.base import Recommender

        return Recommender
    for name, path in REGISTRY.items():
        if path.endswith(f".{attr}"):
            return model_class(name)
    raise AttributeError(f"module 'deepmf.models' has no attribute {attr!r}")


def hyperparameters(name: str) -> set[str]:
    """Constructor keywords a user may set for a model (not those filled in from data)."""
    params = inspect.signature(model_class(name)).parameters
    return set(params) - set(FILLED_IN)


def build_model(name: str, train: Interactions, **options) -> Recommender:
    """Build a registered model for the id spaces of ``train``.

    ``None`` means "the model's default"; an option the model does not take is a
    ``ConfigError``. ``global_mean`` is filled in from the training ratings, and
    ``interactions`` (for models that read interaction rows, such as DMF) with ``train``
    itself, when the model takes them.
    """
    accepted = set(inspect.signature(model_class(name)).parameters)
    kwargs = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ConfigError(f"model {name} does not take {', '.join(unknown)}")
    if "global_mean" in accepted and "global_mean" not in kwargs and train.ratings is not None:
        kwargs["global_mean"] = float(train.ratings.mean()) if len(train) else 0.0
    if "interactions" in accepted:
        kwargs["interactions"] = train
    return model_class(name)(train.n_users, train.n_items, **kwargs)


__all__ = ["MODELS", "REGISTRY", "EXPLICIT_MODELS", "Recommender", "build_model",
           "model_class", "check_name", "hyperparameters", "MF", "BiasedMF", "DeepMF", "GMF",
           "MLP", "NeuMF", "ItemPop", "DMF", "CFNetML", "CFNet", "IALS", "ALS", "BayesMF"]
