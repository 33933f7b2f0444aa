"""docs/api.md is generated from the docstrings (tools/api_docs.py, pdoc) and kept current.

Fails when a :class:/:func:/... reference in the front door's docstrings does
not resolve, when pdoc warns while rendering the HTML pages, or when the
committed page differs from what the docstrings give (regenerate with
``python tools/api_docs.py``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_api_page_builds_clean_and_is_current(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "api_docs.py"), "--check", "--html", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert not done.stderr, done.stderr
    pages = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.html")}
    assert {"knotsense.html", "knotsense/aio.html", "knotsense/host/device.html"} <= pages
    assert "knotsense.connect" in (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
