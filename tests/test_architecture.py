"""The import graph of ``src/deepmf``: layers import one way and no module imports itself
back through others. Every import counts, including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "deepmf"

LOW = ("deepmf.errors", "deepmf.files")
ALLOWED = {  # module (or package) -> what it may import besides itself and its own package
    "deepmf.errors": (),
    "deepmf.files": (),  # written whole or not at all
    "deepmf.metrics": (),
    "deepmf.solve": (),  # a package: direct and cg build on rows
    "deepmf.snapshot": ("deepmf.files",),
    "deepmf.distributed": (*LOW, "deepmf.device"),  # a GPU for each process, or none
    "deepmf.optim": (),
    "deepmf.data": LOW,
    "deepmf.device": LOW,
    "deepmf.losses": LOW,
    "deepmf.train": (*LOW, "deepmf.distributed", "deepmf.optim", "deepmf.snapshot",
                     "deepmf.prefetch"),
    "deepmf.prefetch": ("deepmf.device",),
    "deepmf.split": (*LOW, "deepmf.data"),
    "deepmf.sampling": (*LOW, "deepmf.data"),
    "deepmf.batching": ("deepmf.distributed", "deepmf.sampling"),
    "deepmf.readers": (*LOW, "deepmf.data", "deepmf.device"),
    "deepmf.models": (*LOW, "deepmf.data", "deepmf.solve"),
    "deepmf.ranking": (*LOW, "deepmf.data", "deepmf.models"),  # full ranking's top K, screen
    "deepmf.evaluate": (*LOW, "deepmf.data", "deepmf.metrics", "deepmf.models", "deepmf.ranking"),
    "deepmf.recommend": (*LOW, "deepmf.data", "deepmf.models"),
    "deepmf.checkpoint": (*LOW, "deepmf.data", "deepmf.models"),
    "deepmf.tasks": (*LOW, "deepmf.data", "deepmf.batching", "deepmf.evaluate",
                     "deepmf.losses", "deepmf.sampling", "deepmf.models", "deepmf.distributed",
                     "deepmf.optim"),
    "deepmf.progress": ("deepmf.train",),
    "deepmf.experiment": (*LOW, "deepmf.data", "deepmf.device", "deepmf.readers",
                          "deepmf.split", "deepmf.sampling", "deepmf.batching", "deepmf.models",
                          "deepmf.losses", "deepmf.evaluate", "deepmf.tasks", "deepmf.train",
                          "deepmf.solve",
                          "deepmf.checkpoint", "deepmf.recommend", "deepmf.metrics",
                          "deepmf.snapshot", "deepmf.distributed", "deepmf.optim"),
    "deepmf.serve": (*LOW, "deepmf.recommend", "deepmf.experiment"),
    "deepmf.cli": ("deepmf",),  # the face: anything below it
    "deepmf": ("deepmf",),  # __init__ re-exports lazily; __main__ runs the CLI
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The deepmf modules ``path`` imports (``from P import m`` counts as ``P.m`` when
    ``m`` is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("deepmf")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("deepmf"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / Path(*sub.split("."))).with_suffix(".py").exists() \
                    or (PACKAGE.parent / Path(*sub.split(".")) / "__init__.py").exists()
                found.add(sub if is_module else node.module)
    return found


GRAPH = {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def owner(module: str) -> str:
    """The ALLOWED entry that governs ``module`` (its longest matching prefix)."""
    keys = [k for k in ALLOWED if module == k or module.startswith(k + ".")]
    return max(keys, key=len)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_go_down_the_layers(module):
    rule = owner(module)
    for target in GRAPH[module]:
        target_owner = owner(target)
        if target_owner == rule or target.startswith(rule + "."):
            continue
        allowed = ALLOWED[rule]
        assert any(target == a or target.startswith(a + ".") for a in allowed), \
            f"{module} imports {target}, which {rule} may not use"


def test_no_import_cycles():
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in GRAPH.get(module, ()):
            if target not in GRAPH or target == module:
                continue
            if module.startswith(target + "."):
                continue  # a package's submodule reading the package's own __init__
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target] if target in path else [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


def test_no_module_is_too_long():
    long = {module_name(p): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 320}
    assert not long, f"modules over 320 lines: {long}"


def test_the_command_line_starts_without_the_heavy_libraries():
    """`deepmf --help`, a mistyped model and `deepmf datasets` must answer at once: none of
    them may import torch, pandas, scipy or matplotlib (seconds of start-up each), nor
    pydantic (a quarter of a second; typer 0.29 imports it to parse options)."""
    from helpers import fresh_python

    probe = ("import sys\n"
             "from deepmf.cli import main\n"
             "for argv in (['--help'], ['train', '--model', 'nope'], ['datasets']):\n"
             "    main(argv)\n"
             "heavy = [m for m in ('torch', 'pandas', 'scipy', 'matplotlib', 'pydantic')\n"
             "         if m in sys.modules]\n"
             "print('HEAVY', heavy)\n")
    output = fresh_python(probe)
    assert "HEAVY []" in output, output[-1000:]
    assert "unknown model 'nope'" in output
