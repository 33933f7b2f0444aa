"""Capturing a stream and turning it into bench figures (rate, jitter, latency, loss).

Everything here is plain data and numpy: :func:`capture` runs on the client's
loop and returns a :class:`Capture`; the figure functions take captures and
lists of numbers and never touch the device.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

import numpy as np

from knotsense.host.device import AsyncDevice, Gap, LinkChange, Notice, Samples
from knotsense.protocol import DeviceEvent, EventCode

PERCENTILES = (50, 95, 99)


@dataclass
class Capture:
    """What a stream delivered in one window, in arrival order."""

    samples: list[Samples] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    links: list[LinkChange] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    wall_s: float = 0.0
    stats_before: dict[str, int] = field(default_factory=dict)
    stats_after: dict[str, int] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return sum(len(s.device_us) for s in self.samples)

    def device_span_s(self) -> float:
        """Device time from the first to the last sample received."""
        if not self.samples:
            return 0.0
        return float(self.samples[-1].device_us[-1] - self.samples[0].device_us[0]) / 1e6

    def events(self, *codes: EventCode) -> list[DeviceEvent]:
        out = [n.message for n in self.notices if isinstance(n.message, DeviceEvent)]
        return [e for e in out if not codes or e.code in codes]

    def delta(self, key: str) -> int:
        """How much a client counter grew during the capture."""
        return self.stats_after.get(key, 0) - self.stats_before.get(key, 0)

    def raw(self) -> np.ndarray:
        if not self.samples:
            return np.zeros((0, 0), dtype=np.int64)
        return np.concatenate([s.raw for s in self.samples]).astype(np.int64)

    def device_us(self) -> np.ndarray:
        if not self.samples:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([s.device_us for s in self.samples])


async def capture(
    adev: AsyncDevice,
    device_seconds: float,
    *,
    wall_limit: float = 60.0,
    idle_timeout: float = 5.0,
    until: object = None,
) -> Capture:
    """Read the stream until *device_seconds* of device time arrived (or *wall_limit*).

    *until*, if given, is called with each item; a true result ends the capture.
    Device time is counted over the samples received, restarting after a reboot.
    """
    out = Capture(stats_before=dict(adev.stats))
    started = time.monotonic()
    span_start: int | None = None
    stream = adev.stream(timeout=idle_timeout)
    try:
        while time.monotonic() - started < wall_limit:
            try:
                item = await asyncio.wait_for(anext(stream), wall_limit)
            except (StopAsyncIteration, TimeoutError):
                break
            if isinstance(item, Samples):
                out.samples.append(item)
                if span_start is None or item.device_us[0] < span_start:
                    span_start = int(item.device_us[0])
                if len(item.device_us) and item.device_us[-1] - span_start >= device_seconds * 1e6:
                    break
            elif isinstance(item, Gap):
                out.gaps.append(item)
            elif isinstance(item, LinkChange):
                out.links.append(item)
                if item.kind == "rebooted":
                    span_start = None
            else:
                out.notices.append(item)
            if until is not None and until(item):  # type: ignore[operator]
                break
    finally:
        await stream.aclose()
    out.wall_s = time.monotonic() - started
    out.stats_after = dict(adev.stats)
    return out


def percentiles(values: list[float] | np.ndarray, ps: tuple[int, ...] = PERCENTILES) -> dict:
    """p50/p95/p99 and max of *values* (empty: {})."""
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return {}
    out = {f"p{p}": float(np.percentile(a, p)) for p in ps}
    out["max"] = float(a.max())
    out["n"] = int(a.size)
    return out


@dataclass(frozen=True)
class RateFigures:
    """The sample rate measured on device timestamps, and host-side timing."""

    nominal_hz: float
    measured_hz: float
    error_ppm: float
    samples: int
    device_span_s: float
    index_continuous: bool
    clock_vs_host_ppm: float | None
    inter_arrival_ms: dict
    lateness_jitter_ms: dict


def rate_figures(cap: Capture, nominal_hz: float, host_clock_meaningful: bool) -> RateFigures:
    """Rate from the device's block timestamps against sample indices; host jitter.

    * measured rate: least-squares slope of sample index over the device time of
      each block's first sample (immune to block size and arrival jitter);
    * clock vs host: slope of device time over host arrival time (the device's
      crystal error as the host sees it), when the host clock means something;
    * inter-arrival: host time between consecutive blocks;
    * lateness jitter: arrival time minus the mapped time of the block's last
      sample, minus its minimum (how late blocks arrive beyond the earliest one).
    """
    blocks = [s for s in cap.samples if len(s.device_us)]
    idx = np.array([s.sample_index for s in blocks], dtype=np.float64)
    t_us = np.array([s.device_us[0] for s in blocks], dtype=np.float64)
    n = cap.n_samples
    measured = float("nan")
    if idx.size >= 2 and t_us[-1] > t_us[0]:
        slope = np.polyfit((t_us - t_us[0]) / 1e6, idx - idx[0], 1)[0]
        measured = float(slope)
    error_ppm = (measured / nominal_hz - 1.0) * 1e6 if nominal_hz else float("nan")
    continuous = all(
        b.sample_index == (a.sample_index + len(a.device_us)) & 0xFFFFFFFF
        for a, b in itertools.pairwise(blocks)
    )
    arrivals = np.array([s.received_at for s in blocks], dtype=np.float64)
    last_us = np.array([s.device_us[-1] for s in blocks], dtype=np.float64)
    clock_ppm = None
    inter: dict = {}
    late: dict = {}
    if host_clock_meaningful and arrivals.size >= 3 and arrivals[-1] > arrivals[0]:
        # Lower envelope would be better; over a few seconds a fit is enough for a figure.
        fit = np.polyfit(arrivals - arrivals[0], (last_us - last_us[0]) / 1e6, 1)[0]
        clock_ppm = float((fit - 1.0) * 1e6)
        inter = percentiles(np.diff(arrivals) * 1e3)
        lateness = (arrivals - arrivals[0]) - (last_us - last_us[0]) / 1e6
        late = percentiles((lateness - lateness.min()) * 1e3)
    return RateFigures(
        nominal_hz,
        measured,
        error_ppm,
        n,
        cap.device_span_s(),
        continuous,
        clock_ppm,
        inter,
        late,
    )


def fmt_ms(figures: dict) -> str:
    """``p50 1.2 / p95 3.4 / p99 5.6 / max 7.8 ms (n=100)``."""
    if not figures:
        return "n/a"
    parts = [f"{k} {figures[k]:.3g}" for k in ("p50", "p95", "p99", "max") if k in figures]
    return " / ".join(parts) + f" ms (n={figures.get('n', 0)})"
