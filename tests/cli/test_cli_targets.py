"""`knotsense info FILE` shows what a recording holds; a path of the wrong kind is one line.

Issue 13, point 4: ``knotsense info s.ksr`` used to open the recording as a
serial port ("Inappropriate ioctl for device"). Every command that takes a
device URL or a file now looks at what the argument is first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_session_support import make_recording

from knotsense.cli.main import main
from knotsense.host.session import load_session

LINEAR = {
    "channels": [
        {"kind": "linear", "gain": 0.01, "offset": 1.0},
        {"kind": "linear", "gain": 0.02, "offset": -2.0},
    ]
}


def one_line_error(capsys: pytest.CaptureFixture[str], command: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"knotsense {command}: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s at 250 Hz: a lost frame, a link loss, a reboot (BOOT event), a calibration."""
    path = tmp_path_factory.mktemp("rec") / "s.ksr"
    make_recording(
        path,
        duration_s=6.0,
        drop_blocks=frozenset({20}),
        link_lost_blocks=frozenset({60}),
        reboot_block=100,
        calibration=LINEAR,
    )
    return path


# --- info on a recording ------------------------------------------------------------


def test_info_on_a_recording_reports_what_it_holds(rec: Path, capsys) -> None:
    session = load_session(rec)
    assert main(["info", str(rec), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["kind"] == "recording" and d["path"] == str(rec)
    assert d["device"]["serial_number"] == "KS-TEST-1" and d["device"]["firmware"] == "1.2.3"
    assert d["device"]["model"] == "knotsense-proto"
    assert d["calibration"]["applied"] and d["calibration"]["models"] == ["linear", "linear"]
    assert d["duration_s"] == pytest.approx(session.duration_s, abs=1e-6)
    assert d["samples"] == session.n_samples
    assert d["sample_rate_hz"] == pytest.approx(250, rel=2e-3)
    assert [c["name"] for c in d["channels"]] == ["ch0", "ch1"]
    assert d["channels"][1] == {
        "name": "ch1",
        "device_channel": 1,
        "kind": "LOAD_CELL",
        "x_mm": 10.0,
        "y_mm": 0.0,
    }
    assert sorted(g["reason"] for g in d["gaps"]) == sorted(g.reason for g in session.gaps)
    assert {"frames_lost", "link", "reboot"} <= {g["reason"] for g in d["gaps"]}
    assert d["samples_lost"] == session.samples_lost > 0
    assert [e["code"] for e in d["events"]] == ["BOOT"]
    assert [m["kind"] for m in d["marks"]] == ["link_lost", "reconnected"]
    assert d["damage"]["clean_close"] is True


def test_info_text_on_a_recording(rec: Path, capsys) -> None:
    assert main(["info", str(rec)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if not line.startswith(" ")}
    assert "closed cleanly" in lines["recording"]
    assert "KS-TEST-1" in lines["device"] and "1.2.3" in lines["firmware"]
    assert "applied: 2 channel(s), linear x2" in lines["calibration"]
    assert "Hz measured" in lines["rate"] and lines["channels"].startswith("channels     2:")
    assert lines["gaps"].startswith("gaps         3 (")
    assert "BOOT x1" in lines["events"]
    assert "Inappropriate ioctl" not in out


def test_info_on_a_recording_without_calibration_and_torn(tmp_path: Path, capsys) -> None:
    path = tmp_path / "raw.ksr"
    make_recording(path, duration_s=2.0)
    path.write_bytes(path.read_bytes()[:-7])  # the END record torn off
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "not closed cleanly, torn tail of" in out
    assert "none in the recording (raw counts only)" in out


def test_info_on_a_recording_through_a_real_process(rec: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "knotsense", "info", str(rec), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["device"]["serial_number"] == "KS-TEST-1"


def test_info_on_a_csv_export(rec: Path, tmp_path: Path, capsys) -> None:
    csv_path = tmp_path / "s.csv"
    assert main(["export", str(rec), "--csv", str(csv_path)]) == 0
    capsys.readouterr()
    assert main(["info", str(csv_path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    session = load_session(rec)
    assert d["kind"] == "table" and d["rows"] == session.n_samples
    assert d["force_columns"] == ["f0", "f1"] and d["raw_columns"] == ["raw0", "raw1"]
    assert d["sample_rate_hz"] == pytest.approx(250, rel=1e-3)
    assert d["time_jumps"] == sum(g.samples_lost > 0 for g in session.gaps) == 2
    assert main(["info", str(csv_path)]) == 0
    assert "f0, f1" in capsys.readouterr().out


def test_info_on_a_device_url_still_asks_the_device(capsys) -> None:
    assert main(["info", "sim://?scenario=quiet_baseline&seed=4", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d) == {"info", "stream_config", "status", "ping_s"}


# --- a path of the wrong kind -------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["info", "{dir}"], "is a directory"),
        (["info", "{json}"], "is neither a recording nor a CSV table"),
        (["info", "{dir}/missing.ksr"], "does not exist"),
        (["info", "{text_ksr}"], "not a knotsense recording"),
        (["record", "{rec}", "-o", "{dir}/out.ksr"], "is a knotsense recording"),
        (["record", "{dir}", "-o", "{dir}/out.ksr"], "is a directory"),
        (["record", "sim://?seed=1", "-o", "{dir}", "--duration", "1"], "-o expects a file"),
        (["thresholds", "{rec}", "--release", "100"], "is a knotsense recording"),
        (["calibrate", "write", "{rec}", "{json}"], "is a knotsense recording"),
        (["calibrate", "run", "{rec}", "--reference", "sim", "-o", "{dir}/c.json"], "recording"),
        (["calibrate", "run", "sim://", "--reference", "{rec}", "-o", "{dir}/c.json"], "--ref"),
        (["scan", "--no-ble", "--port", "{rec}"], "--port expects a device URL"),
        (["analyze", "sim://?seed=1", "--release-threshold", "100"], "is a device URL"),
        (["analyze", "{dir}", "--release-threshold", "100"], "is a directory"),
        (["analyze", "/dev/null", "--release-threshold", "100"], "is a device or special file"),
        (["analyze", "{json}", "--release-threshold", "100"], "expected a recording or a table"),
        (["plot", "sim://", "-o", "{dir}/p.png"], "is a device URL"),
        (["export", "sim://?seed=1", "--csv", "{dir}/o.csv"], "is a device URL"),
        (["export", "{dir}", "--csv", "{dir}/o.csv"], "is a directory"),
        (["export", "{csv}", "--csv", "{dir}/o.csv"], "is a CSV table"),
        (["calibrate", "fit", "sim://", "-o", "{dir}/c.json"], "expected a bench table"),
        (["calibrate", "report", "{dir}", "-o", "{dir}/r.png"], "expected a calibration record"),
        (["calibrate", "apply", "{json}", "sim://", "-o", "{dir}/o.csv"], "table of raw counts"),
        (["demo", "-o", "{rec}"], "-o expects a folder"),
    ],
)
def test_a_path_of_the_wrong_kind_is_one_line(
    rec: Path, tmp_path: Path, capsys, argv: list[str], needle: str
) -> None:
    (tmp_path / "x.json").write_text("{}")
    (tmp_path / "t.csv").write_text("t,f0\n0,1\n0.1,2\n")
    (tmp_path / "text.ksr").write_text("t,f0\n0,1\n")
    names = {
        "{rec}": str(rec),
        "{dir}": str(tmp_path),
        "{json}": str(tmp_path / "x.json"),
        "{csv}": str(tmp_path / "t.csv"),
        "{text_ksr}": str(tmp_path / "text.ksr"),
    }
    for key, value in names.items():
        argv = [a.replace(key, value) for a in argv]
    before = sorted(os.listdir(tmp_path))
    assert main(argv) == 1
    line = one_line_error(capsys, argv[0])
    assert needle in line and "Inappropriate ioctl" not in line
    if needle not in ("expected a recording or a table", "not a knotsense recording"):
        assert "expect" in line  # says what it expected
    assert sorted(os.listdir(tmp_path)) == before  # nothing written
