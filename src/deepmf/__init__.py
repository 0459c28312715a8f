"""deepmf: matrix-factorization recommenders, classic and deep, on PyTorch.

The names below are the public Python API; see the README for a runnable example.
"""

from deepmf.data import Dataset, Interactions, Vocabulary
from deepmf.errors import ConfigError, DataError, DeepMFError
from deepmf.losses import bce, bpr, mse
from deepmf.models import MF, MODELS, BiasedMF, DeepMF, Recommender, build_model
from deepmf.train import TrainConfig, fit

__version__ = "0.1.0"

__all__ = [
    "Dataset", "Interactions", "Vocabulary", "ConfigError", "DataError", "DeepMFError",
    "bce", "bpr", "mse", "MODELS", "BiasedMF", "DeepMF", "MF", "Recommender", "build_model",
    "TrainConfig", "fit",
]
