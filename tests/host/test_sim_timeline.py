"""A paced simulator's session runs on the simulated device's clock (issue 13, point 2).

With ``speed=X`` the timeline is the device's time, exactly as unpaced: the
duration stop, the sample count and the rate agree with the device's own
sample clock (asserted on device-time quantities, never on wall-clock speed).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from knotsense.host.record import record_session
from knotsense.host.session.load import load_session

RATE = 80
DURATION = 8.0
BLOCK = 8  # samples per block at 80 Hz (100 ms)


@pytest.mark.parametrize("url", ["sim://?seed=2&speed=20", "sim+pty://?seed=2&speed=20"])
def test_paced_simulator_records_device_time(tmp_path: Path, url: str) -> None:
    path = tmp_path / "s.ksr"
    result = asyncio.run(record_session(url, path, duration_s=DURATION))
    assert result.stopped_by == "duration"
    # Live: the stop came after DURATION s of the device's samples, within one block.
    assert abs(result.samples - DURATION * RATE) <= 2 * BLOCK
    assert abs(result.duration_s - DURATION) <= 2 * BLOCK / RATE
    session = load_session(path)
    device_s = (session.device_time_us[-1] - session.device_time_us[0]) / 1e6
    # The file's timeline is the device's: same span, the device's rate, no drift.
    assert session.duration_s == pytest.approx(device_s, abs=BLOCK / RATE)
    assert session.summary()["sample_rate_hz"] == pytest.approx(RATE, rel=0.01)
    assert session.gaps == ()
