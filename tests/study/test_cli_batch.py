"""``knotsense batch`` as a user runs it: a subprocess, plain progress, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _knotsense(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "knotsense", *args], capture_output=True, text=True, timeout=300
    )


def test_batch_command_end_to_end(recordings: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = _knotsense("batch", *map(str, recordings[:3]), "-o", str(out), "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert "3 session(s) analysed" in done.stdout
    assert done.stderr.count("[") >= 3 and "[3/3]" in done.stderr  # plain progress off a tty
    again = _knotsense("batch", *map(str, recordings[:3]), "-o", str(out), "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["done"] == 0 and summary["skipped"] == 3


def test_batch_reports_a_failing_session_and_exits_1(recordings: list[Path], tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("t,f0\n0,1\n0,2\n")
    done = _knotsense(
        "batch",
        str(recordings[0]),
        str(bad),
        "-o",
        str(tmp_path / "o"),
        "--workers",
        "1",
        "--release-threshold",
        "50",
    )
    assert done.returncode == 1
    assert "1 session(s) analysed" in done.stdout
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("knotsense batch:")]
    assert len(lines) == 1 and str(bad) in lines[0]
    assert "Traceback" not in done.stderr


def test_batch_bad_input_is_one_line(tmp_path: Path) -> None:
    missing = _knotsense("batch", str(tmp_path / "none"), "-o", str(tmp_path / "o"))
    assert missing.returncode == 1 and "no such file or folder" in missing.stderr
    assert missing.stderr.count("\n") == 1
    bad_workers = _knotsense("batch", str(tmp_path), "-o", str(tmp_path / "o"), "--workers", "0")
    assert bad_workers.returncode == 2 and "must be >= 1" in bad_workers.stderr
