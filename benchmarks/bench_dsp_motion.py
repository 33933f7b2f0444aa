"""The pipeline's motion stage (rocking axis, circling): its cost against the same run without it.

An hour (quick: 10 min) of 4 channels at 250 Hz with rocking and circling,
analysed offline with channel positions, once with ``motion=True`` and once
with ``motion=False`` (baseline, same process). ``value`` is the offline
speed with motion in x real time (target >= 1000x, the pipeline's bar);
``ratio`` is that speed over the baseline's (the share motion costs).
"""

from __future__ import annotations

import math
import time

import numpy as np

NAME = "dsp_motion"


def _session(seconds: float) -> tuple[np.ndarray, np.ndarray, tuple]:
    rate = 250.0
    t = np.arange(0.0, seconds, 1 / rate)
    ring = tuple((18 * math.cos(k * math.pi / 2), 18 * math.sin(k * math.pi / 2)) for k in range(4))
    phase = (t % 60.0) / 60.0  # each minute: hold, rocking along 60 deg, hold, circling
    rock = (phase > 0.2) & (phase < 0.45)
    circ = (phase > 0.6) & (phase < 0.8)
    wave = np.sin(2 * np.pi * 0.8 * t) * rock
    total = 120 * (1 + 0.2 * wave)
    cx = 5 * wave * 0.5 + 4 * np.cos(2 * np.pi * 0.5 * t) * circ
    cy = 5 * wave * 0.87 + 4 * np.sin(2 * np.pi * 0.5 * t) * circ
    pos = np.array(ring)
    w = 0.25 + np.column_stack((cx, cy)) @ np.linalg.pinv(pos - pos.mean(axis=0))
    x = total[:, None] * w + np.random.default_rng(0).normal(0, 0.3, (t.size, 4))
    return t, x, ring


def _timed(t: np.ndarray, x: np.ndarray, cfg: object) -> float:
    from knotsense.dsp.pipeline import analyze

    started = time.process_time()
    analyze(t, x, cfg)
    return time.process_time() - started


def run(quick: bool = False) -> dict:
    from knotsense.dsp.pipeline import PipelineConfig

    seconds = 600.0 if quick else 3600.0
    t, x, ring = _session(seconds)
    with_motion = _timed(t, x, PipelineConfig(release_threshold=150, positions=ring))
    without = _timed(t, x, PipelineConfig(release_threshold=150, positions=ring, motion=False))
    value = seconds / with_motion
    baseline = seconds / without
    return {
        "value": value,
        "unit": "x real time",
        "baseline": baseline,
        "ratio": value / baseline,
        "session_s": seconds,
        "cpu_s": round(with_motion, 3),
        "target": ">= 1000x real time with motion",
    }


if __name__ == "__main__":
    print(run(quick=True))
