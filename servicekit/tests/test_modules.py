"""servicekit's modules import one another in one direction only: no cycle, not even one deferred into a
function (the verifying half of service identity once imported the transport that imports the signing half)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "servicekit"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The servicekit modules path imports, wherever in it the import is."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}  # from servicekit import identity
    return found & modules


def import_graph() -> dict[str, set[str]]:
    paths = [path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts]
    modules = {module_name(path) for path in paths}
    return {module_name(path): imports_of(path, modules) - {module_name(path)} for path in paths}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each cycle found by a depth-first walk, as the modules along it."""
    found, done = [], set()

    def walk(module: str, path: list[str]) -> None:
        for imported in sorted(graph.get(module, ())):
            if imported in path:
                found.append([*path[path.index(imported) :], imported])
            elif imported not in done:
                walk(imported, [*path, imported])
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            walk(module, [module])
    return found


def test_the_walk_finds_a_cycle_deferred_into_a_function():
    assert cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_servicekit_has_no_import_cycle():
    graph = import_graph()
    assert graph["servicekit.http"] >= {"servicekit.identity"}  # the graph sees the imports
    assert cycles(graph) == []
