"""mypy on the typed core: the wire format and the device client check clean.

Commands are generic in their result (``CommandBody[R]``), so the device
client needs no ``# type: ignore`` to use what the device answers; this keeps
it so. The repository root is the ``knotsense`` package, so mypy sees it
through a ``knotsense`` link in a temporary folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("-p", "knotsense.protocol", "-m", "knotsense.host.device")


def test_protocol_and_device_client_type_check(tmp_path: Path) -> None:
    (tmp_path / "knotsense").symlink_to(ROOT, target_is_directory=True)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--python-version",
            "3.11",
            "--ignore-missing-imports",
            "--follow-imports",
            "silent",
            "--cache-dir",
            os.devnull,
            "--no-error-summary",
            *CHECKED,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "type: ignore" not in (ROOT / "host" / "device.py").read_text(encoding="utf-8")
