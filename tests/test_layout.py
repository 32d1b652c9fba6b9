"""The layout DESIGN.md draws, checked on the source with ``ast``: which top-level package
may import which, no import cycle between modules, and no import by a name computed at
run time, so grep, jump-to-definition and mypy can follow every seam."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("collector", "receivers", "exporters", "gasoline")
# Which of the project's packages each one may import (itself always).
ALLOWED = {
    "collector": set(),
    "receivers": {"collector"},
    "exporters": {"collector"},
    "gasoline": {"collector", "receivers", "exporters"},
}
# Names that import a module chosen at run time.
DYNAMIC = {"import_module", "__import__"}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _nodes(tree: ast.AST, *, typing: bool) -> Iterator[ast.AST]:
    """Every node, at any depth; without ``typing``, not those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if not typing and isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _imports(name: str, path: Path, *, typing: bool = True) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in the file, at any depth (in functions too),
    resolved to the project's modules; ``typing``: those only for type checkers too."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in _nodes(ast.parse(path.read_text(), str(path)), typing=typing):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names]
            targets = [t if t in MODULES else base for t in targets]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target:
                yield node.lineno, target


# What each module runs when imported. Imports only for type checkers may go both ways:
# that is how two modules name each other's types without importing each other.
GRAPH = {
    name: {target for _, target in _imports(name, path, typing=False)}
    for name, path in MODULES.items()
}


def test_the_layout_is_what_it_says() -> None:
    assert set(ALLOWED) == set(PACKAGES)
    assert "collector.component" in MODULES and "gasoline.components" in MODULES


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_import_only_what_the_layout_allows(package: str) -> None:
    wrong = [
        f"{MODULES[name].relative_to(ROOT)}:{line}: imports {target}"
        for name, path in MODULES.items()
        if name.split(".")[0] == package
        for line, target in _imports(name, path)
        if target.split(".")[0] not in ALLOWED[package] | {package}
    ]
    assert wrong == []


def test_no_module_imports_by_a_computed_name() -> None:
    found = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            called = node.func if isinstance(node, ast.Call) else None
            attr = getattr(called, "attr", None) or getattr(called, "id", None)
            if attr in DYNAMIC:
                found.append(where)
            if isinstance(node, ast.ImportFrom) and node.module == "importlib":
                found.append(where)
            if isinstance(node, ast.Import) and "importlib" in [a.name for a in node.names]:
                found.append(where)
    assert found == []


def _cycle() -> list[str]:
    """One import cycle among the project's modules, or []."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    for start in sorted(GRAPH):
        if start in state:
            continue
        stack = [(start, iter(sorted(GRAPH[start])))]
        state[start] = 1
        path.append(start)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif state.get(child) == 1:
                return [*path[path.index(child) :], child]
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(GRAPH[child]))))
    return []


def test_no_import_cycle() -> None:
    assert " -> ".join(_cycle()) == ""


def test_the_cycle_check_can_fail() -> None:
    GRAPH["collector.model"].add("collector.component")
    try:
        assert _cycle()[0] in ("collector.component", "collector.model")
    finally:
        GRAPH["collector.model"].discard("collector.component")
