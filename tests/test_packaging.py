"""The built wheel holds every subpackage (nested ones too) and the package data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("protocol", "dsp", "firmware_sim", "host", "calibration", "hil")


def _package_dirs() -> list[Path]:
    """Every folder of the source tree that is a Python package."""
    dirs = [ROOT]
    for top in SUBPACKAGES:
        dirs += [p.parent for p in (ROOT / top).rglob("__init__.py")]
    return sorted(set(dirs))


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (wheel,) = out.glob("knotsense-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_every_package_folder_is_in_the_wheel(wheel_names: set[str]) -> None:
    missing = []
    for folder in _package_dirs():
        rel = folder.relative_to(ROOT)
        name = "/".join(("knotsense", *rel.parts, "__init__.py"))
        if name not in wheel_names:
            missing.append(name)
    assert not missing, f"not in the wheel (add them to [tool.setuptools] packages): {missing}"


def test_every_module_is_in_the_wheel(wheel_names: set[str]) -> None:
    missing = []
    for folder in _package_dirs():
        for module in folder.glob("*.py"):
            rel = module.relative_to(ROOT)
            name = "/".join(("knotsense", *rel.parts))
            if name not in wheel_names:
                missing.append(name)
    assert not missing, missing


def test_package_data_is_in_the_wheel(wheel_names: set[str]) -> None:
    assert "knotsense/py.typed" in wheel_names
    for data in [*ROOT.glob("protocol/vectors.json"), *ROOT.glob("firmware_sim/scenarios/*.toml")]:
        name = "knotsense/" + data.relative_to(ROOT).as_posix()
        assert name in wheel_names, name


def test_tests_benchmarks_and_tools_stay_out_of_the_wheel(wheel_names: set[str]) -> None:
    outside = ("knotsense/tests/", "knotsense/benchmarks/", "knotsense/tools/")
    assert not [n for n in wheel_names if n.startswith(outside)]


def test_runtime_dependencies_are_what_the_library_imports() -> None:
    """pyserial-asyncio is a test tool (dev extra), not something the library needs."""
    import ast
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert not any(d.startswith("pyserial-asyncio") for d in project["dependencies"])
    assert any(d.startswith("pyserial-asyncio") for d in project["optional-dependencies"]["dev"])
    outside = {"tests", "benchmarks", "tools", ".venv", "build"}
    library = [p for p in ROOT.rglob("*.py") if p.relative_to(ROOT).parts[0] not in outside]
    for path in library:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n.split(".")[0] == "serial_asyncio" for n in names), path
