"""deepmf: matrix-factorization recommenders, classic and deep, on PyTorch.

The names below are the public Python API; see the README for a runnable example.
"""

from deepmf.data import Dataset, Interactions, Vocabulary
from deepmf.errors import ConfigError, DataError, DeepMFError
from deepmf.evaluate import evaluate_full, evaluate_ratings, evaluate_sampled
from deepmf.losses import bce, bpr, mse
from deepmf.models import (
    GMF,
    MF,
    MLP,
    MODELS,
    BiasedMF,
    DeepMF,
    ItemPop,
    NeuMF,
    Recommender,
    build_model,
)
from deepmf.readers import load_dataset
from deepmf.split import leave_one_out, make_splits, random_split, validation_split
from deepmf.tasks import RankingTask, RatingTask
from deepmf.train import TrainConfig, fit

__version__ = "0.1.0"

__all__ = [
    "Dataset", "Interactions", "Vocabulary", "ConfigError", "DataError", "DeepMFError",
    "bce", "bpr", "mse", "MODELS", "BiasedMF", "DeepMF", "MF", "Recommender", "build_model",
    "TrainConfig", "fit", "GMF", "MLP", "NeuMF", "ItemPop", "evaluate_full",
    "evaluate_ratings", "evaluate_sampled", "load_dataset", "leave_one_out", "make_splits",
    "random_split", "validation_split", "RankingTask", "RatingTask",
]
