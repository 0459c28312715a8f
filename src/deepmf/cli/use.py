"""``deepmf recommend`` and ``deepmf serve``: use a trained run (registered on deepmf.cli.app)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from deepmf.cli.app import app, err
from deepmf.cli.commands import data_folder
from deepmf.errors import DeepMFError
from deepmf.files import replacing


def _table(title: str, rows, score_label: str, history: bool = False,
           digits: int = 3) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right", style="dim")
    table.add_column("item", justify="right")
    table.add_column("title", style="bold")
    table.add_column("genres", style="cyan")
    table.add_column(score_label, justify="right")
    for rank, row in enumerate(rows, 1):
        value = row.rating if history else row.score
        table.add_row(str(rank), str(row.item), row.title or "", ", ".join(row.genres),
                      "" if value is None else f"{value:.{digits}f}")
    return table


@app.command()
def recommend(
    run_dir: str = typer.Argument(..., help="a run directory written by deepmf train"),
    user: Optional[str] = typer.Option(None, help="raw user id, as in the dataset"),
    users_file: Optional[str] = typer.Option(None, "--users", help="a file of raw user ids, "
                                             "one a line: their lists go to --out"),
    all_users: bool = typer.Option(False, "--all-users", help="every user's list, to --out"),
    out: Optional[str] = typer.Option(None, help="where --users/--all-users write their "
                                                 "lists: .csv, .tsv or .parquet"),
    k: int = typer.Option(10, min=1, max=1000, help="how many items"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    history: int = typer.Option(0, min=0, help="also show the user's N latest seen items"),
    fallback: Optional[str] = typer.Option(None, help="'popular': most-seen items for an "
                                                      "unknown user instead of an error"),
    include_seen: bool = typer.Option(False, help="do not leave out items the user has seen"),
    split: Optional[str] = typer.Option(None, help="checkpoint of a multi-split run"),
    data_dir: Optional[str] = typer.Option(None, help="dataset location (history ratings)"),
):
    """Top-K items for one user of a trained run, seen items left out; or for many users
    (--users FILE, --all-users) into one table (--out)."""
    from deepmf.experiment.trained import TrainedModel, UnknownIdError

    if fallback not in (None, "popular"):
        raise DeepMFError(f"--fallback must be 'popular' (got {fallback!r})")
    if (user is not None) + (users_file is not None) + all_users != 1:
        raise DeepMFError("give one of --user ID, --users FILE or --all-users")
    if user is None:
        if history or as_json:
            raise DeepMFError(f"{'--history' if history else '--json'} is for one --user; "
                              "--users and --all-users write a table to --out")
        raw = None if all_users else _user_ids(users_file)
        destination = _table_file(out)
        model = TrainedModel(run_dir, split, data_folder(data_dir), load_data=False)
        try:
            table = model.top_table(raw, k, not include_seen, fallback == "popular")
        except UnknownIdError as error:
            raise DeepMFError(f"{error} in {users_file}; --fallback popular recommends the "
                              "most popular items to unknown users instead") from None
        _write_table(table, destination)
        print(f"wrote the top {k} of {len(model.users) if raw is None else len(raw):,} users "
              f"({len(table):,} rows) to {destination}")
        return
    if out is not None:
        raise DeepMFError("--out is for --users or --all-users; one --user prints its list")
    model = TrainedModel(run_dir, split, data_folder(data_dir), load_data=history > 0)
    try:
        items, source, seen = model.recommend([user], k, not include_seen)[0], "model", []
        if history:
            seen = model.history(user, history)
        user = model.raw_users[model.user_index(user)]
    except UnknownIdError as error:
        if fallback is None:
            raise DeepMFError(f"{error} in {run_dir}; --fallback popular recommends the "
                              "most popular items instead") from None
        items, source = model.popular_items(k), "popular"
    if as_json:
        out = {"user": user, "model": model.name, "source": source,
               "items": [{"rank": r, **_fields(s, "score")} for r, s in enumerate(items, 1)]}
        if history:
            out["history"] = [_fields(s, "rating", "timestamp") for s in seen]
        print(json.dumps(out, indent=2))
        return
    console = Console()
    if history:
        console.print(_table(f"user {user}: latest seen items", seen, "rating", history=True))
    label = (f"most popular items (user {user} is unknown: popularity fallback)"
             if source == "popular" else f"top {k} for user {user} ({model.name})")
    popular = source == "popular"
    console.print(_table(label, items, "count" if popular else "score", digits=0 if popular else 3))


TABLE_FORMATS = (".csv", ".tsv", ".parquet")
"""What ``--out`` may end in."""


def _user_ids(path: str) -> list[str]:
    """The raw user ids of a file, one a line (blank lines skipped)."""
    try:
        with open(path, encoding="utf-8") as handle:
            ids = [line.strip() for line in handle if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise DeepMFError(f"--users {path}: cannot read it ({error.__class__.__name__})") \
            from None
    if not ids:
        raise DeepMFError(f"--users {path}: no user ids in it")
    return ids


def _table_file(out: str | None) -> Path:
    """``--out``, checked before any scoring: a name ending in one of ``TABLE_FORMATS``,
    in a folder that exists."""
    if out is None:
        raise DeepMFError("--users and --all-users need --out FILE (.csv, .tsv or .parquet)")
    path = Path(out).expanduser()
    if path.suffix.lower() not in TABLE_FORMATS:
        raise DeepMFError(f"--out {out}: name a .csv, .tsv or .parquet file")
    if not path.parent.is_dir():
        raise DeepMFError(f"--out {out}: no such folder {path.parent}")
    if path.is_dir():
        raise DeepMFError(f"--out {out} is a folder; name a file")
    return path


def _write_table(table, path: Path) -> None:
    """Write the table whole or not at all (:func:`deepmf.files.replacing`)."""
    try:
        with replacing(path) as tmp:
            if path.suffix.lower() == ".parquet":
                table.to_parquet(tmp, index=False)
            else:
                table.to_csv(tmp, index=False,
                             sep="\t" if path.suffix.lower() == ".tsv" else ",")
    except OSError as error:
        raise DeepMFError(f"--out {path}: cannot write it ({error.strerror or error})") \
            from None


def _fields(scored, *extra: str) -> dict:
    row = asdict(scored)
    return {key: row[key] for key in ("item", "title", "genres", *extra)}


@app.command()
def serve(
    run_dir: str = typer.Argument(..., help="a run directory written by deepmf train"),
    host: str = typer.Option("127.0.0.1", help="address to bind (loopback by default)"),
    port: int = typer.Option(8000, min=0, max=65535),
    split: Optional[str] = typer.Option(None, help="checkpoint of a multi-split run"),
    data_dir: Optional[str] = typer.Option(None, help="dataset location (history ratings)"),
    access_log: bool = typer.Option(False, help="log every request"),
    cache_size: int = typer.Option(
        4096, min=0, help="users whose top 10 is computed at start-up, and answers kept in "
                          "an LRU cache; 0 off"),
):
    """Serve a trained run over HTTP: JSON API, docs at /docs and a web page at /."""
    from deepmf.serve import serve as run_server

    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]warning:[/] binding to {host}: the API has no authentication")
    run_server(run_dir, host, port, split=split, data_dir=data_folder(data_dir),
               access_log=access_log, cache_size=cache_size)
