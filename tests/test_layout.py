"""The package's imports run one way, down the flow (docs/architecture.md): read from the
source (every import, also inside functions; those under `if TYPE_CHECKING:` do not count),
there is no cycle, and the layering rules hold."""

from __future__ import annotations

import ast
from pathlib import Path

import duckapi

PACKAGE = Path(duckapi.__file__).resolve().parent
#: The ways in: what a user runs. Nothing below them imports them.
WAYS_IN = {"api", "batch", "library", "web", "testing", "cli"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str], own: str = "") -> set[str]:
    """The package's modules `path` imports, anywhere but under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text())
    skipped = {id(node) for branch in ast.walk(tree)
               if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.unparse(branch.test)
               for node in ast.walk(branch)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("duckapi"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("duckapi"))
    return {m for m in found if m in modules} - {own}


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: imports_of(path, modules, name) for name, path in paths.items()}


def part(module: str) -> str:
    """The folder (or top-level module) a module belongs to: `rows`, `engines`, `settings`."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else ""


def test_no_import_cycles() -> None:
    edges = graph()
    state: dict[str, str] = {}

    def visit(module: str, trail: tuple[str, ...]) -> None:
        state[module] = "visiting"
        for imported in sorted(edges[module]):
            if state.get(imported) == "visiting":
                cycle = trail[trail.index(imported):] + (module, imported) if imported in trail else (module, imported)
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if imported not in state:
                visit(imported, trail + (module,))
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, ())


#: The flow, bottom to top (docs/architecture.md): a module imports its own folder and the
#: ones below it, never one above. "" is the package's public face (duckapi/__init__.py).
LAYERS = ["errors", "settings", "dbt", "pipeline", "rows", "engines", "serving",
          "library", "", "batch", "testing", "web", "api", "cli"]
#: The one import upwards: settings reads the profile (the dbt side's reader of profiles.yml).
EXCEPTIONS = {("duckapi.settings", "duckapi.dbt.profiles")}


def test_every_folder_has_its_place() -> None:
    assert {part(module) for module in graph()} == set(LAYERS)
    assert WAYS_IN <= set(LAYERS)


def test_the_layers_hold() -> None:
    """Also what follows from the order, said as rules: rows never import engines; settings
    imports nothing from the engines or the ways in; engines never import the ways in; the
    pipeline and its relations never import engines."""
    broken = [f"{module} -> {other}" for module, imported in graph().items() for other in imported
              if LAYERS.index(part(other)) > LAYERS.index(part(module)) and (module, other) not in EXCEPTIONS]
    assert not broken, broken


def test_the_checks_see_imports_inside_functions(tmp_path: Path) -> None:
    """A function-level import counts; one under TYPE_CHECKING does not."""
    source = tmp_path / "sample.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import duckapi.api.app\n"
                      "def f():\n    from duckapi.engines import duckdb\n")
    assert imports_of(source, {"duckapi.api.app", "duckapi.engines", "duckapi.engines.duckdb"}) == {"duckapi.engines.duckdb"}


def test_the_bench_is_its_scenarios() -> None:
    """bench/ stays at most 3,000 lines (issue 24): servers, clients, timing and results files live once, in
    bench/harness.py, and a bench module holds what it measures."""
    bench = PACKAGE.parent / "bench"
    sizes = {p.name: len(p.read_text().splitlines()) for p in bench.glob("*.py")}
    assert sum(sizes.values()) <= 3000, sorted(sizes.items(), key=lambda kv: -kv[1])
    assert all("def markdown" not in p.read_text() for p in bench.glob("*.py")), "reports go through harness.report"
