"""dsp_pipeline: one hour of 8 channels at 1 kHz through the whole DSP chain.

Raw counts go through a linear calibration, spike rejection, decimation,
low-pass and band-pass filters and every detector, fed once in live-sized
chunks (100 ms, and 1 s) and once in one piece. The baseline is a bare
``scipy.signal.sosfilt`` of one 4th-order low-pass over the same array in the
same process; ``ratio`` is pipeline cost / baseline cost for the one-piece run
(targets: >= 1000x real time, <= 3x the bare filter).
"""

from __future__ import annotations

import time

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


def run(quick: bool) -> dict:
    from knotsense.dsp.pipeline import Pipeline, PipelineConfig

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

    def chunked(size: int) -> tuple[float, int]:
        pipe = Pipeline(cfg)
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

    base = min(bare() for _ in range(2))
    one = min(whole() for _ in range(2))
    live, events = chunked(100)
    live_1s, _ = chunked(1000)
    return {
        "value": round(seconds / one, 1),
        "unit": "x real time (one piece)",
        "baseline": round(base, 4),
        "ratio": round(one / base, 3),
        "pipeline_s": round(one, 4),
        "live_chunks_s": round(live, 3),
        "live_x_real_time": round(seconds / live, 1),
        "live_ratio": round(live / base, 3),
        "chunk": "100 ms (100 samples x 8 ch)",
        "live_1s_chunks_s": round(live_1s, 3),
        "live_1s_x_real_time": round(seconds / live_1s, 1),
        "live_1s_ratio": round(live_1s / base, 3),
        "samples": int(raw.size),
        "events": events,
    }
