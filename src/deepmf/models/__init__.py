"""Model registry: a literal dict from CLI name to class, and one builder."""

from __future__ import annotations

import inspect

from deepmf.data import Interactions
from deepmf.errors import ConfigError
from deepmf.models.als import ALS, IALS
from deepmf.models.base import Recommender
from deepmf.models.deepcf import DMF, CFNet, CFNetML
from deepmf.models.mf import MF, BiasedMF, DeepMF
from deepmf.models.ncf import GMF, MLP, NeuMF
from deepmf.models.popularity import ItemPop

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
    "ials": IALS,
    "als": ALS,
}

EXPLICIT_MODELS = ("mf", "biased-mf", "deepmf", "als")
"""Models whose default task is rating prediction; all others default to implicit."""

FILLED_IN = ("n_users", "n_items", "global_mean", "interactions", "seed")
"""Constructor arguments :func:`build_model` fills in from the training data."""


def model_class(name: str) -> type[Recommender]:
    """The registered class; ``ConfigError`` with the valid names for an unknown one."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; choose from {', '.join(MODELS)}") from None


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


__all__ = ["MODELS", "EXPLICIT_MODELS", "Recommender", "build_model", "model_class",
           "hyperparameters", "MF", "BiasedMF", "DeepMF", "GMF", "MLP", "NeuMF", "ItemPop",
           "DMF", "CFNetML", "CFNet", "IALS", "ALS"]
