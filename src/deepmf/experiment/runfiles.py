"""Reading the small files of a run directory strictly: a damaged or edited file is one
``DataError`` naming it, never a traceback from deep inside a parser."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from deepmf.checkpoint import read_json
from deepmf.data import Vocabulary
from deepmf.errors import ConfigError, DataError
from deepmf.experiment.config import RunConfig, read_config


def run_config(path: Path) -> RunConfig:
    """``config.toml`` as a :class:`RunConfig`; a bad value names the file."""
    try:
        return RunConfig(**read_config(path))
    except ConfigError as error:
        message = str(error)
        raise DataError(message if message.startswith(str(path)) else f"{path}: {message}") \
            from None


def _ids(path: Path, key: str, values) -> np.ndarray:
    """One id list of ``vocab.json``: all whole 64-bit numbers or all text, no repeats."""
    if not isinstance(values, list):
        raise DataError(f"{path}: {key!r} must be a list of ids; damaged?")
    kind = pd.api.types.infer_dtype(values, skipna=False)
    try:
        if kind in ("integer", "empty"):
            ids = np.asarray(values, dtype=np.int64)
        elif kind == "string":
            ids = np.asarray(values)
        else:
            raise DataError(f"{path}: {key!r} must hold whole numbers or text, not {kind}")
        return Vocabulary(ids).ids
    except OverflowError:
        raise DataError(f"{path}: {key!r} holds a number that does not fit 64 bits") from None
    except DataError as error:
        raise DataError(error.args[0] if str(path) in str(error) else
                        f"{path}: {key!r}: {error}") from None


def read_vocab(path: Path) -> tuple[Vocabulary, Vocabulary]:
    """``vocab.json``: raw user and item ids in index order."""
    vocab = read_json(path)
    return (Vocabulary(_ids(path, "users", vocab.get("users"))),
            Vocabulary(_ids(path, "items", vocab.get("items"))))


def read_item_info(path: Path) -> pd.DataFrame:
    """``items.csv`` indexed by dense item index, columns as text (``title``, ``genres``)."""
    try:
        info = pd.read_csv(path, keep_default_na=False, dtype=str)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise DataError(f"{path}: not a readable items table ({' '.join(str(error).split())})"
                        "; damaged?") from None
    if "index" not in info:
        raise DataError(f"{path}: no index column; damaged?")
    index = pd.to_numeric(info["index"], errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(index) | (index != np.floor(index)) | (np.abs(index) > 2**53)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}: line {row + 2}: index {info['index'].iloc[row]!r} is not a "
                        "whole number; damaged?")
    return info.drop(columns="index").set_index(pd.Index(index.astype(np.int64)))
