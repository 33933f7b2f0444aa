"""The HIL suite (knotsense.hil) against the simulator through each code path, as a bench runs it.

Each case runs ``pytest --pyargs knotsense.hil --device URL`` -- exactly what a bench PC runs --
in a subprocess from an empty directory (so nothing of the checkout is used but the installed
package, whose pytest11 entry point provides ``--device``) and checks it passed and wrote its
bench report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PATHS = {
    "sim": "sim://?scenario=calibration_bench&seed=1",
    # Unpaced, the pty floods the host faster than it decodes; 20x real time is plenty.
    "sim+pty": "sim+pty://?scenario=calibration_bench&seed=1&speed=20",
    # BLE at the MTU current hosts exchange (247) and at the BLE default 23 (v1.1 fragments),
    # through the bleak backend and through a real BLE stack (Bumble's virtual link).
    "sim+ble": "sim+ble://?scenario=calibration_bench&seed=1",
    "sim+ble-mtu23": "sim+ble://?scenario=calibration_bench&seed=1&mtu=23",
    "sim+bumble": "sim+bumble://?scenario=calibration_bench&seed=1",
    "sim+bumble-mtu23": "sim+bumble://?scenario=calibration_bench&seed=1&mtu=23",
}
TIMEOUT_S = 240


def run_suite(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rxs", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", list(PATHS))
def test_hil_suite_passes_on_simulator_path(path: str, tmp_path: Path) -> None:
    report = tmp_path / "bench.md"
    junit = tmp_path / "junit.xml"
    result = run_suite(
        tmp_path,
        "--pyargs",
        "knotsense.hil",
        "--device",
        PATHS[path],
        "--hil-report",
        str(report),
        f"--junitxml={junit}",
    )
    tail = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, tail
    assert " passed" in result.stdout and " failed" not in result.stdout, tail
    text = report.read_text(encoding="utf-8")
    assert "verdict: **PASS**" in text, text
    assert str(junit) in text and junit.is_file()
    for figure in ("rate on device timestamps", "PING idle", "loss", "bit errors"):
        assert figure in text, f"{figure!r} missing from the report"


def test_hil_suite_fails_when_nothing_runs(tmp_path: Path) -> None:
    """Everything skipped (hardware-only tests on a simulator) is a failure, not a pass."""
    result = run_suite(
        tmp_path,
        "--pyargs",
        "knotsense.hil",
        "-m",
        "destructive and not destructive or hardware",
        env={"KNOTSENSE_DEVICE": PATHS["sim"]},
    )
    assert result.returncode != 0, result.stdout[-2000:]
    assert "no test ran" in result.stdout, result.stdout[-2000:]


def test_hil_suite_skips_with_reasons_on_a_serial_board_url(tmp_path: Path) -> None:
    """Against a real-board URL the simulator-only tests skip and say why (the board is absent,
    so the connecting tests error: only the skips are checked)."""
    result = run_suite(
        tmp_path,
        "--pyargs",
        "knotsense.hil",
        "--device",
        str(tmp_path / "ttyACM-absent"),
        "-m",
        "simulator_only",
    )
    assert result.returncode != 0  # nothing ran
    assert "fault injection needs a simulator target" in result.stdout, result.stdout[-2000:]
