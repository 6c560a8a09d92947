"""The layers of webhook/: core <- wire <- inventory <- serve <- cli. Every import goes down
(or stays in its layer), no imports run in a circle, no module grows past 400 lines, and nothing
in the project points at files outside it. Read from the source, so a new file is covered the day
it is added.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("core", "wire", "inventory", "serve", "cli")
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted((ROOT / "webhook").rglob("*.py"))}


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(source: str, module: str) -> set[str]:
    """The webhook modules this source imports (at any depth, TYPE_CHECKING blocks aside:
    they never run)."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from webhook.core import decide` imports webhook.core.decide.
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found.update(n for n in names if n in MODULES and n != module)
    return found


GRAPH = {name: imports_of(path.read_text(encoding="utf-8"), name) for name, path in MODULES.items()}


def test_the_five_layers_exist():
    for layer in LAYERS:
        assert (ROOT / "webhook" / layer / "__init__.py").is_file(), layer
    top = {name for name in MODULES if name.count(".") == 1 and layer_of(name) is None}
    assert top == {"webhook.__main__"}, "every module lives in a layer"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_go_down(module):
    own = layer_of(module)
    if own is None:  # the package face and `python -m webhook`
        return
    upward = sorted(m for m in GRAPH[module] if (layer_of(m) or 0) > own)
    assert not upward, f"{module} imports a higher layer: {upward}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph`, or None."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in on_path:
                return path[path.index(nxt):] + [nxt]
            if nxt not in done:
                found = visit(nxt)
                if found:
                    return found
        on_path.discard(path.pop())
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            found = visit(start)
            if found:
                return found
    return None


def test_no_import_circle():
    # A package imports its own face only; the face defines nothing and imports nothing.
    assert find_cycle(GRAPH) is None, " -> ".join(find_cycle(GRAPH) or [])


def test_the_checks_can_fail():
    # Controls: an upward import and a circle are seen.
    assert imports_of("from webhook.cli import check\n", "webhook.core.x") == {"webhook.cli", "webhook.cli.check"}
    assert imports_of("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import webhook.cli.check\n",
                      "webhook.core.x") == set()
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_over_400_lines(module):
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{module}: {lines} lines"


# Paths that leave the repository: the team's shared folder, or the design notes kept there.
OUTSIDE = re.compile(r"\.\./shared|(?<![\w/])shared/(DESIGN|STYLE|layers)|\bDESIGN\.md\b|\bSTYLE\.md\b")


def project_files() -> list[Path]:
    skip = {".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", "build", "dist"}
    return [p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)
            and p.suffix in {".py", ".md", ".yaml", ".yml", ".toml", ".json", ".lua", ""}
            and not p.name.endswith(".egg-info")]


def test_nothing_points_outside_the_project():
    found = []
    for path in project_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if path == Path(__file__).resolve():
            continue  # the pattern itself
        found += [f"{path.relative_to(ROOT)}:{n}" for n, line in enumerate(text.splitlines(), 1)
                  if OUTSIDE.search(line)]
    assert not found, found
