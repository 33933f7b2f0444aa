"""The raw capture: round trip, torn tails, corruption, salvage, bad files, durability."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import pytest
from test_session_support import device_info

from knotsense.errors import ConfigurationError, SessionFileError
from knotsense.host.recording import (
    FILE_HEADER_SIZE,
    MAGIC,
    EndRecord,
    MarkRecord,
    MetaRecord,
    Recorder,
    RxRecord,
    SessionReader,
    TxRecord,
    UnknownRecord,
    is_recording,
    pack_record,
)
from knotsense.protocol import StreamConfig

META = {"framing": "stream", "device_url": "sim://?seed=1"}


def _write_sample(path: Path) -> list[int]:
    """A small recording with every kind; returns the record offsets."""
    with Recorder(path, {**META, "device_info": device_info()}, host_time=100.0) as rec:
        rec.rx(b"\x02\x01\x00", 100.1)
        rec.tx(b"\x05cmd\x00", 100.2)
        rec.mark("user", {"text": "knot under left shoulder"}, 100.3)
        rec.meta({"stream_config": StreamConfig(250, 3, 3, 4_000_000, 10, True, 247)}, 100.4)
        rec.rx(b"\x03\x04\x05\x00", 100.5)
    return [r.offset for r in SessionReader(path)]


def test_round_trip_of_every_record_kind(tmp_path: Path) -> None:
    path = tmp_path / "s.ksr"
    _write_sample(path)
    reader = SessionReader(path)
    records = list(reader)
    kinds = [type(r) for r in records]
    assert kinds == [MetaRecord, RxRecord, TxRecord, MarkRecord, MetaRecord, RxRecord, EndRecord]
    assert records[0].host_time == 100.0
    assert records[1] == RxRecord(records[1].offset, 100.1, b"\x02\x01\x00")
    assert records[2].data == b"\x05cmd\x00"
    assert records[3].kind == "user" and records[3].info == {"text": "knot under left shoulder"}
    assert records[4].data["stream_config"]["rate_hz"] == 250
    assert records[6].summary["records"] == 7
    assert records[6].summary["rx_bytes"] == 7
    with pytest.raises(AttributeError):
        records[1].data = b""  # type: ignore[misc]
    meta = reader.metadata
    assert meta["framing"] == "stream" and meta["device_url"] == "sim://?seed=1"
    assert meta["stream_config"]["channel_mask"] == 3  # the update is merged
    assert meta["device_info"]["serial_number"] == "KS-TEST-1"
    for key in ("start_time", "start_unix", "host", "os", "python", "knotsense"):
        assert key in meta
    assert reader.damage.ok and reader.damage.clean_close
    assert reader.start_time == 100.0 and reader.end_time == 100.5
    assert is_recording(path)
    assert path.read_bytes().startswith(MAGIC)


def test_refuses_to_overwrite_unless_told(tmp_path: Path) -> None:
    path = tmp_path / "s.ksr"
    _write_sample(path)
    before = path.read_bytes()
    with pytest.raises(SessionFileError, match="already exists"):
        Recorder(path, META)
    assert path.read_bytes() == before
    with Recorder(path, META, overwrite=True, host_time=5.0) as rec:
        rec.rx(b"x", 5.0)
    assert len(list(SessionReader(path))) == 3


def test_metadata_needs_framing(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="framing"):
        Recorder(tmp_path / "s.ksr", {"device_url": "sim://"})
    assert not (tmp_path / "s.ksr").exists()


def test_closed_recorder_refuses_records(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "s.ksr", META, host_time=1.0)
    rec.close()
    rec.close()  # idempotent
    with pytest.raises(SessionFileError, match="closed"):
        rec.rx(b"late", 2.0)


def test_torn_tail_at_every_offset_of_the_last_record(tmp_path: Path) -> None:
    path = tmp_path / "s.ksr"
    offsets = _write_sample(path)
    data = path.read_bytes()
    last = offsets[-1]  # the END record
    cut_path = tmp_path / "cut.ksr"
    for cut in range(last, len(data)):
        cut_path.write_bytes(data[:cut])
        reader = SessionReader(cut_path)
        records = list(reader)
        assert len(records) == len(offsets) - 1, cut
        assert isinstance(records[-1], RxRecord)
        assert not reader.damage.clean_close
        if cut == last:
            assert reader.damage.ok
        else:
            assert reader.damage.torn_tail_offset == last
            assert reader.damage.torn_tail_bytes == cut - last


def test_zero_filled_tail_after_power_cut_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "s.ksr"
    offsets = _write_sample(path)
    data = path.read_bytes()
    path.write_bytes(data[: offsets[-1]] + bytes(4096))
    reader = SessionReader(path)
    assert len(list(reader)) == len(offsets) - 1
    assert reader.damage.torn_tail_bytes == 4096


@pytest.mark.parametrize("where", ["crc", "length", "body"])
def test_corruption_inside_the_file_is_an_error_and_salvage_recovers(
    tmp_path: Path, where: str
) -> None:
    path = tmp_path / "s.ksr"
    offsets = _write_sample(path)
    data = bytearray(path.read_bytes())
    victim = offsets[2]  # the TX record
    if where == "crc":
        data[offsets[3] - 1] ^= 0xFF
    elif where == "length":
        data[victim + 3] = 0x7F  # body length ~2 GiB: impossible
    else:
        data[victim + 14] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(SessionFileError) as info:
        SessionReader(path)
    message = str(info.value)
    assert "\n" not in message
    assert f"offset {victim}" in message
    reader = SessionReader(path, salvage=True)
    records = list(reader)
    assert [type(r) for r in records] == [
        MetaRecord,
        RxRecord,
        MarkRecord,
        MetaRecord,
        RxRecord,
        EndRecord,
    ]
    assert reader.damage.skipped == ((victim, offsets[3] - victim),)
    assert reader.damage.skipped_bytes == offsets[3] - victim
    assert reader.damage.clean_close


def test_unknown_record_kinds_are_kept_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "s.ksr"
    _write_sample(path)
    data = path.read_bytes()
    path.write_bytes(data + pack_record(9, 200.0, b"future"))
    records = list(SessionReader(path))
    assert records[-1] == UnknownRecord(len(data), 200.0, 9, b"future")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty file"),
        (b"t,f0\n0.0,1.5\n", "not a knotsense recording"),
        (MAGIC[:5], "truncated inside the file header"),
        (MAGIC + b"\x01\x00", "truncated inside the file header"),
        (MAGIC + b"\x02\x00\x00\x00" + b"\x00" * 4, "corrupt file header"),
    ],
)
def test_bad_files(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.ksr"
    path.write_bytes(content)
    with pytest.raises(SessionFileError, match=match) as info:
        SessionReader(path)
    assert "\n" not in str(info.value)


def test_other_format_version_and_missing_meta(tmp_path: Path) -> None:
    import struct

    head = struct.pack("<8sHH", MAGIC, 2, 0)
    path = tmp_path / "v2.ksr"
    path.write_bytes(head + struct.pack("<I", zlib.crc32(head)))
    with pytest.raises(SessionFileError, match=r"format 2\.0 is not supported"):
        SessionReader(path)
    good = tmp_path / "s.ksr"
    _write_sample(good)
    path.write_bytes(good.read_bytes()[:FILE_HEADER_SIZE])
    with pytest.raises(SessionFileError, match="no META"):
        SessionReader(path)
    with pytest.raises(SessionFileError, match="no such file"):
        SessionReader(tmp_path / "missing.ksr")
    with pytest.raises(SessionFileError, match="directory"):
        SessionReader(tmp_path)


def test_buffered_records_reach_the_os_by_host_time_bytes_and_timer(tmp_path: Path) -> None:
    path = tmp_path / "s.ksr"
    rec = Recorder(path, META, host_time=10.0, fsync_interval=0, flush_bytes=1000)
    size0 = path.stat().st_size
    rec.rx(b"a" * 10, 10.1)
    assert path.stat().st_size == size0  # buffered
    rec.rx(b"b" * 10, 10.3)  # 0.3 s of host time since the last write
    assert path.stat().st_size == size0 + 2 * 27
    rec.rx(b"c" * 10, 10.31)
    rec.rx(b"d" * 2000, 10.32)  # over flush_bytes
    assert path.stat().st_size == size0 + 3 * 27 + 2017
    rec.close()
    # A quiet link: the background thread writes what is pending.
    path2 = tmp_path / "s2.ksr"
    rec = Recorder(path2, META, host_time=10.0, flush_interval=0.05, fsync_interval=0.1)
    size0 = path2.stat().st_size
    rec.rx(b"e" * 10, 10.01)
    deadline = time.monotonic() + 2.0
    while path2.stat().st_size == size0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path2.stat().st_size == size0 + 27
    rec.close()


def test_big_chunks_are_split_into_legal_records(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(Recorder, "chunk_limit", 100)
    path = tmp_path / "s.ksr"
    with Recorder(path, META, host_time=1.0) as rec:
        rec.rx(bytes(range(250)), 1.0)
    rx = [r.data for r in SessionReader(path) if isinstance(r, RxRecord)]
    assert [len(d) for d in rx] == [100, 100, 50]
    assert b"".join(rx) == bytes(range(250))


_CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from knotsense.host.recording import Recorder
    from knotsense.protocol import Encoder, Encoding, Framing, SampleBlock

    enc = Encoder(Framing.STREAM)
    rec = Recorder(sys.argv[1], {"framing": "stream", "device_url": "test://"})
    k = 0
    while True:
        samples = np.full((10, 2), k % 30000, dtype=np.int32)
        frame = enc.encode(SampleBlock(k * 40_000, k * 10, 4_000_000, 3, Encoding.INT16, samples))
        now = time.time()
        rec.rx(frame, now)
        k += 1
        print(k, repr(now), flush=True)
        time.sleep(0.004)
    """
)


def test_sigkill_keeps_everything_up_to_about_one_second_before(tmp_path: Path) -> None:
    path = tmp_path / "killed.ksr"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    reported: list[tuple[int, float]] = []
    try:
        assert child.stdout is not None
        started = None
        for line in child.stdout:
            count, when = line.split()
            reported.append((int(count), float(when)))
            started = started or time.time()
            if time.time() - started > 1.6:
                break
        kill_time = time.time()
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    # Everything the child had handed over one second before the kill must be there.
    must_have = max((count for count, when in reported if when <= kill_time - 1.0), default=0)
    assert must_have > 50
    reader = SessionReader(path)
    rx = [r for r in reader if isinstance(r, RxRecord)]
    assert len(rx) >= must_have
    assert not reader.damage.clean_close
    # The records are the child's, in order and intact: decode them.
    from knotsense.host.session import load_session

    session = load_session(path)
    assert session.n_samples == 10 * len(rx)
    assert (session.raw[::10, 0] == [k % 30000 for k in range(len(rx))]).all()


def test_the_documented_reader_reads_a_recording(tmp_path: Path) -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "recording-format.md"
    code = doc.read_text().split("```python\n")[1].split("```")[0]
    assert len(code.strip().splitlines()) <= 22
    namespace: dict = {}
    exec(code, namespace)
    path = tmp_path / "s.ksr"
    _write_sample(path)
    records = namespace["read_ksr"](str(path))
    assert [k for k, _, _ in records] == [1, 2, 3, 4, 1, 2, 5]
    assert records[1][2] == b"\x02\x01\x00"
    assert records[3][2] == {"kind": "user", "text": "knot under left shoulder"}
    assert records[0][2]["framing"] == "stream"
