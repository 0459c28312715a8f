"""Model registry: a literal dict from CLI name to class, and one builder."""

from __future__ import annotations

import inspect

from deepmf.data import Interactions
from deepmf.errors import ConfigError
from deepmf.models.base import Recommender
from deepmf.models.dmf import DMF, CFNet, CFNetML
from deepmf.models.mf import MF, BiasedMF, DeepMF
from deepmf.models.ncf import GMF, MLP, ItemPop, NeuMF

MODELS: dict[str, type[Recommender]] = {
    "mf": MF,
    "biased-mf": BiasedMF,
    "deepmf": DeepMF,
    "gmf": GMF,
    "mlp": MLP,
    "neumf": NeuMF,
    "itempop": ItemPop,
    "dmf": DMF,
    "cfnet-ml": CFNetML,
    "cfnet": CFNet,
}

EXPLICIT_MODELS = ("mf", "biased-mf", "deepmf")
"""Models whose default task is rating prediction; all others default to implicit."""


def model_class(name: str) -> type[Recommender]:
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; choose from {', '.join(MODELS)}") from None


def model_options(name: str) -> set[str]:
    """Constructor keywords a model accepts besides the id-space sizes."""
    params = inspect.signature(model_class(name)).parameters
    return set(params) - {"n_users", "n_items"}


def build_model(name: str, train: Interactions, **options) -> Recommender:
    """Build a registered model for the id spaces of ``train``.

    Options the model does not take are ignored, and ``None`` means "the model's default".
    ``global_mean`` is filled in from the training ratings, and ``interactions`` (for models
    that read interaction rows, such as DMF) with ``train`` itself, when the model takes them.
    """
    accepted = model_options(name)
    kwargs = {k: v for k, v in options.items() if k in accepted and v is not None}
    if "global_mean" in accepted and "global_mean" not in kwargs and train.ratings is not None:
        kwargs["global_mean"] = float(train.ratings.mean()) if len(train) else 0.0
    if "interactions" in accepted:
        kwargs["interactions"] = train
    return model_class(name)(train.n_users, train.n_items, **kwargs)


__all__ = ["MODELS", "EXPLICIT_MODELS", "Recommender", "build_model", "model_class",
           "MF", "BiasedMF", "DeepMF", "GMF", "MLP", "NeuMF", "ItemPop",
           "DMF", "CFNetML", "CFNet"]
