"""Ctrl-C (SIGINT) and SIGTERM stop `knotsense record` cleanly with a summary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from knotsense.host.session import load_session


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_interrupt_stops_cleanly_and_keeps_the_session(tmp_path: Path, sig: int) -> None:
    out = tmp_path / "s.ksr"
    url = "sim://?scenario=quiet_baseline&seed=5&speed=5"  # paced: it runs until stopped
    proc = subprocess.Popen(
        [sys.executable, "-m", "knotsense", "record", url, "-o", str(out), "--plain"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        # Wait for the second status line: the stream is running and recorded.
        lines = [proc.stdout.readline() for _ in range(2)]
        assert all(" s  " in line for line in lines), lines
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert f"recorded {out}" in stdout and "(interrupted)" in stdout
    session = load_session(out)
    assert session.n_samples > 0
    assert session.damage.clean_close
