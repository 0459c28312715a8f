"""Files that appear whole or not at all: written under a temporary name beside their place,
then renamed over it (a rename within one folder is atomic on POSIX and Windows)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: Path, *, sync: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to. Leaving the block normally renames it
    over ``path`` (after an ``fsync`` with ``sync``, so the bytes are on disk before the name
    points at them); leaving by an error removes it and leaves ``path`` as it was.

    The temporary name is hidden, holds the process id (two processes writing the same
    file do not share one) and keeps the suffix, which writers such as Matplotlib's
    ``savefig`` read to choose a format: ``.curves.tmp-PID.png`` for ``curves.png``."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        if sync:
            fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Write a text file whole (:func:`replacing`)."""
    with replacing(path) as tmp:
        tmp.write_text(text)


def fsync(path: Path) -> None:
    """Flush a written file's bytes to the disk."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
