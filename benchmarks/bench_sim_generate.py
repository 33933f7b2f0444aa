"""Benchmark ``sim_generate``: a simulated one-hour session, 8 channels at 1 kHz, framed.

The device runs ``back_session`` (which ends after 10 minutes; the unit keeps
sampling an empty knob for the rest of the hour) with 8 load-cell channels at
1 kHz, int24 samples, streaming on a 244-byte STREAM link, advanced as fast as
possible in 1 s steps. The figure is the real-time factor: simulated seconds
per second of this process's CPU time (``time.process_time``, so other jobs on
a shared machine do not count), bytes included (physics, ADC, detector,
packetiser, COBS).

Baseline, run in the same process: a naive per-sample Python loop as a
newcomer writes it -- evaluate the load, split it over the channels, add
noise with :mod:`random`, pack each sample with :mod:`struct`, and frame a
block every 9 samples with the protocol's Encoder. It is timed on a slice and
extrapolated.
"""

from __future__ import annotations

import math
import random
import struct
import time

import numpy as np

from knotsense.firmware_sim.config import SimConfig
from knotsense.firmware_sim.device import SimulatedDevice
from knotsense.protocol import (
    Command,
    Encoder,
    Encoding,
    Framing,
    SampleBlock,
    SetStreamConfig,
    StartStream,
)

NAME = "sim_generate"
CHANNELS = 8
RATE = 1000


def simulate(seconds: float, step: float = 1.0) -> tuple[float, int]:
    """Run the simulator for *seconds*; returns (wall seconds, bytes produced)."""
    device = SimulatedDevice(SimConfig(channels=CHANNELS, rate_hz=RATE, seed=1))
    host = Encoder(Framing.STREAM)
    device.run_until(0.05)
    device.host_write(host.encode(Command(1, SetStreamConfig(RATE, 0xFF, Encoding.INT24))))
    device.host_write(host.encode(Command(2, StartStream())))
    started = time.process_time()
    size = 0
    t = 0.05
    while t < seconds:
        t = min(seconds, t + step)
        for chunk in device.run_until(t):
            size += len(chunk)
    return time.process_time() - started, size


def naive(seconds: float) -> tuple[float, int]:
    """The per-sample Python loop baseline; returns (wall seconds, bytes)."""
    rnd = random.Random(1)
    encoder = Encoder(Framing.STREAM)
    per_block = SampleBlock.max_samples(244, CHANNELS, Encoding.INT24)
    angles = [2 * math.pi * i / CHANNELS for i in range(CHANNELS)]
    started = time.process_time()
    size = 0
    rows: list[list[int]] = []
    t_first = 0
    for k in range(int(seconds * RATE)):
        t = k / RATE
        force = 150 * (1 + 0.025 * math.sin(2 * math.pi * 0.25 * t))
        cop = 5 * math.sin(2 * math.pi * 0.6 * t)
        row = []
        for ch in range(CHANNELS):
            share = (1 + cop * math.cos(angles[ch]) / 18) / CHANNELS
            counts = 25_000 * force * share + rnd.gauss(0, 30)
            row.append(max(-(1 << 23), min((1 << 23) - 1, round(counts))))
        struct.pack(f"<{CHANNELS}i", *row)
        if not rows:
            t_first = k * 1000
        rows.append(row)
        if len(rows) == per_block:
            block = SampleBlock(
                t_first, k - per_block + 1, 1_000_000, 0xFF, Encoding.INT24, np.array(rows)
            )
            size += len(encoder.encode(block))
            rows = []
    return time.process_time() - started, size


def run(quick: bool = False) -> dict:
    seconds = 300.0 if quick else 3600.0
    wall, size = simulate(seconds)
    base_seconds = 5.0 if quick else 20.0
    base_wall, _ = naive(base_seconds)
    value = seconds / wall
    baseline = base_seconds / base_wall
    return {
        "value": value,
        "unit": "x real time",
        "baseline": baseline,
        "ratio": value / baseline,
        "simulated_s": seconds,
        "cpu_s": round(wall, 2),
        "mbytes": round(size / 1e6, 1),
        "target": ">= 500x real time",
    }


if __name__ == "__main__":
    print(run(quick=True))
