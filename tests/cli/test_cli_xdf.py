"""`knotsense export --xdf`, and analyze/plot on XDF files (ours, or LabRecorder-like ones)."""

from __future__ import annotations

import asyncio
import json
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import cli, one_line_error

from knotsense.cli.main import main
from knotsense.firmware_sim.config import SimConfig
from knotsense.firmware_sim.device import SimulatedDevice
from knotsense.host.demo import ideal_bench_calibration
from knotsense.host.record import record_session
from knotsense.host.xdf import XdfWriter, read_xdf, stream_info_xml

URL = "sim://?scenario=back_session&seed=3&rate=80&faults=drop:0.01,link_drop:40+1.5"
THRESHOLD = "110"


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 s of a calibrated unit (one release of 60 s), lossy link, one link drop."""
    path = tmp_path_factory.mktemp("xdf") / "session.ksr"
    record = ideal_bench_calibration(SimulatedDevice(SimConfig.from_url(URL)).unit)
    asyncio.run(record_session(URL, path, duration_s=100.0, calibration_record=record))
    return path


@pytest.fixture(scope="module")
def exported(recording: Path) -> Path:
    out = recording.with_suffix(".xdf")
    code = main(["export", str(recording), "--xdf", str(out), "--release-threshold", THRESHOLD])
    assert code == 0
    return out


def _analyze(capsys: pytest.CaptureFixture[str], path: Path) -> dict:
    code, out, err = cli(capsys, "analyze", str(path), "--json", "--release-threshold", THRESHOLD)
    assert code == 0, err
    return json.loads(out)


def test_analyze_xdf_gives_the_same_events_as_the_recording(
    capsys: pytest.CaptureFixture[str], recording: Path, exported: Path
) -> None:
    from_ksr = _analyze(capsys, recording)
    from_xdf = _analyze(capsys, exported)
    assert from_xdf == from_ksr
    kinds = {e["kind"] for e in from_ksr["events"]}
    assert {"contact", "release"} <= kinds
    assert from_ksr["summary"]["signal_quality"]["gaps"] > 0  # the lossy link shows


def test_exported_markers_read_back_with_pyxdf(exported: Path, capsys) -> None:
    pyxdf = pytest.importorskip("pyxdf")
    streams, _ = pyxdf.load_xdf(str(exported), dejitter_timestamps=False)
    markers = next(s for s in streams if s["info"]["type"] == ["Markers"])
    events = [json.loads(v[0]) for v in markers["time_series"]]
    stamps = markers["time_stamps"]
    assert np.all(np.diff(stamps) >= 0)
    names = {e["event"] for e in events}
    assert {"contact_onset", "contact_episode", "release_reached", "gap"} <= names
    assert {"link_lost", "link_restored"} <= names
    for stamp, e in zip(stamps, events, strict=True):
        if e["event"] == "release_reached":
            assert stamp == pytest.approx(e["start"] + 60.0, abs=1e-3)
    released = _analyze(capsys, exported)["events"]
    episodes = [e for e in events if e["event"] == "release_episode"]
    assert [round(e["start"], 2) for e in episodes] == [
        round(e["start"], 2) for e in released if e["kind"] == "release"
    ]


def test_labrecorder_file_with_other_streams(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, recording: Path, exported: Path
) -> None:
    """Our two streams beside an unrelated one, on an LSL clock (an offset origin)."""
    ours = {s.type: s for s in read_xdf(exported)}
    shift = 12345.678
    lab = tmp_path / "labrecorder.xdf"
    with lab.open("wb") as fh:
        w = XdfWriter(fh)
        w.add_stream(
            0,
            stream_info_xml(
                name="Pain slider",
                type="Rating",
                channel_count=1,
                nominal_srate=10.0,
                channel_format="float32",
                source_id="slider",
            ),
        )
        for sid, kind in ((1, "Force"), (2, "Markers")):
            info = ours[kind].info
            ks = info.find("desc/knotsense")
            assert ks is not None
            ks.find("session_start_stream").text = repr(shift)  # type: ignore[union-attr]
            w.add_stream(sid, '<?xml version="1.0"?>' + ET.tostring(info, encoding="unicode"))
        force = ours["Force"]
        w.samples(0, shift + np.arange(200) / 10.0, np.zeros((200, 1)))
        for a in range(0, force.time_stamps.size, 500):
            w.samples(1, force.time_stamps[a : a + 500] + shift, force.time_series[a : a + 500])
        w.samples(2, ours["Markers"].time_stamps + shift, ours["Markers"].time_series)
        w.close()
    from_lab = _analyze(capsys, lab)
    from_ksr = _analyze(capsys, recording)
    assert from_lab["summary"] == from_ksr["summary"]
    for a, b in zip(from_lab["events"], from_ksr["events"], strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], abs=1e-3), key  # t + 12345.678 - 12345.678
    out = tmp_path / "lab.png"
    code, _, err = cli(capsys, "plot", str(lab), "-o", str(out), "--release-threshold", THRESHOLD)
    assert code == 0, err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"XDF:\x01\x02", "no FileHeader"),
        (b"XDF:\x05\x00", "invalid length-field size 5"),
        (b"<xml>not xdf</xml>", "not an XDF file"),
    ],
)
def test_malformed_xdf_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, needle: str
) -> None:
    path = tmp_path / "bad.xdf"
    path.write_bytes(content)
    for command in ("analyze", "plot"):
        extra = ["-o", str(tmp_path / "x.png")] if command == "plot" else []
        code, out, err = cli(capsys, command, str(path), *extra, "--release-threshold", "50")
        assert code == 1 and out == ""
        assert needle in one_line_error(err, command)


def test_xdf_without_our_stream_says_what_it_holds(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "other.xdf"
    with path.open("wb") as fh:
        w = XdfWriter(fh)
        info = stream_info_xml(
            name="EMG",
            type="EMG",
            channel_count=2,
            nominal_srate=1000.0,
            channel_format="float32",
            source_id="emg",
        )
        w.add_stream(1, info)
        w.samples(1, [0.0, 0.001], np.zeros((2, 2)))
        w.close()
    code, _, err = cli(capsys, "analyze", str(path), "--release-threshold", "50")
    assert code == 1
    assert "no knotsense Force stream" in one_line_error(err, "analyze") and "'EMG'" in err


def test_export_xdf_to_a_missing_folder_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, recording: Path
) -> None:
    code, _, err = cli(capsys, "export", str(recording), "--xdf", str(tmp_path / "no/x.xdf"))
    assert code == 1
    assert "does not exist" in one_line_error(err, "export")


def test_record_lsl_options_need_lsl(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = cli(capsys, "record", URL, "-o", str(tmp_path / "x.ksr"), "--lsl-wait", "1")
    assert code == 1
    assert "need --lsl" in one_line_error(err, "record")
    assert not (tmp_path / "x.ksr").exists()


def test_record_with_lsl_through_the_cli(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("pylsl")
    out = tmp_path / "lsl.ksr"
    source_id = f"knotsense-cli-test-{uuid.uuid4().hex}"
    code, stdout, err = cli(
        capsys,
        "record",
        URL,
        "-o",
        str(out),
        "--duration",
        "5",
        "--json",
        "--lsl",
        "--lsl-source-id",
        source_id,
        "--lsl-linger",
        "0",
    )
    assert code == 0, err
    assert json.loads(stdout)["samples"] >= 5 * 80
    assert out.stat().st_size > 0


def test_record_lsl_without_pylsl_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pylsl", None)  # import pylsl -> ImportError
    code, _, err = cli(capsys, "record", URL, "-o", str(tmp_path / "x.ksr"), "--lsl")
    assert code == 1
    assert "knotsense[lsl]" in one_line_error(err, "record")
    assert not (tmp_path / "x.ksr").exists()
