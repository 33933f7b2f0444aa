"""The import rules of DESIGN.md, checked on the source.

protocol and dsp import nothing of ours but the exception tree; the simulator
never imports the host; the host reaches the simulator only lazily (inside a
function), never at module level.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = {"knotsense", "knotsense.errors", "knotsense._version"}

# layer -> the knotsense subpackages it may import at module level
ALLOWED = {
    "protocol": {"protocol"},
    "dsp": {"dsp"},
    "firmware_sim": {"firmware_sim", "protocol"},
    "host": {"host", "protocol", "dsp"},
    "calibration": {"calibration", "protocol", "dsp", "host"},
}
CLI_COMMANDS = ROOT / "host" / "cli" / "commands"
CLI_LAZY = {"calibration"}
NEVER = {
    "protocol": {"dsp", "firmware_sim", "host", "calibration", "hil"},
    "dsp": {"protocol", "firmware_sim", "host", "calibration", "hil"},
    "firmware_sim": {"host", "dsp", "calibration", "hil"},
    "host": {"calibration", "hil"},
    "calibration": {"hil"},
}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at_module_level) for every knotsense import in *path*."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    for node in tree.body:  # imports under `if TYPE_CHECKING:` count as top level
        if isinstance(node, ast.If):
            top_level |= {id(n) for n in node.body}
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            if name == "knotsense" or name.startswith("knotsense."):
                found.append((name, id(node) in top_level))
    return found


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and f"knotsense.{parts[1]}" not in SHARED else None


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_follow_design(layer: str) -> None:
    violations = []
    for path in (ROOT / layer).rglob("*.py"):
        for module, top in _imports(path):
            target = _layer_of(module)
            if target is None:
                continue
            where = f"{path.relative_to(ROOT)} imports {module}"
            if CLI_COMMANDS in path.parents and target in CLI_LAZY and not top:
                continue  # the CLI is the top of the stack: it may reach calibration lazily
            if target in NEVER[layer]:
                violations.append(where)
            elif top and target not in ALLOWED[layer]:
                violations.append(where + " at module level (import it lazily)")
    assert not violations, violations
