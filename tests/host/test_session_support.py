"""Synthetic recordings for the recording, session, export and replay tests.

Frames come from the real protocol Encoder; times follow a known truth (device
clock drift, receive latency, wraps, reboots, losses) so tests can compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from knotsense.host.recording import Recorder
from knotsense.protocol import (
    BlockFlags,
    ChannelInfo,
    DeviceEvent,
    DeviceInfo,
    Encoder,
    Encoding,
    EventCode,
    Framing,
    SampleBlock,
    SampleUnit,
    SensorKind,
    Status,
    StatusFlags,
)

START = 1_700_000_000.0


def device_info(channels: int = 2, units: SampleUnit = SampleUnit.COUNTS) -> DeviceInfo:
    return DeviceInfo(
        1,
        0,
        (1, 2, 3),
        1,
        24,
        units,
        0,
        (100, 250, 1000),
        tuple(ChannelInfo(SensorKind.LOAD_CELL, 10.0 * i, 0.0) for i in range(channels)),
        "KS-TEST-1",
        "knotsense-proto",
    )


def raw_value(index: np.ndarray, channels: int) -> np.ndarray:
    """The counts of sample *index* (global, truth) on each channel."""
    idx = np.asarray(index, dtype=np.int64)[:, None]
    return ((idx * (np.arange(channels) + 1) * 7) % 20000 - 5000).astype(np.int32)


@dataclass
class Synth:
    """Truth of a synthetic recording."""

    path: Path
    rate: int
    spb: int
    channels: int
    kept_index: list[int] = field(default_factory=list)  # global sample numbers received
    true_time: list[float] = field(default_factory=list)  # their true host time - START
    frames_written: int = 0


def make_recording(
    path: Path,
    *,
    duration_s: float = 10.0,
    rate: int = 250,
    spb: int = 10,
    channels: int = 2,
    drift_ppm: float = 0.0,
    t0_us: int = 1_000_000,
    latency_min: float = 0.0005,
    latency_mean: float = 0.002,
    seed: int = 1,
    drop_blocks: frozenset[int] = frozenset(),
    overflow_blocks: frozenset[int] = frozenset(),
    reboot_block: int | None = None,
    boot_event: bool = True,
    link_lost_blocks: frozenset[int] = frozenset(),
    frames_per_record: int = 1,
    framing: str = "stream",
    calibration: dict[str, Any] | None = None,
    units: SampleUnit = SampleUnit.COUNTS,
    extras: bool = True,
) -> Synth:
    """Write a recording of ``duration_s`` of blocks; return the truth.

    drop_blocks: blocks lost on the link (their frame seq is consumed: a gap).
    overflow_blocks: blocks the device dropped before sending (index skips,
        next block has OVERFLOW_BEFORE, seq not consumed).
    reboot_block: the device reboots before this block (clock and seq restart,
        BOOT event, stream restarts at index 0).
    link_lost_blocks: a link_lost + reconnected mark before this block and the
        block before it lost.
    """
    rng = np.random.default_rng(seed)
    enc = Encoder(Framing.STREAM if framing == "stream" else Framing.PACKET)
    period_ns = round(1e9 / rate)
    n_blocks = int(duration_s * rate / spb)
    truth = Synth(path, rate, spb, channels)
    meta = {
        "framing": framing,
        "device_url": "sim://?scenario=test",
        "device_info": device_info(channels, units),
        "calibration": calibration,
        "start_unix": START,
    }
    mask = (1 << channels) - 1
    boot_offset_s = 0.0  # true time of the reboot
    index_base = 0  # sample_index origin of the current stream
    pending: list[bytes] = []
    with Recorder(path, meta, host_time=START, fsync_interval=0) as rec:
        last_host = [START]

        def flush(host: float) -> None:
            if not pending:
                return
            host = last_host[0] = max(host, last_host[0])
            if framing == "stream":
                rec.rx(b"".join(pending), host)
            else:
                for p in pending:
                    rec.rx(p, host)
            pending.clear()

        for k in range(n_blocks):
            first = k * spb
            t_first_true = first / rate
            t_last_true = (first + spb - 1) / rate
            if reboot_block is not None and k == reboot_block:
                flush(START + t_first_true)
                enc.reset()
                boot_offset_s = t_first_true - 0.3  # booted 0.3 s before this block
                index_base = first
                if boot_event:
                    pending.append(enc.encode(DeviceEvent(50_000, EventCode.BOOT, 0, 0)))
            if k in link_lost_blocks:
                flush(START + t_first_true)
                rec.mark("link_lost", {"error": "test"}, START + t_first_true - 0.05)
                rec.mark("reconnected", {}, START + t_first_true - 0.01)
                continue
            dev_clock_s = (t_first_true - boot_offset_s) * (1 + drift_ppm * 1e-6)
            clock0 = t0_us if reboot_block is None or k < reboot_block else 0
            t_first_us = clock0 + round(dev_clock_s * 1e6)
            if k in overflow_blocks:
                continue  # dropped inside the device: no frame, no seq
            block = SampleBlock(
                t_first_us & 0xFFFFFFFF,
                (first - index_base) & 0xFFFFFFFF,
                period_ns,
                mask,
                Encoding.INT24,
                raw_value(np.arange(first, first + spb), channels),
                BlockFlags.OVERFLOW_BEFORE if (k - 1) in overflow_blocks else BlockFlags.NONE,
            )
            frame = enc.encode(block)
            if k in drop_blocks:
                continue  # seq consumed, frame never arrives
            truth.kept_index.extend(range(first, first + spb))
            truth.true_time.extend((np.arange(first, first + spb) / rate).tolist())
            pending.append(frame)
            truth.frames_written += 1
            if extras and k % 100 == 50:
                pending.append(
                    enc.encode(
                        Status(
                            t_first_us & 0xFFFFFFFF,
                            1,
                            3900,
                            80,
                            StatusFlags.STREAMING,
                            25.0,
                            0,
                            0,
                            0,
                            0,
                            0,
                            0,
                        )
                    )
                )
            if len(pending) >= frames_per_record:
                host = START + t_last_true + latency_min + rng.exponential(latency_mean)
                flush(host)
        flush(START + duration_s + 0.01)
    return truth
