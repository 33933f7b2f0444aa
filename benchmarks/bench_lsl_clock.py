"""Benchmark ``lsl_clock``: how honest the LSL outlet's timestamps are, and what an inlet loses.

``knotsense record sim://... --lsl`` (the real :func:`record_session` path,
the simulator unpaced on its virtual clock) records 10 simulated minutes
(``--quick``: 1) of a 4-channel unit at 250 Hz with 1 % of frames dropped on
the link, while an LSL inlet on the loopback interface, in a thread, pulls
the Force stream. The outlet waits for the inlet before streaming and, at the
end, lingers until the inlet has every sample its ``session_end`` marker
announces (or 2 minutes).

* headline (``value``): p99 of |LSL timestamp - true time| in ms, where the
  true time of a sample is when the simulated device took it (its device
  stamp through the simulated crystal, known exactly here) on LSL's clock;
  p50 and the maximum are reported too;
* ``samples_lost_outlet_to_inlet``: samples the outlet pushed that the inlet
  never received (samples the *link* lost are gaps in both the recording and
  the stream, and are counted apart as ``samples_lost_on_link``).

Baseline, in the same run on the same samples: the timestamps a plain outlet
would give (``push_chunk`` stamped at the moment the block was received),
p99 in ms. ``ratio`` is ours over that baseline (below 1: better).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

NAME = "lsl_clock"
URL = "sim://?scenario=back_session&seed=7&rate=250&faults=drop:0.01"


def run(quick: bool = False) -> dict[str, Any]:
    import pylsl

    from knotsense.host import record as record_mod
    from knotsense.host.lsl import LslOptions
    from knotsense.host.session import load_session

    minutes = 1.0 if quick else 10.0
    source_id = f"knotsense-bench-{uuid.uuid4().hex[:12]}"
    captured: dict[str, Any] = {}
    real_make = record_mod.make_transport

    def capture(url: str) -> Any:
        transport = real_make(url)
        captured["transport"] = transport
        return transport

    got_t: list[np.ndarray] = []
    got_n = [0]
    announced = [0]

    def inlet() -> None:
        found = pylsl.resolve_byprop("source_id", source_id, 1, 30.0)
        markers = pylsl.resolve_byprop("source_id", source_id + ":markers", 1, 30.0)
        if not found or not markers:
            return
        force_in = pylsl.StreamInlet(found[0], max_buflen=360, max_chunklen=0)
        marker_in = pylsl.StreamInlet(markers[0])
        force_in.open_stream(10.0)
        marker_in.open_stream(10.0)
        origin = force_in.info(10.0).desc().child("knotsense").child_value("session_start_stream")
        captured["session_start_stream"] = float(origin)
        buf = np.empty((4096, 5))
        expect = None
        deadline = time.monotonic() + 120.0
        # Until every sample the session_end marker announces is in (or 2 min).
        while (expect is None or got_n[0] < expect) and time.monotonic() < deadline:
            _, stamps = force_in.pull_chunk(timeout=0.1, max_samples=4096, dest_obj=buf)
            marks, _ = marker_in.pull_chunk(timeout=0.0)
            if stamps:
                got_t.append(np.asarray(stamps))
                got_n[0] += len(stamps)
            for (text,) in marks:
                if '"session_end"' in text:
                    expect = json.loads(text)["samples"]
                    announced[0] = expect
        force_in.close_stream()
        marker_in.close_stream()

    thread = threading.Thread(target=inlet, daemon=True)
    thread.start()
    record_mod.make_transport = capture
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.ksr"
            started = time.perf_counter()
            result = asyncio.run(
                record_mod.record_session(
                    URL,
                    path,
                    duration_s=minutes * 60.0,
                    lsl=LslOptions(source_id=source_id, wait_s=30.0, linger_s=120.0),
                )
            )
            wall = time.perf_counter() - started
            thread.join(30.0)
            session = load_session(path)
    finally:
        record_mod.make_transport = real_make

    from knotsense.firmware_sim.config import SimConfig
    from knotsense.firmware_sim.device import SimulatedDevice

    # The simulator is closed now; its clock facts are fixed by the URL.
    ratio = SimulatedDevice(SimConfig.from_url(URL)).ratio  # device s per true s (crystal)
    epoch = captured["transport"]._epoch  # host clock = epoch + simulated s since power-on
    stamps = np.concatenate(got_t) if got_t else np.zeros(0)
    # Pushed: the samples the live loop took (RecordResult.samples); the recording holds
    # a little more (what arrived after the duration was reached). The inlet gets them in
    # the recording's order, so the k-th received sample is the recording's k-th.
    pushed = int(result.samples)
    n = min(stamps.size, session.n_samples)
    # True time of each sample on the host clock: its device stamp through the crystal
    # (the unit boots at simulated time 0; no reboots in this run).
    true_host = epoch + session.device_time_us[:n] / 1e6 / ratio
    offset = captured["session_start_stream"] - session.start_unix  # the outlet's LSL - host
    err = stamps[:n] - offset - true_host
    naive = session.host_rx_s[:n] + session.start_unix - true_host
    p50, p99, worst = np.percentile(np.abs(err), [50, 99, 100]) * 1e3
    b50, b99 = np.percentile(np.abs(naive), [50, 99]) * 1e3
    offline = session.t[:n] + session.start_unix - true_host
    r50, r99 = np.percentile(np.abs(offline), [50, 99]) * 1e3
    vs_file = np.abs(stamps[:n] - captured["session_start_stream"] - session.t[:n])
    settled = session.t[:n] - session.t[0] >= 30.0
    s50, s99 = np.percentile(np.abs(err[settled]), [50, 99]) * 1e3 if settled.any() else (0, 0)
    return {
        "value": round(float(p99), 4),
        "unit": "ms p99 |LSL timestamp - true time|",
        "baseline": round(float(b99), 4),
        "ratio": round(float(p99 / b99), 4) if b99 > 0 else 0.0,
        "p50_ms": round(float(p50), 4),
        "max_ms": round(float(worst), 4),
        "baseline_p50_ms": round(float(b50), 4),
        "after_30s_p50_p99_ms": [round(float(s50), 4), round(float(s99), 4)],
        "recording_t_p50_p99_ms": [round(float(r50), 4), round(float(r99), 4)],
        "stream_vs_recording_t_p99_ms": round(float(np.percentile(vs_file, 99)) * 1e3, 4),
        "session_minutes": minutes,
        "samples_pushed": int(pushed),
        "samples_received": int(got_n[0]),
        "samples_announced_by_session_end": int(announced[0]),
        "samples_lost_outlet_to_inlet": int(pushed - got_n[0]),
        "samples_lost_on_link": int(session.samples_lost),
        "sim_crystal_ppm": round((ratio - 1.0) * 1e6, 3),
        "session_drift_ppm": [round(d, 3) for d in session.drift_ppm],
        "wall_s": round(wall, 2),
    }
