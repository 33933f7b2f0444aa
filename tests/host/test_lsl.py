"""LSL outlets while recording: a real outlet and inlet on the loopback interface.

Each test resolves its streams by a source id of its own (no crosstalk with
other runs on the machine) with bounded timeouts; the outlet waits for the
inlet before streaming, so nothing is missed and the counts are exact.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import pytest

pylsl = pytest.importorskip("pylsl", reason="the lsl extra (pip install 'knotsense[lsl]')")

from knotsense.dsp.pipeline import PipelineConfig, analyze  # noqa: E402
from knotsense.firmware_sim.config import SimConfig  # noqa: E402
from knotsense.firmware_sim.device import SimulatedDevice  # noqa: E402
from knotsense.host.demo import ideal_bench_calibration  # noqa: E402
from knotsense.host.lab import Marker, event_markers  # noqa: E402
from knotsense.host.lsl import LslOptions  # noqa: E402
from knotsense.host.record import record_session  # noqa: E402
from knotsense.host.session import load_session  # noqa: E402

URL = "sim://?scenario=back_session&seed=3&rate=80&faults=link_drop:30+1.5"
DURATION_S = 45.0
HOLD_S = 10.0


class Inlet(threading.Thread):
    """Pulls both streams of one source id until it has the samples session_end announces."""

    def __init__(self, source_id: str) -> None:
        super().__init__(daemon=True)
        self.source_id = source_id
        self.expect: int | None = None  # from the session_end marker
        self.values: list[list[float]] = []
        self.stamps: list[float] = []
        self.markers: list[tuple[float, dict[str, Any]]] = []
        self.info_xml = ""
        self.marker_info_xml = ""
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            force = pylsl.resolve_byprop("source_id", self.source_id, 1, 20.0)
            marks = pylsl.resolve_byprop("source_id", self.source_id + ":markers", 1, 20.0)
            assert force and marks, "streams not found on loopback"
            fin = pylsl.StreamInlet(force[0], max_buflen=360)
            min_ = pylsl.StreamInlet(marks[0], max_buflen=360)
            fin.open_stream(10.0)
            min_.open_stream(10.0)
            self.info_xml = fin.info(10.0).as_xml()
            self.marker_info_xml = min_.info(10.0).as_xml()
            deadline = time.monotonic() + 60.0
            while self.expect is None or len(self.stamps) < self.expect:
                values, stamps = fin.pull_chunk(timeout=0.1)
                mvals, mstamps = min_.pull_chunk(timeout=0.0)
                self.values += values
                self.stamps += stamps
                self.markers += [(t, json.loads(v[0])) for t, v in zip(mstamps, mvals, strict=True)]
                for _, m in self.markers[-len(mstamps) :] if mstamps else ():
                    if m["event"] == "session_end":
                        self.expect = m["samples"]
                assert time.monotonic() < deadline, "inlet timed out"
            fin.close_stream()
            min_.close_stream()
        except BaseException as exc:  # reported by the test
            self.error = exc


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One recording with --lsl, seen by an inlet."""
    unit = SimulatedDevice(SimConfig.from_url(URL)).unit
    record = ideal_bench_calibration(unit)
    source_id = f"knotsense-test-{uuid.uuid4().hex}"
    inlet = Inlet(source_id)
    inlet.start()
    path = tmp_path_factory.mktemp("lsl") / "live.ksr"
    config = PipelineConfig(release_threshold=110.0, hold=HOLD_S)
    try:
        result = asyncio.run(
            record_session(
                URL,
                path,
                duration_s=DURATION_S,
                pipeline_config=config,
                calibration_record=record,
                lsl=LslOptions(source_id=source_id, wait_s=20.0, linger_s=30.0),
            )
        )
    finally:
        inlet.join(60.0)
    assert inlet.error is None, inlet.error
    assert not inlet.is_alive()
    return {"result": result, "inlet": inlet, "path": path, "config": config}


def test_the_force_stream_describes_itself(live: dict[str, Any]) -> None:
    info = ET.fromstring(live["inlet"].info_xml)
    assert info.findtext("type") == "Force"
    assert info.findtext("channel_format") == "double64"
    assert int(info.findtext("channel_count")) == 5
    assert float(info.findtext("nominal_srate")) == 80.0
    channels = info.findall("desc/channels/channel")
    assert [c.findtext("label") for c in channels] == ["f0", "f1", "f2", "f3", "total"]
    assert {c.findtext("unit") for c in channels} == {"newtons"}
    unit = SimulatedDevice(SimConfig.from_url(URL)).unit
    for c, (x, y) in zip(channels, unit.positions_mm, strict=False):
        assert float(c.findtext("location/X")) == pytest.approx(x)
        assert float(c.findtext("location/Y")) == pytest.approx(y)
    assert info.findtext("desc/acquisition/serial_number") == unit.serial
    marker_info = ET.fromstring(live["inlet"].marker_info_xml)
    assert marker_info.findtext("type") == "Markers"
    assert marker_info.findtext("channel_format") == "string"


def test_inlet_gets_every_sample_on_the_recordings_timeline(live: dict[str, Any]) -> None:
    inlet, result = live["inlet"], live["result"]
    assert inlet.expect == result.samples  # what session_end announced
    assert len(inlet.stamps) == result.samples  # nothing lost outlet -> inlet
    values = np.asarray(inlet.values)
    np.testing.assert_allclose(values[:, 4], values[:, :4].sum(axis=1))
    origin = float(ET.fromstring(inlet.info_xml).findtext("desc/knotsense/session_start_stream"))
    t = np.asarray(inlet.stamps) - origin
    assert np.all(np.diff(t) > 0)
    session = load_session(live["path"])
    n = len(t)
    assert session.n_samples >= n
    # The same samples, in the same order, with the same forces...
    np.testing.assert_allclose(values[:, :4], session.forces[:n], rtol=0, atol=1e-9)
    # ...and the same timeline: the live clock mapping against the file's offline fit.
    assert np.median(np.abs(t - session.t[:n])) < 1e-3
    assert np.max(np.abs(t - session.t[:n])) < 0.05
    # Gaps are gaps: the link drop is a hole in the stream, as in the file.
    assert session.gaps and np.max(np.diff(t)) > 1.0
    big = int(np.argmax(np.diff(t)))
    assert any(abs(g.end_s - t[big + 1]) < 0.05 for g in session.gaps)


def test_markers_are_stamped_when_the_event_happened(live: dict[str, Any]) -> None:
    inlet = live["inlet"]
    origin = float(ET.fromstring(inlet.info_xml).findtext("desc/knotsense/session_start_stream"))
    seen = {m["event"] for _, m in inlet.markers}
    assert {"contact_onset", "contact_episode", "release_reached"} <= seen
    assert {"link_lost", "link_restored", "gap"} <= seen
    for stamp, m in inlet.markers:
        t = stamp - origin
        if m["event"] == "release_reached":
            assert t == pytest.approx(m["start"] + HOLD_S, abs=1e-3)
            assert t < m["detected_at"] + 1e-6
        elif m["event"].endswith("_onset"):
            assert t == pytest.approx(m["start"], abs=1e-3)
            assert t <= m["detected_at"] + 1e-6
        elif m["event"].endswith("_episode"):
            assert t == pytest.approx(m["end"], abs=1e-3)
        else:
            assert t == pytest.approx(m["t"], abs=1e-3)
    # The live events agree with an offline analysis of the recording.
    session = load_session(live["path"])
    offline = analyze(session.t, session.forces, live["config"])
    want = [e for e in offline.episodes if e.end < live["result"].duration_s - 1.0]
    got = [m for _, m in inlet.markers if m["event"].endswith("_episode")]
    for episode in want:
        assert any(
            g["kind"] == episode.kind and abs(g["start"] - episode.start) < 0.25 for g in got
        ), episode


def test_event_markers_timing_rules() -> None:
    from knotsense.dsp.detectors import ContactEpisode, Onset

    markers = event_markers(
        [Onset("release", 2.0, 12.5), Onset("rocking", 3.0, 8.0), ContactEpisode(1, 9, 9.7, 5, 6)],
        hold_s=10.0,
        shift=100.0,
    )
    assert [(m.t, m.payload["event"]) for m in markers] == [
        (112.0, "release_reached"),
        (103.0, "rocking_onset"),
        (109.0, "contact_episode"),
    ]
    assert markers[0].payload["start"] == 102.0 and markers[0].payload["detected_at"] == 112.5
    assert isinstance(markers[2], Marker) and json.loads(markers[2].text)["end"] == 109.0


def test_bad_lsl_options_are_one_line_errors() -> None:
    from knotsense.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="chunk_s"):
        LslOptions(chunk_s=-1)
    with pytest.raises(ConfigurationError, match="wait_s"):
        LslOptions(wait_s=float("nan"))
