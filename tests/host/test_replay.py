"""Replay pacing: delays from recorded receive times, speed, seek, loop."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import pytest

from knotsense.errors import ConfigurationError, SessionFileError
from knotsense.host.recording import EndRecord, MetaRecord, Recorder, RxRecord, SessionReader
from knotsense.host.replay import iter_replay


@pytest.fixture
def reader(tmp_path: Path) -> SessionReader:
    path = tmp_path / "s.ksr"
    with Recorder(path, {"framing": "stream"}, host_time=100.0, fsync_interval=0) as rec:
        for i in range(10):
            rec.rx(bytes([i, 0]), 100.0 + 0.5 * (i + 1))
        rec.mark("note", {"i": 1}, 105.2)
        rec.meta({"stream_config": {"rate_hz": 100}}, 105.3)
        rec.rx(b"\x0b\x00", 105.5)
    return SessionReader(path)


def test_live_pace_and_speed(reader: SessionReader) -> None:
    live = list(iter_replay(reader, speed=1.0))
    assert len(live) == len(reader)
    assert live[0][0] == 0.0 and isinstance(live[0][1], MetaRecord)
    assert [round(d, 9) for d, _ in live[1:4]] == [0.5, 0.5, 0.5]
    assert sum(d for d, _ in live) == pytest.approx(5.5)
    fast = list(iter_replay(reader, speed=4.0))
    assert sum(d for d, _ in fast) == pytest.approx(5.5 / 4)
    assert [r for _, r in fast] == [r for _, r in live]
    assert all(d == 0 for d, _ in iter_replay(reader, speed=None))


def test_seek_keeps_metadata_and_starts_at_once(reader: SessionReader) -> None:
    out = list(iter_replay(reader, speed=1.0, start_s=3.0))
    assert isinstance(out[0][1], MetaRecord) and out[0][0] == 0.0
    rx = [(d, r) for d, r in out if isinstance(r, RxRecord)]
    assert rx[0][1].data == bytes([5, 0]) and rx[0][0] == 0.0
    assert rx[1][0] == pytest.approx(0.5)
    assert isinstance(out[-1][1], EndRecord)


def test_kinds_filter_and_loop(reader: SessionReader) -> None:
    one_pass = list(iter_replay(reader, speed=None, kinds=(RxRecord,)))
    assert len(one_pass) == 11
    looped = list(islice(iter_replay(reader, speed=2.0, kinds=(RxRecord,), loop=True), 25))
    assert [r.data for _, r in looped[:11]] == [r.data for _, r in one_pass]
    assert [r.data for _, r in looped[11:22]] == [r.data for _, r in one_pass]
    assert looped[11][0] == 0.0  # a restart does not wait
    assert all(d >= 0 for d, _ in looped)


def test_bad_arguments(reader: SessionReader) -> None:
    with pytest.raises(ConfigurationError, match="speed"):
        next(iter_replay(reader, speed=0))
    with pytest.raises(ConfigurationError, match="start"):
        next(iter_replay(reader, start_s=-1))
    with pytest.raises(SessionFileError, match="cannot seek"):
        next(iter_replay(reader, start_s=60))
