"""The papers' tables in one command, from recipes shipped as TOML files.

Each file in ``deepmf/recipes/`` is one published table on one dataset: its rows are
recipes (``deepmf train --recipe FILE/ROW``), each a model and the settings that differ
from the model's defaults, with the published numbers and the ones measured here.
:func:`reproduce` trains a table's rows in order with both selection protocols, a
pre-trained row from the same protocol's runs of its parts::

    OUT/LABEL/ROW-valid/     a run directory per row and protocol (reused when run again)
    OUT/LABEL/ROW-test/
    OUT/LABEL/reproduce.md   ours (validation- and test-selected) beside the published
    OUT/LABEL/reproduce.json
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

import tomllib

from deepmf.errors import ConfigError
from deepmf.experiment.config import RunConfig
from deepmf.experiment.reuse import train_or_reuse
from deepmf.train import Callback

SELECTIONS = ("valid", "test")


@dataclass(frozen=True)
class Row:
    """One recipe: a model, its settings, where its numbers come from."""

    name: str
    model: str
    settings: dict = field(default_factory=dict)
    pretrain: tuple[str, ...] = ()
    published: tuple[float, float] | None = None
    source: str = ""
    note: str = ""
    readme: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Table:
    """A published table on one dataset (one recipe file)."""

    key: str
    title: str
    table: str
    dataset: str
    label: str
    metric: str
    rows: tuple[Row, ...]

    def row(self, name: str) -> Row:
        for row in self.rows:
            if row.name == name:
                return row
        raise ConfigError(f"no row {name!r} in recipe table {self.key}; it has "
                          f"{', '.join(r.name for r in self.rows)}")

    def config(self, row: Row, select: str = "valid", **place) -> RunConfig:
        """The run of ``row``: its model, the table's dataset, the row's settings."""
        try:
            return RunConfig(model=row.model, dataset=self.dataset, select_on=select,
                             **row.settings, **place)
        except TypeError as error:
            raise ConfigError(f"recipe {self.key}/{row.name}: {error}") from None


def load_tables() -> dict[str, Table]:
    """Every shipped recipe file, by its name (``ncf-ml-1m``)."""
    found = {}
    for entry in sorted(resources.files("deepmf").joinpath("recipes").iterdir(),
                        key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            key = entry.name.removesuffix(".toml")
            data = tomllib.loads(entry.read_text())
            rows = tuple(Row(r["name"], r["model"], dict(r.get("settings", {})),
                             tuple(r.get("pretrain", ())),
                             tuple(r["published"]) if "published" in r else None,
                             r.get("source", ""), r.get("note", ""), r.get("readme", {}))
                         for r in data["rows"])
            found[key] = Table(key, data["title"], data["table"], data["dataset"],
                               data["label"], data["metric"], rows)
    return found


def find_recipe(name: str) -> tuple[Table, Row]:
    """``TABLE/ROW`` (as ``deepmf recipes`` lists them) -> its table and row."""
    tables = load_tables()
    key, _, row = name.partition("/")
    if key not in tables or not row:
        raise ConfigError(f"unknown recipe {name!r}; deepmf recipes lists them "
                          f"(TABLE/ROW, TABLE one of {', '.join(tables)})")
    return tables[key], tables[key].row(row)


def recipe_settings(name: str, pretrain: str | None = None) -> dict:
    """The settings ``deepmf train --recipe NAME`` starts from; a pre-trained row needs
    ``--pretrain`` (runs of its parts), which the user gives."""
    table, row = find_recipe(name)
    if row.pretrain and not pretrain:
        raise ConfigError(f"recipe {name} fine-tunes {' and '.join(row.pretrain)}: train "
                          f"those first and pass --pretrain RUN_A,RUN_B, or run deepmf "
                          f"reproduce {table.table} --rows {row.name}")
    return {"model": row.model, "dataset": table.dataset, **row.settings}


def tables_for(table: str, datasets: list[str] | None) -> list[Table]:
    """The recipe files of a published table, for the datasets asked (default: all)."""
    tables = [t for t in load_tables().values() if t.table == table]
    if not tables:
        names = sorted({t.table for t in load_tables().values()})
        raise ConfigError(f"unknown table {table!r}; choose from {', '.join(names)}")
    if not datasets:
        return tables
    labels = {t.label.lower(): t for t in tables}
    missing = [d for d in datasets if d.lower() not in labels]
    if missing:
        raise ConfigError(f"table {table} has no recipes for {', '.join(missing)}; it has "
                          f"{', '.join(t.label for t in tables)}")
    return [labels[d.lower()] for d in datasets]


def with_parts(table: Table, names: list[str] | None) -> list[Row]:
    """The rows asked for (default: all) and every row they are pre-trained from, in the
    table's order."""
    if not names:
        return list(table.rows)
    wanted = set()

    def need(name: str) -> None:
        wanted.add(name)
        for part in table.row(name).pretrain:
            need(part)

    for name in names:
        need(name)
    return [row for row in table.rows if row.name in wanted]


def reproduce(table: Table, out: str | Path, *, rows: list[str] | None = None,
              selections: tuple[str, ...] = SELECTIONS, data_dir: str | None = None,
              callbacks: Callable[[str], list[Callback]] = lambda label: [],
              say: Callable[[str], None] = print, tensorboard: bool = False) -> dict:
    """Train ``table``'s rows (and their parts) with each selection protocol into
    ``out/LABEL``, then write and return the table of ours beside the published."""
    bad = [s for s in selections if s not in SELECTIONS]
    if bad or not selections:
        raise ConfigError(f"--select takes {' and/or '.join(SELECTIONS)}, not {bad or 'none'}")
    folder = Path(out) / table.label
    chosen = with_parts(table, rows)
    for row in chosen:
        table.config(row)  # every recipe checked before anything trains
    runs, results = {}, {}
    for row in chosen:
        for select in selections:
            parts = ",".join(str(runs[(p, select)]) for p in row.pretrain) or None
            config = table.config(row, select, data_dir=data_dir, pretrain=parts)
            label = f"{table.label} {row.name} ({select})"
            path, metrics = train_or_reuse(config, folder / f"{row.name}-{select}",
                                           callbacks(label), say=say,
                                           tensorboard=tensorboard)
            runs[(row.name, select)] = path
            results.setdefault(row.name, {})[select] = _numbers(metrics)
            say(f"{label}: HR@10 {metrics['test']['hr@10']:.4f}  "
                f"NDCG@10 {metrics['test']['ndcg@10']:.4f}")
    summary = {"title": table.title, "dataset": table.dataset, "metric": table.metric,
               "rows": [_row_summary(row, results[row.name]) for row in chosen]}
    (folder / "reproduce.json").write_text(json.dumps(summary, indent=2) + "\n")
    (folder / "reproduce.md").write_text(markdown(summary))
    return summary


def _numbers(metrics: dict) -> dict:
    test = metrics["test"]
    return {"hr@10": test["hr@10"], "ndcg@10": test["ndcg@10"],
            "full_hr@10": test["full"]["hr@10"], "full_ndcg@10": test["full"]["ndcg@10"],
            "best_epoch": metrics["best_epoch"],
            "seconds": round(sum(metrics["epoch_seconds"]), 1)}


def _row_summary(row: Row, ours: dict) -> dict:
    return {"row": row.name, "model": row.model, "settings": row.settings,
            "pretrain": list(row.pretrain), "ours": ours,
            "published": list(row.published) if row.published else None,
            "source": row.source, "readme": row.readme}


def pair(values) -> str:
    """``0.7190 / 0.4377`` (a missing number as ``-``)."""
    if not values:
        return ""
    return " / ".join("-" if v is None or (isinstance(v, float) and math.isnan(v))
                      else f"{v:.4f}" for v in values)


def columns(entry: dict) -> list[str]:
    """A summary row's cells: row, ours per protocol, the README's, published, source."""
    ours = [pair((entry["ours"][s]["hr@10"], entry["ours"][s]["ndcg@10"]))
            if s in entry["ours"] else "" for s in SELECTIONS]
    readme = "; ".join(f"{s} {pair(v)}" for s, v in entry["readme"].items())
    return [entry["row"], *ours, readme, pair(entry["published"]), entry["source"]]


HEADER = ["row", "ours, validation-selected", "ours, test-selected (papers)",
          "measured before (README)", "published", "source"]


def markdown(summary: dict) -> str:
    lines = [f"{summary['title']} ({summary['metric']})", "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(columns(entry)) + " |" for entry in summary["rows"]]
    return "\n".join(lines) + "\n"
