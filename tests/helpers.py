"""Builders shared by the tests: small known-answer data and models."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepmf.data import Interactions
from deepmf.models import build_model, hyperparameters


def build(name: str, train: Interactions, **options):
    """``build_model`` with only the options this model takes (the rest dropped)."""
    return build_model(name, train, **{k: v for k, v in options.items()
                                       if k in hyperparameters(name)})


def checkerboard(n_blocks: int = 2, block: int = 8) -> tuple[Interactions, Interactions]:
    """Users and items in blocks; each user has every item of its block but one, withheld.

    The withheld item (the "diagonal") is the only unseen item of the user's own block, so a
    model that learns the block structure must rank it first among unseen items.
    """
    users, items, test_users, test_items = [], [], [], []
    for b in range(n_blocks):
        for j in range(block):
            u = b * block + j
            for i in range(block):
                (test_items if i == j else items).append(b * block + i)
                (test_users if i == j else users).append(u)
    n = n_blocks * block
    return (
        Interactions(np.array(users), np.array(items), n_users=n, n_items=n),
        Interactions(np.array(test_users), np.array(test_items), n_users=n, n_items=n),
    )


# Small generated files, so that tests of bad input need no real data and run in seconds.

GENRES = ("unknown", "Action", "Comedy", "Drama")


def tiny_ratings(users: int = 20, items: int = 30, per_user: int = 8,
                 seed: int = 0) -> np.ndarray:
    """``int64[n, 4]`` rows ``user, item, rating, timestamp``: ``per_user`` distinct items
    for each of ``users`` users (ids from 1), ratings 1..5, distinct times."""
    rng = np.random.default_rng(seed)
    picks = np.argsort(rng.random((users, items)), axis=1)[:, :per_user] + 1
    user_ids = np.repeat(np.arange(1, users + 1), per_user)
    ratings = rng.integers(1, 6, users * per_user)
    times = 881250949 + np.arange(users * per_user)
    return np.column_stack([user_ids, picks.ravel(), ratings, times])


def write_log(path, rows, header: str | None = "user,item,rating,timestamp",
              sep: str = ",") -> Path:
    """Rows (anything with ``tolist``, or a list of tuples) as a delimited text file."""
    lines = [] if header is None else [header]
    lines += [sep.join(str(v) for v in row) for row in np.asarray(rows, dtype=object).tolist()]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_movielens(root, users: int = 20, items: int = 30, per_user: int = 8) -> Path:
    """A miniature ml-100k release under ``root/ml-100k`` (u.data, u.item, u.genre);
    returns ``root``, for ``--data-dir``."""
    folder = root / "ml-100k"
    folder.mkdir(parents=True, exist_ok=True)
    write_log(folder / "u.data", tiny_ratings(users, items, per_user), header=None, sep="\t")
    flags = np.eye(len(GENRES), dtype=int)[np.arange(items) % len(GENRES)]
    (folder / "u.item").write_text("".join(
        f"{i + 1}|Movie {i + 1} (1995)|01-Jan-1995||http://x|{'|'.join(map(str, row))}\n"
        for i, row in enumerate(flags.tolist())))
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES)) + "\n")
    return root


def refused(capsys, args, *needles: str, out: Path | None = None) -> str:
    """Run the CLI on ``args`` and check the bad-input contract: exit code 2, one line on
    stderr starting ``deepmf: error:`` and holding every needle, no traceback, and nothing
    left at ``out`` (no run directory, no hidden ``.NAME.tmp-*`` folder beside it).
    Returns the line."""
    from deepmf.cli import main

    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, f"exit {code}: {err}"
    assert len(lines) == 1 and lines[0].startswith("deepmf: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    if out is not None:
        assert not out.exists(), f"{out} was left behind"
        assert not list(out.parent.glob(f".{out.name}.tmp-*")), "a hidden temp folder was left"
    return lines[0]


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` with its size and modification time."""
    return {p.relative_to(folder): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def fresh_python(code: str) -> str:
    """Run ``code`` in a new interpreter (nothing imported yet) and return its stdout and
    stderr together, for tests of what a command imports."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    return done.stdout + done.stderr
