"""The device commands of the CLI: info, scan, record, demo, and bad input.

Bad input of every kind ends in one line on stderr and a non-zero exit, never a
traceback; a recording made with ``record`` comes back identical through
``export``, ``replay://`` with ``info`` and through :class:`AsyncDevice`.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import cli, one_line_error

from knotsense.cli.main import main
from knotsense.host.device import AsyncDevice, Samples
from knotsense.host.recording import MarkRecord, SessionReader
from knotsense.host.session import load_session

SIM = "sim://?scenario=quiet_baseline&seed=4"


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["info", "/dev/ttyNOPE"], "no serial port '/dev/ttyNOPE'"),
        (["info", "foo://device"], "unknown device URL scheme 'foo'"),
        (["info", "sim://?scenario=no_such_scenario"], "no_such_scenario"),
        (["info", "sim://?faults=link_drop:x"], "fault"),
        (["info", "serial:///dev/ttyACM0?baud=fast"], "baud"),
        (["info", "loop://", "--timeout", "0.05"], "no answer to GetInfo"),
        (["record", "/dev/ttyNOPE", "-o", "{tmp}/x.ksr", "--duration", "1"], "no serial port"),
        (["record", "nope://", "-o", "{tmp}/x.ksr"], "unknown device URL scheme"),
        (["info", "replay://{tmp}/missing.ksr?speed=max"], "missing.ksr"),
    ],
)
def test_bad_device_input_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], needle: str
) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, _out, err = cli(capsys, *argv)
    assert code == 1
    assert needle in one_line_error(err, argv[0])
    assert not (tmp_path / "x.ksr").exists()  # nothing left behind


def test_a_pty_with_nothing_behind_it_times_out(capsys: pytest.CaptureFixture[str]) -> None:
    master, slave = os.openpty()
    try:
        code, _, err = cli(capsys, "info", os.ttyname(slave), "--timeout", "0.05")
    finally:
        os.close(master)
        os.close(slave)
    assert code == 1
    assert "no answer to GetInfo after 3 attempt(s)" in one_line_error(err, "info")


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 30 s session recorded through the CLI, as a user would."""
    path = tmp_path_factory.mktemp("rec") / "session.ksr"
    code = main(
        [
            "record",
            SIM + "&faults=drop:0.03",
            "-o",
            str(path),
            "--duration",
            "30",
            "--json",
        ]
    )
    assert code == 0
    return path


def test_record_writes_a_session_and_reports_it(
    recording: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The fixture's own output is gone; record again into a new file to see it.
    out_path = tmp_path / "again.ksr"
    code, out, err = cli(
        capsys, "record", SIM, "-o", str(out_path), "--duration", "3", "--rate", "250", "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["file"] == str(out_path) and report["stopped_by"] == "duration"
    assert report["duration_s"] >= 2.95
    assert report["samples"] >= 3 * 250
    assert report["stats"]["gaps"] == 0
    session = load_session(out_path)
    assert session.n_channels == 4 and session.n_samples >= 750


def test_record_refuses_to_overwrite(recording: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = recording.read_bytes()
    code, _, err = cli(capsys, "record", SIM, "-o", str(recording), "--duration", "1")
    assert code == 1
    assert "refusing to overwrite" in one_line_error(err, "record")
    assert recording.read_bytes() == before


def test_record_overwrite_and_plain_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "s.ksr"
    path.write_bytes(b"old")
    code, out, err = cli(
        capsys, "record", SIM, "-o", str(path), "--duration", "6", "--overwrite", "--plain"
    )
    assert code == 0, err
    assert "rate" in out and "gaps 0" in out and f"recorded {path}" in out
    assert "releases  not detected" in out  # no calibration on this unit
    assert load_session(path).n_samples > 0


def test_recording_comes_back_the_same_everywhere(
    recording: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    session = load_session(recording)
    assert 29.5 <= session.duration_s <= 33.0  # --duration 30, plus at most the backlog
    assert session.gaps and all(g.reason == "frames_lost" for g in session.gaps)
    # The live gaps were marked in the file too (this used to crash record).
    marks = [r for r in SessionReader(recording) if isinstance(r, MarkRecord)]
    gap_marks = [m.info for m in marks if m.kind == "gap"]
    assert gap_marks and all(m["reason"] == "frames_lost" for m in gap_marks)
    assert {m["samples_lost"] for m in gap_marks} <= {g.samples_lost for g in session.gaps}

    # export -> CSV: the same raw counts
    out_csv = tmp_path / "s.csv"
    code, out, err = cli(capsys, "export", str(recording), "--csv", str(out_csv), "--json")
    assert code == 0, err
    with out_csv.open() as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], np.array(rows[1:], dtype=float)
    raw_cols = [i for i, h in enumerate(header) if h.startswith("raw")]
    assert len(raw_cols) == 4
    np.testing.assert_array_equal(body[:, raw_cols].astype(np.int64), session.raw)

    # replay:// through info: identity and stream as recorded
    code, out, err = cli(capsys, "info", f"replay://{recording}?speed=max", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["info"]["serial_number"] == "KS-000004"
    assert info["stream_config"]["rate_hz"] == 80 and info["status"] is None

    # replay:// through AsyncDevice: the same samples, the same gaps
    async def replay() -> tuple[np.ndarray, int]:
        dev = await AsyncDevice.connect(f"replay://{recording}?speed=max")
        blocks = []
        gaps = 0
        async with dev:
            async for item in dev.stream(timeout=5.0):
                if isinstance(item, Samples):
                    blocks.append(item.raw)
                else:
                    gaps += type(item).__name__ == "Gap"
        return np.concatenate(blocks), gaps

    raw, gaps = asyncio.run(replay())
    np.testing.assert_array_equal(raw, session.raw)
    assert gaps == len(session.gaps)


@pytest.mark.parametrize("damage", ["truncated", "corrupted", "garbage", "empty"])
def test_damaged_session_files(
    recording: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, damage: str
) -> None:
    data = recording.read_bytes()
    bad = tmp_path / f"{damage}.ksr"
    if damage == "truncated":
        bad.write_bytes(data[:40])  # cut inside the header
    elif damage == "corrupted":
        mid = len(data) // 2
        bad.write_bytes(
            data[:mid] + bytes(b ^ 0x5A for b in data[mid : mid + 64]) + data[mid + 64 :]
        )
    elif damage == "garbage":
        bad.write_bytes(b"this is not a knotsense recording\n" * 20)
    else:
        bad.write_bytes(b"")
    for argv in (
        ["export", str(bad), "--csv", str(tmp_path / "o.csv")],
        ["info", f"replay://{bad}?speed=max"],
    ):
        code, _, err = cli(capsys, *argv)
        assert code == 1, (argv, err)
        one_line_error(err, argv[0])


def test_a_torn_tail_is_not_fatal(
    recording: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = recording.read_bytes()
    torn = tmp_path / "torn.ksr"
    torn.write_bytes(data[: len(data) - 37])
    code, _, err = cli(capsys, "export", str(torn), "--csv", str(tmp_path / "t.csv"))
    assert code == 0, err
    assert "torn tail" in err
    code, _out, err = cli(capsys, "info", f"replay://{torn}?speed=max", "--json")
    assert code == 0, err


def test_scan_probes_given_ports(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(
        capsys,
        "scan",
        "--no-ble",
        "--port",
        "sim+pty://?seed=9",
        "--port",
        "/dev/ttyNOPE",
        "--json",
    )
    assert code == 0, err
    found = json.loads(out)
    urls = [d["url"] for d in found["serial"]]
    assert "sim+pty://?seed=9" in urls and "/dev/ttyNOPE" not in urls
    entry = found["serial"][urls.index("sim+pty://?seed=9")]
    assert entry["serial_number"] == "KS-000009"


def test_info_text_over_the_ble_path(capsys: pytest.CaptureFixture[str]) -> None:
    from knotsense.firmware_sim.ble_backend import clear_registry

    try:
        code, out, err = cli(capsys, "info", "sim+ble://?seed=12&mtu=247")
    finally:
        clear_registry()
    assert code == 0, err
    assert "serial KS-000012" in out and "ping" in out and "battery" in out


SHORT_DEMO = """
name = "short_demo"
description = "A 20-second session for the CLI test: lie down, hold, lift off."
sensor = "load_cell"
channels = 4
rate_hz = 80
max_force_n = 280
release_threshold_n = 60
breathing_hz = 0.25

[[segment]]
kind = "idle"
duration = 2

[[segment]]
kind = "lie_down"
duration = 3
force = 100

[[segment]]
kind = "hold"
duration = 12
force = 110

[[segment]]
kind = "lift_off"
duration = 1.5

[[segment]]
kind = "idle"
duration = 1.5
"""


def test_demo_writes_its_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    scenario = tmp_path / "short.toml"
    scenario.write_text(SHORT_DEMO)
    out_dir = tmp_path / "demo"
    code, out, err = cli(
        capsys, "demo", "-o", str(out_dir), "--scenario", str(scenario), "--rate", "80", "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    for key in ("folder", "recording", "csv", "summary_file", "plot", "truth"):
        path = Path(report[key])
        assert path == out_dir or (path.parent == out_dir and path.stat().st_size > 0), key
    summary = json.loads(Path(report["summary_file"]).read_text())
    # The recording stops at the scenario's 20 s (plus at most the reader's backlog).
    assert 20.0 <= summary["summary"]["duration_s"] <= 23.0
    assert report["summary"]["contacts"]["count"] == 1
    session = load_session(report["recording"])
    assert session.calibrated  # the demo provisions a calibration first


def test_bad_input_through_a_real_process(tmp_path: Path) -> None:
    """The installed entry point: one line, exit 1, no traceback (also for missing files)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for argv in (
        ["info", "/dev/ttyNOPE"],
        ["info", "foo://x"],
        ["info", "loop://", "--timeout", "0.05"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "knotsense.cli.main", *argv],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=tmp_path,
        )
        assert proc.returncode == 1, proc.stderr
        one_line_error(proc.stderr, "info")
        assert proc.stdout == ""
