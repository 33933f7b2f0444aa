"""No import circles between the modules of a floor (issue 19).

Every import counts here -- module level, inside a function, under
``TYPE_CHECKING`` -- because a lazy import is still an arrow a reader has to
follow: within a floor the arrows must run one way.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("protocol", "dsp", "firmware_sim", "host", "calibration", "cli", "hil")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(["knotsense", *parts])


def _graph(floor: str) -> dict[str, set[str]]:
    """Module -> the modules of the same floor it imports, in any way."""
    paths = sorted((ROOT / floor).rglob("*.py"))
    names = {_module_name(p): p for p in paths}
    graph: dict[str, set[str]] = {name: set() for name in names}
    for name, path in names.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from knotsense.firmware_sim import framing` is an arrow to framing.
                subs = [f"{node.module}.{a.name}" for a in node.names]
                targets = [s for s in subs if s in names]
                if len(targets) < len(subs):
                    targets.append(node.module)
            # A package's __init__ re-exports its modules: the arrow from a module up
            # to its own package's facade is not a circle a reader follows.
            graph[name] |= {
                t for t in targets if t in names and t != name and not name.startswith(t + ".")
            }
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of *graph*, or None (depth-first search with colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


@pytest.mark.parametrize("floor", CHECKED)
def test_no_import_circles(floor: str) -> None:
    circle = _cycle(_graph(floor))
    assert circle is None, " -> ".join(circle or [])


def test_cycle_finder_sees_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
