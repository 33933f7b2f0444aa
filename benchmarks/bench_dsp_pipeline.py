"""dsp_pipeline: one hour of 8 channels at 1 kHz through the whole DSP chain.

Raw counts go through a linear calibration, spike rejection, decimation,
low-pass and band-pass filters and every detector, fed in one piece and in
live-sized pieces: 1 s and 100 ms chunks run as they come (``block=0``), and
100 ms chunks and 9-sample frames (what ``knotsense record`` gets from an
8-channel int24 stream at 1 kHz) with the recorder's 0.2 s processing block.

The baseline is a bare ``scipy.signal.sosfilt`` of one 4th-order low-pass over
the same array in the same process. ``ratio`` (and each ``<feed>_ratio``) is
the cost against that filter run once over the whole array; each
``<feed>_ratio_same_chunks`` is the cost against the same filter fed the same
chunks (carrying ``zi``, timed on up to 600 s of the data and scaled), which
is what the bare filter would cost in the same live loop. Targets: >= 1000x
real time, <= 3x the bare filter. ``numpy_floor_100ms_ratio`` is the cost of
only the array calls a 100 ms chunk needs before any filter or detector runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
from scipy import signal

NAME = "dsp_pipeline"


def _data(seconds: float, rate: float, channels: int) -> tuple[np.ndarray, np.ndarray, object]:
    from knotsense.dsp.calibration_models import Calibration, LinearModel

    rng = np.random.default_rng(7)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    # Lie-downs every 3 minutes with breathing and a rocking bout: counts around 2^15.
    phase = (t % 180.0) / 180.0
    load = np.where((phase > 0.05) & (phase < 0.85), 180.0, 0.0)
    load *= 1 + 0.03 * np.sin(2 * np.pi * 0.25 * t)
    load += np.where((phase > 0.4) & (phase < 0.5), 40.0 * np.sin(2 * np.pi * 0.8 * t), 0.0)
    gains = rng.uniform(0.004, 0.006, channels)
    counts = (load[:, None] / channels) / gains + 2000
    counts += rng.normal(0, 20, (n, channels))
    raw = counts.astype(np.int32)
    cal = Calibration(tuple(LinearModel(float(g), -2000 * float(g)) for g in gains))
    return t, raw, cal


def _numpy_floor(t: np.ndarray, raw: np.ndarray, gains: np.ndarray, size: int) -> float:
    """Seconds for only the array calls every chunk of this chain needs, before any
    filter or detector: check the times, the total, its spike range, the 25 Hz bin
    cuts, the bin sums and their calibration. Python's per-call cost sets this
    floor for small chunks, whatever the chain does after it."""
    most, least = np.maximum.reduce, np.minimum.reduce
    start = time.perf_counter()
    for a in range(0, t.size, size):
        tt, xx = t[a : a + size], raw[a : a + size]
        t0, t1 = tt.item(0), tt.item(-1)
        least(tt[1:] - tt[:-1])
        total = xx @ gains
        most(total) - least(total)
        edges = np.arange(math.floor(t0 * 25) + 1, math.floor(t1 * 25) + 1, dtype=np.float64)
        cuts = (tt * 25.0).searchsorted(edges).tolist()
        if cuts:
            sums = np.add.reduceat(xx, [0, *cuts], axis=0, dtype=np.int64)
            (sums / 40.0 * gains).tolist()
    return time.perf_counter() - start


def run(quick: bool) -> dict:
    from knotsense.dsp.pipeline import LIVE_BLOCK_S, Pipeline, PipelineConfig

    seconds = 600.0 if quick else 3600.0
    rate, channels = 1000.0, 8
    t, raw, cal = _data(seconds, rate, channels)
    cfg = PipelineConfig(release_threshold=120.0, max_force=300.0, calibration=cal)

    def whole() -> float:
        pipe = Pipeline(cfg)
        start = time.perf_counter()
        pipe.process(t, raw)
        pipe.finish()
        return time.perf_counter() - start

    def chunked(size: int, block: float = 0.0) -> tuple[float, int]:
        pipe = Pipeline(replace(cfg, block=block))
        events = 0
        start = time.perf_counter()
        for a in range(0, t.size, size):
            events += len(pipe.process(t[a : a + size], raw[a : a + size]).events)
        events += len(pipe.finish().events)
        return time.perf_counter() - start, events

    sos = signal.butter(4, 5.0, fs=rate, output="sos")
    data = raw.astype(np.float64)

    def bare() -> float:
        start = time.perf_counter()
        signal.sosfilt(sos, data, axis=0)
        return time.perf_counter() - start

    def bare_chunked(size: int) -> float:
        """Seconds the bare filter takes per second of data, fed *size*-sample chunks."""
        n = min(t.size, int(600 * rate))
        zi = np.zeros((sos.shape[0], 2, channels))
        start = time.perf_counter()
        for a in range(0, n, size):
            _, zi = signal.sosfilt(sos, data[a : min(a + size, n)], axis=0, zi=zi)
        return (time.perf_counter() - start) / (n / rate)

    base = min(bare() for _ in range(2))
    one = min(whole() for _ in range(2))
    result: dict = {
        "value": round(seconds / one, 1),
        "unit": "x real time (one piece)",
        "baseline": round(base, 4),
        "ratio": round(one / base, 3),
        "pipeline_s": round(one, 4),
    }
    feeds = {"1s": (1000, 0.0), "100ms": (100, 0.0), "100ms_block": (100, LIVE_BLOCK_S)}
    feeds["frames9_block"] = (9, LIVE_BLOCK_S)
    events: dict[str, int] = {}
    for name, (size, block) in feeds.items():
        cost, events[name] = min(chunked(size, block) for _ in range(2))
        same = min(bare_chunked(size) for _ in range(2)) * seconds
        result[f"{name}_s"] = round(cost, 3)
        result[f"{name}_x_real_time"] = round(seconds / cost, 1)
        result[f"{name}_ratio"] = round(cost / base, 3)
        result[f"{name}_ratio_same_chunks"] = round(cost / same, 3)
    if len(set(events.values())) != 1:
        raise RuntimeError(f"the feeds found different events: {events}")
    gains = np.array([m.gain for m in cal.models])
    floor = min(_numpy_floor(t, raw, gains, 100) for _ in range(2))
    result["numpy_floor_100ms_ratio"] = round(floor / base, 3)
    result["samples"] = int(raw.size)
    result["events"] = events["100ms"]
    return result
