"""The floors of DESIGN.md ("The house"), checked on every import in the source.

Every ``import``/``from ... import`` node is checked -- module level, inside
functions and methods, under ``try``/``if`` -- plus ``importlib.import_module``
and ``__import__`` calls with a literal module name. Relative imports are
resolved against the importing module.

How an import counts:

- *eager*: anywhere outside a function body. Imports under
  ``if TYPE_CHECKING:`` count as eager: a type-only arrow that points up still
  ties the lower floor's API to the upper one (and hides circles), so they are
  held to the same table as runtime imports.
- *lazy*: inside a function (or lambda) body; it runs only when called. A lazy
  import is allowed only where :data:`LAZY` says so; everywhere else the table
  applies to lazy imports exactly as to eager ones.

To add a floor (a new subpackage), add its row to :data:`FLOORS` (and a
:data:`LAZY` rule if it reaches something only lazily); a subpackage folder
without a row fails :func:`test_every_subpackage_has_a_floor`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SHARED = frozenset({"errors", "_version"})
"""Root modules every floor may import (the exception tree, the version)."""

LIBRARY = frozenset({"protocol", "dsp", "firmware_sim", "host", "calibration", "study"})

FLOORS: dict[str, frozenset[str]] = {
    # floor -> the floors it may import (itself and SHARED always allowed)
    "protocol": frozenset(),
    "dsp": frozenset(),
    "firmware_sim": frozenset({"protocol"}),
    "host": frozenset({"protocol", "dsp"}),
    "calibration": frozenset({"protocol", "dsp", "host"}),
    # batch analysis and reports for studies: sessions are read through host
    "study": frozenset({"protocol", "dsp", "host"}),
    "cli": LIBRARY,
    "hil": LIBRARY | {"cli"},
    # root modules (knotsense/__init__.py, the lazy front door): the library, not the CLI
    "": LIBRARY,
    # `python -m knotsense` is the command
    "__main__": LIBRARY | {"cli"},
}
"""DESIGN.md's "may import" column, one row per floor."""


@dataclass(frozen=True)
class Lazy:
    """*floor* may reach *target* only lazily, and only from the modules *where* allows."""

    floor: str
    target: str
    why: str

    def allows(self, path: Path) -> bool:
        if (self.floor, self.target) == ("host", "firmware_sim"):
            return path in registry_modules()
        return False


LAZY = [
    Lazy("host", "firmware_sim", "through the transport registry (a module it names)"),
]


def registry_modules() -> set[Path]:
    """Files of the transport modules host/transports/__init__.py names as ``"module:Class"``."""
    init = ROOT / "host" / "transports" / "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(init.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            module, _, cls = node.value.partition(":")
            if cls and module.startswith("knotsense.host.transports."):
                found.add(ROOT.joinpath(*module.split(".")[1:]).with_suffix(".py"))
    return found


@dataclass(frozen=True)
class Import:
    """One import of ours: the dotted module and whether it runs only when a function does."""

    module: str
    lazy: bool
    line: int


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _dynamic_name(node: ast.Call) -> str | None:
    """The literal module of ``importlib.import_module("x")`` / ``__import__("x")``."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in ("import_module", "__import__") or not node.args:
        return None
    arg = node.args[0]
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def module_name(path: Path, root: Path = ROOT) -> str:
    """``knotsense.host.device`` for ROOT/host/device.py (ROOT is the package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["knotsense", *parts])


def imports_of(path: Path, root: Path = ROOT) -> list[Import]:
    """Every knotsense import in *path*, resolved to absolute dotted names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package.pop()
    found: list[Import] = []

    def add(name: str, lazy: bool, line: int) -> None:
        if name == "knotsense" or name.startswith("knotsense."):
            found.append(Import(name, lazy, line))

    def visit(node: ast.AST, lazy: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, lazy, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "knotsense":  # `from knotsense import cli` imports a subpackage
                for alias in node.names:
                    add(f"knotsense.{alias.name}", lazy, node.lineno)
            else:
                add(module, lazy, node.lineno)
        elif isinstance(node, ast.Call) and (name := _dynamic_name(node)) is not None:
            add(name, lazy, node.lineno)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:  # TYPE_CHECKING imports count as eager
                visit(child, lazy)
            for child in node.orelse:
                visit(child, lazy)
            return
        inner = lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            # decorators, defaults and annotations run at definition time
            eager_part = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
                child in node.decorator_list or child is node.returns or child is node.args
            )
            visit(child, lazy if eager_part else inner)

    visit(tree, False)
    return found


def floor_of(path: Path, root: Path = ROOT) -> str:
    """The floor a source file sits on: its top folder, ``""`` for root modules."""
    rel = path.relative_to(root)
    if len(rel.parts) == 1:
        return "__main__" if rel.name == "__main__.py" else ""
    return rel.parts[0]


def target_of(module: str) -> str | None:
    """The floor *module* belongs to; None for the package itself and shared modules."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in SHARED:
        return None
    if (ROOT / f"{parts[1]}.py").is_file():
        return ""  # a root module (knotsense.aio, the async front door): the root floor
    return parts[1]


def violations(root: Path = ROOT, floors: dict[str, frozenset[str]] = FLOORS) -> list[str]:
    """Every import under *root* that DESIGN.md's table does not allow, as readable lines."""
    out = []
    for path in sorted(source_files(root, floors)):
        floor = floor_of(path, root)
        for imp in imports_of(path, root):
            target = target_of(imp.module)
            if target is None or target == floor or target in floors[floor]:
                continue
            where = f"{path.relative_to(root)}:{imp.line} ({floor or 'root'}) imports {imp.module}"
            rule = next((r for r in LAZY if (r.floor, r.target) == (floor, target)), None)
            if rule is None:
                out.append(where)
            elif not imp.lazy:
                out.append(f"{where} eagerly; only lazily, {rule.why}")
            elif not (root == ROOT and rule.allows(path)):
                out.append(f"{where} from a module not allowed to: only lazily, {rule.why}")
    return out


def source_files(root: Path, floors: dict[str, frozenset[str]]) -> Iterator[Path]:
    """The package's own modules: root files and every floor's folder."""
    yield from root.glob("*.py")
    for floor in floors:
        if floor and (root / floor).is_dir():
            yield from (root / floor).rglob("*.py")


# --- the checks ---------------------------------------------------------------


def test_source_follows_design_floors() -> None:
    assert not violations(), "\n".join(violations())


def test_every_subpackage_has_a_floor() -> None:
    """A new folder of the package must say which floors it may import."""
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages - set(FLOORS) == set(), "give each new subpackage a row in FLOORS"


def test_nothing_in_the_library_imports_the_cli() -> None:
    for floor in [*LIBRARY, ""]:
        assert "cli" not in FLOORS[floor], floor


def test_transport_registry_is_found() -> None:
    """The host->firmware_sim rule is only as good as the registry it reads."""
    names = {p.name for p in registry_modules()}
    assert {"sim.py", "serial.py", "ble.py"} <= names, names


def test_importing_all_of_host_imports_no_upper_floor() -> None:
    """At run time: every host module imported, and still no simulator, calibration or CLI."""
    modules = sorted(module_name(p) for p in (ROOT / "host").rglob("*.py"))
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[:2] in "
        "(['knotsense', 'firmware_sim'], ['knotsense', 'calibration'], ['knotsense', 'cli']))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "", out.stdout


# --- the checker catches what it should (a synthetic package on tmp_path) -----------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


SYNTHETIC_VIOLATIONS = {
    "module level": "from knotsense.cli.main import main\n",
    "inside a function": "def f():\n    from knotsense.cli import common\n",
    "inside a method": "class A:\n    def f(self):\n        import knotsense.calibration.record\n",
    "TYPE_CHECKING": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
    "    from knotsense.calibration.record import load_record\n",
    "try block": "try:\n    import knotsense.cli\nexcept ImportError:\n    pass\n",
    "relative": "from ..cli import main\n",
    "subpackage by name": "from knotsense import calibration\n",
    "importlib string": "import importlib\n\ndef f():\n"
    "    return importlib.import_module('knotsense.cli.main')\n",
    "firmware_sim outside the registry": "def f():\n    from knotsense.firmware_sim import pipe\n",
    "firmware_sim eagerly": "from knotsense.firmware_sim.config import SimConfig\n",
}


@pytest.mark.parametrize("case", sorted(SYNTHETIC_VIOLATIONS))
def test_checker_catches_a_violation(tmp_path: Path, case: str) -> None:
    root = _tree(
        tmp_path,
        {
            "host/__init__.py": "",
            "host/bad.py": SYNTHETIC_VIOLATIONS[case],
            "host/good.py": "from knotsense.errors import KnotsenseError\n"
            "from knotsense.protocol import frames\nfrom . import bad\n",
            "cli/__init__.py": "from knotsense.calibration import record\n",
        },
    )
    found = violations(root)
    assert len(found) == 1 and found[0].startswith("host/bad.py:"), found


def test_checker_lets_allowed_imports_pass(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "__main__.py": "from knotsense.cli.main import main\n",
            "__init__.py": "def __getattr__(n):\n    from knotsense.host import sync\n",
            "calibration/x.py": "from knotsense.host.device import AsyncDevice\n",
            "cli/x.py": "from knotsense.firmware_sim.stand import SimStand\n",
            "hil/x.py": "from knotsense.cli.main import main\n",
            "dsp/x.py": "from knotsense.errors import KnotsenseError\nfrom . import y\n",
        },
    )
    assert violations(root) == []


def test_registry_module_may_import_the_simulator_lazily() -> None:
    """The one exception, on the real tree: transports/sim.py reaches firmware_sim in a function."""
    sim = ROOT / "host" / "transports" / "sim.py"
    lazy = [i for i in imports_of(sim) if target_of(i.module) == "firmware_sim"]
    assert lazy and all(i.lazy for i in lazy)
    assert sim in registry_modules()
