"""The XDF container: what we write pyxdf reads, what LabRecorder writes we read, bad files fail."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from knotsense.errors import SessionFileError
from knotsense.host.lab import ForceLayout
from knotsense.host.tables import load_force_table
from knotsense.host.xdf import MAGIC, XdfWriter, read_xdf, stream_info_xml
from knotsense.host.xdf_session import force_info_xml, marker_info_xml

LAYOUT = ForceLayout(
    channel_ids=(0, 1, 2),
    calibrated=True,
    rate_hz=100.0,
    positions_mm=((0.0, 18.0), (-18.0, 0.0), (18.0, 0.0)),
    serial="KS-TEST",
    model="KnotSense LC4",
    session_start_unix=1_700_000_000.0,
    session_start_stream=5000.0,
    metadata={"device_url": "sim://", "note": "unit test"},
)


def _force(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = LAYOUT.session_start_stream + 2.0 + np.arange(n) / 100.0
    f = rng.uniform(0, 80, size=(n, 3))
    return t, np.column_stack([f, f.sum(axis=1)])


def _eeg_info() -> str:
    desc = ET.Element("desc")
    chans = ET.SubElement(desc, "channels")
    for name in ("Fz", "Cz", "Pz"):
        ch = ET.SubElement(chans, "channel")
        ET.SubElement(ch, "label").text = name
        ET.SubElement(ch, "unit").text = "microvolts"
    return stream_info_xml(
        name="EEG amp",
        type="EEG",
        channel_count=3,
        nominal_srate=500.0,
        channel_format="float32",
        source_id="amp-1",
        desc=desc,
    )


def _lab_file(path: Path, n: int = 700) -> tuple[np.ndarray, np.ndarray]:
    """A LabRecorder-like file: an unrelated EEG stream first, ours interleaved with it."""
    t, x = _force(n)
    with path.open("wb") as fh:
        w = XdfWriter(fh, boundary_every=3)
        w.add_stream(7, _eeg_info())
        w.add_stream(3, force_info_xml(LAYOUT))
        w.add_stream(4, marker_info_xml(LAYOUT))
        for k in range(0, n, 100):
            eeg_t = 5000.0 + k / 100.0 + np.arange(500) / 500.0
            w.samples(7, eeg_t, np.ones((500, 3), dtype=np.float32) * k)
            w.samples(3, t[k : k + 100], x[k : k + 100])
            w.clock_offset(3, float(t[k]), -1e-5)
        w.samples(4, [5003.5], [['{"event":"contact_onset","start":3.5}']])
        w.close()
    return t, x


def test_pyxdf_reads_what_we_write(tmp_path: Path) -> None:
    pyxdf = pytest.importorskip("pyxdf")
    path = tmp_path / "lab.xdf"
    t, x = _lab_file(path)
    streams, header = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
    assert header["info"]["version"] == ["1.0"]
    by_type = {s["info"]["type"][0]: s for s in streams}
    assert set(by_type) == {"EEG", "Force", "Markers"}
    force = by_type["Force"]
    # pyxdf applies the ClockOffset (-10 us); the values are bit-exact.
    np.testing.assert_allclose(force["time_stamps"], t - 1e-5, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(force["time_series"], x)
    labels = [c["label"][0] for c in force["info"]["desc"][0]["channels"][0]["channel"]]
    assert labels == ["f0", "f1", "f2", "total"]
    assert force["footer"]["info"]["sample_count"] == [str(len(t))]
    assert by_type["Markers"]["time_series"] == [['{"event":"contact_onset","start":3.5}']]
    assert by_type["EEG"]["time_series"].shape == (3500, 3)


def test_our_reader_finds_our_stream_among_others(tmp_path: Path) -> None:
    path = tmp_path / "lab.xdf"
    t, x = _lab_file(path)
    streams = read_xdf(path)
    assert [s.type for s in streams] == ["EEG", "Force", "Markers"]
    assert streams[1].clock_offsets[0] == (t[0], -1e-5)
    table = load_force_table(path)
    np.testing.assert_array_equal(table.t, t - LAYOUT.session_start_stream)
    np.testing.assert_array_equal(table.forces, x[:, :3])  # total left out
    assert table.names == ("f0", "f1", "f2") and table.raw is None
    assert table.meta == LAYOUT.metadata


def test_counts_stream_comes_back_as_raw(tmp_path: Path) -> None:
    layout = ForceLayout(channel_ids=(0, 1), calibrated=False, rate_hz=80.0)
    path = tmp_path / "counts.dat"  # the magic, not the suffix, says XDF
    with path.open("wb") as fh:
        w = XdfWriter(fh)
        w.add_stream(1, force_info_xml(layout))
        w.samples(1, [0.0, 0.0125], [[10.0, 20.0, 30.0], [11.0, 21.0, 32.0]])
        w.close()
    table = load_force_table(path)
    assert table.forces.shape == (2, 0) and table.raw_names == ("raw0", "raw1")
    np.testing.assert_array_equal(table.raw, [[10, 20], [11, 21]])


def test_samples_without_timestamps_continue_at_the_nominal_rate(tmp_path: Path) -> None:
    path = tmp_path / "implicit.xdf"
    info = force_info_xml(LAYOUT).encode()
    sample = struct.pack("<4d", 1.0, 2.0, 3.0, 6.0)
    body = struct.pack("<I", 1) + b"\x01\x03"
    body += b"\x08" + struct.pack("<d", 10.0) + sample + (b"\x00" + sample) * 2
    with path.open("wb") as fh:
        w = XdfWriter(fh)
        w.add_stream(1, info.decode())
        fh.write(b"\x04" + struct.pack("<I", len(body) + 2) + struct.pack("<H", 3) + body)
    (stream,) = read_xdf(path)
    np.testing.assert_allclose(stream.time_stamps, [10.0, 10.01, 10.02])
    assert stream.footer is None  # no footer: a recorder that was killed


def _valid(tmp_path: Path) -> bytes:
    path = tmp_path / "ok.xdf"
    _lab_file(path, n=200)
    return path.read_bytes()


@pytest.mark.parametrize(
    ("mangle", "needle"),
    [
        (lambda b: b"", "not an XDF file"),
        (lambda b: b"PK\x03\x04" + b[4:], "not an XDF file"),
        (lambda b: b[:4] + b"\x03" + b[5:], "invalid length-field size 3"),
        (lambda b: MAGIC, "no FileHeader"),
        (lambda b: b.replace(b"<type>Force</type>", b"<type>Force</typo>", 1), "malformed XML"),
        (lambda b: b.replace(b"<type>Force</type>", b"<type>Other</type>", 1), "no knotsense"),
        (lambda b: b.replace(b"double64", b"complex9", 1), "unknown channel_format"),
        (lambda b: b.replace(b"\x07\x00\x00\x00<?xml", b"\x09\x00\x00\x00<?xml", 1), "stream 7"),
    ],
)
def test_malformed_xdf_is_a_one_line_error(tmp_path: Path, mangle, needle: str) -> None:
    path = tmp_path / "bad.xdf"
    path.write_bytes(mangle(_valid(tmp_path)))
    with pytest.raises(SessionFileError) as info:
        load_force_table(path)
    message = str(info.value)
    assert needle in message and "\n" not in message and str(path) in message


def test_a_torn_tail_keeps_what_came_before(tmp_path: Path) -> None:
    data = _valid(tmp_path)
    path = tmp_path / "torn.xdf"
    cut = data.rfind(b"\x03\x00\x03\x00\x00\x00")  # inside the last Force Samples chunk
    assert cut > 0
    path.write_bytes(data[: cut + 40])
    table = load_force_table(path)
    assert table.t.size == 100  # the first chunk; the second was cut
