"""The front door: knotsense.connect, knotsense.aio.connect, knotsense.load, knotsense.analyze."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "host"))  # test_session_support, as tests/cli
from test_session_support import make_recording

import knotsense
import knotsense.aio
from knotsense.errors import ConfigurationError, SessionFileError, UnknownSchemeError

URL = "sim://?scenario=quiet_baseline&seed=21"
LINEAR = {"kind": "calibration", "channels": [{"kind": "linear", "gain": 0.01}] * 2}

HEAVY = [
    "numpy",
    "scipy",
    "bleak",
    "serial",
    "matplotlib",
    "rich",
    "knotsense.host",
    "knotsense.dsp",
    "knotsense.protocol",
    "knotsense.firmware_sim",
    "knotsense.calibration",
    "knotsense.cli",
]


def test_importing_the_front_door_imports_nothing_heavy() -> None:
    code = (
        "import sys, knotsense, knotsense.aio\n"
        "assert callable(knotsense.connect) and callable(knotsense.aio.connect)\n"
        "assert callable(knotsense.load) and callable(knotsense.analyze)\n"
        f"heavy = {HEAVY!r}\n"
        "print(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') "
        "for h in heavy)))\n"
        "knotsense.Session\n"
        "print('knotsense.host.session' in sys.modules, 'numpy' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.splitlines() == ["[]", "True True"], done.stdout + done.stderr


def test_lazy_names_are_the_library_classes() -> None:
    from knotsense.dsp.results import Analysis
    from knotsense.host.device import AsyncDevice
    from knotsense.host.session import Session
    from knotsense.host.sync import Device
    from knotsense.host.tables import ForceTable

    assert (knotsense.Device, knotsense.AsyncDevice, knotsense.Session) == (
        Device,
        AsyncDevice,
        Session,
    )
    assert knotsense.ForceTable is ForceTable and knotsense.Analysis is Analysis
    assert set(knotsense.__all__) <= set(dir(knotsense))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = knotsense.nope


def test_connect_gives_the_blocking_device() -> None:
    with knotsense.connect(URL, command_timeout=2.0) as dev:
        assert isinstance(dev, knotsense.Device)
        assert dev.get_info().serial_number == "KS-000021"
    with pytest.raises(UnknownSchemeError):
        knotsense.connect("nope://x")


def test_aio_connect_is_awaitable_and_an_async_context_manager() -> None:
    async def go() -> tuple[str, str, bool]:
        async with knotsense.aio.connect(URL, command_timeout=2.0) as dev:
            entered = (await dev.get_info()).serial_number
        closed = dev._closed
        dev = await knotsense.aio.connect(URL)
        try:
            awaited = (await dev.get_info()).serial_number
        finally:
            await dev.close()
        return entered, awaited, closed

    entered, awaited, closed = asyncio.run(go())
    assert entered == awaited == "KS-000021" and closed


def test_load_and_analyze_a_recording_match_the_cli(tmp_path: Path) -> None:
    from knotsense.cli.main import main

    path = tmp_path / "s.ksr"
    make_recording(path, duration_s=4.0, calibration=LINEAR)
    session = knotsense.load(path)
    assert isinstance(session, knotsense.Session) and session.calibrated
    result = knotsense.analyze(session, release_threshold=5.0, hold=1.0)
    assert result.to_dict()["summary"]["releases"]["count"] == 1
    assert knotsense.analyze(path, release_threshold=5.0, hold=1.0).to_dict() == result.to_dict()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["analyze", str(path), "--release-threshold", "5", "--hold", "1", "--json"])
    assert code == 0
    assert json.loads(out.getvalue()) == json.loads(json.dumps(result.to_dict()))


def test_load_a_csv_and_analyze_raw_counts_with_a_calibration(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("t,raw0\n" + "".join(f"{i / 10},{1000 + i}\n" for i in range(50)))
    table = knotsense.load(path)
    assert isinstance(table, knotsense.ForceTable) and table.forces.shape == (50, 0)
    with pytest.raises(SessionFileError, match="only raw counts"):
        knotsense.analyze(table, release_threshold=5.0)
    one = {"kind": "calibration", "channels": [{"kind": "linear", "gain": 0.01}]}
    result = knotsense.analyze(table, release_threshold=5.0, hold=1.0, calibration=one)
    assert result.summary.to_dict()["releases"]["count"] == 1


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SessionFileError, match="no such file"):
        knotsense.load(tmp_path / "missing.ksr")
    path = tmp_path / "s.ksr"
    make_recording(path, duration_s=1.0, calibration=LINEAR)
    with pytest.raises(ConfigurationError, match="unknown analysis option"):
        knotsense.analyze(path, release_threshold=5.0, hodl=1.0)
    with pytest.raises(ConfigurationError, match="release_threshold is required"):
        knotsense.analyze(path)
    with pytest.raises(ConfigurationError, match="not int"):
        knotsense.analyze(3)  # type: ignore[arg-type]
