"""The bench procedure: follow a plan, take settled readings, refuse bad data.

:class:`StepTracker` is the procedure's core and has no I/O: feed it device
samples (device time, counts per channel) and reference readings (time, N) in
any chunks; it walks the plan's steps (preloads, then each reading: wait until
the load arrives, wait the settle time, take a reading window that must be
stable) and collects :class:`BenchPoint` s. The same tracker runs live
(:func:`run_bench`, over any device URL) and offline on a simulator
``render()`` (tests), so both see one procedure.

Refusals are :class:`~knotsense.errors.BenchDataError` with one line naming
the step and why: the load never arrived, unstable readings, a saturated
channel, a gauge overload; :func:`validate` adds too few steps and
non-monotonic or saturated curves.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from knotsense.calibration.plan import MIN_STEPS, BenchPlan, Step
from knotsense.errors import BenchDataError, KnotsenseError

REFERENCE_POLL_S = 0.25
"""Device seconds between two gauge readings."""


@dataclass(frozen=True)
class BenchPoint:
    """One settled reading: the reference and every channel's mean counts."""

    series: int
    direction: str
    """"up", "down", "zero" or "creep"."""
    reference_n: float
    raw: tuple[float, ...]
    raw_std: tuple[float, ...] = ()
    reference_std: float = 0.0
    position_mm: tuple[float, float] = (0.0, 0.0)
    hold_s: float = 0.0
    t: float = 0.0
    step: int = -1
    loaded_s: float | None = None
    """Seconds the sensor had been under load (since the contact began) at the reading."""

    @property
    def t_known(self) -> bool:
        """The reading's device time is known (a table without a ``t_s`` column has NaN)."""
        return bool(np.isfinite(self.t))

    def to_dict(self) -> dict[str, Any]:
        d = {
            "series": self.series,
            "direction": self.direction,
            "reference_n": round(self.reference_n, 5),
            "raw": [round(v, 2) for v in self.raw],
            "position_mm": list(self.position_mm),
            "hold_s": self.hold_s,
        }
        if self.loaded_s is not None:
            d["loaded_s"] = round(self.loaded_s, 3)
        if self.t_known:
            d["t_s"] = round(self.t, 3)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BenchPoint:
        return cls(
            int(d["series"]),
            str(d["direction"]),
            float(d["reference_n"]),
            tuple(float(v) for v in d["raw"]),
            position_mm=tuple(float(v) for v in d.get("position_mm", (0, 0))),  # type: ignore[arg-type]
            hold_s=float(d.get("hold_s", 0.0)),
            loaded_s=None if d.get("loaded_s") is None else float(d["loaded_s"]),
            t=float(d.get("t_s", np.nan)),
        )


@dataclass(frozen=True)
class BenchData:
    """Everything the fit needs: the points, the channel geometry, and where they came from."""

    points: tuple[BenchPoint, ...]
    channels: int
    positions_mm: tuple[tuple[float, float], ...] = ()
    adc_limits: tuple[float, float] | None = None
    sensor: str = ""
    plan: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    serial: str = ""
    firmware: str = ""

    def shares(self, position: tuple[float, float]) -> np.ndarray:
        """Each channel's share of a load at *position* (rigid plate on equal springs)."""
        return load_shares(self.positions_mm, position, self.channels)


def load_shares(
    positions_mm: tuple[tuple[float, float], ...] | list,
    position: tuple[float, float],
    channels: int,
) -> np.ndarray:
    """Shares of a total load at *position* over the channels: 1/C at the centroid."""
    if channels == 1 or not positions_mm:
        return np.full(channels, 1.0 / channels)
    p = np.asarray(positions_mm, dtype=float)
    rel = p - p.mean(axis=0)
    proj = np.linalg.pinv(rel.T @ rel) @ rel.T
    cop = np.asarray(position, dtype=float) - p.mean(axis=0)
    w = np.maximum(1.0 / channels + cop @ proj, 0.0)
    return w / w.sum()


# --- the procedure's core ------------------------------------------------------


@dataclass
class _Window:
    start: float
    end: float


class StepTracker:
    """Walks a plan over incoming data (see the module docstring).

    Args:
        plan: the bench plan.
        channels: channel count.
        manual: no reference gauge: each step waits for :meth:`confirm` and
            the reference is the nominal force; stability is judged on the
            device's own signal.
        adc_limits: (min, max) counts; a reading touching them is refused as saturated.
    """

    def __init__(
        self,
        plan: BenchPlan,
        channels: int,
        *,
        manual: bool = False,
        adc_limits: tuple[float, float] | None = None,
    ) -> None:
        self.plan = plan
        self.channels = channels
        self.manual = manual
        self.adc_limits = adc_limits
        self.steps: list[Step] = plan.steps()
        self.points: list[BenchPoint] = []
        self._n = 0
        self._tb = np.zeros(4096)
        self._rawb = np.zeros((4096, channels))
        self._rn = 0
        self._rtb = np.zeros(1024)
        self._rvb = np.zeros(1024)
        self.t_now = -np.inf
        self.preloads_done = 0
        self._pre_state = "up"
        self._pre_since: float | None = None
        self._ready = -np.inf  # data before this belongs to earlier steps
        self._arrive: float | None = None
        self._creep_arrive: float | None = None
        self._step_started: float | None = None
        self._contact_t: float | None = None  # when the current contact (load from rest) began
        self.waiting_for_confirm = manual and plan.preloads == 0
        self.reason = ""
        self._unstable = ""
        self.status = "preload" if plan.preloads else "wait"

    # -- feeding -----------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return len(self.points) == len(self.steps)

    @property
    def current(self) -> Step | None:
        return None if self.done else self.steps[len(self.points)]

    @property
    def in_preload(self) -> bool:
        return self.preloads_done < self.plan.preloads

    def feed_samples(self, t: np.ndarray, raw: np.ndarray) -> None:
        """Device samples: times (s, increasing) and counts, shape (n, channels)."""
        t = np.asarray(t, dtype=np.float64)
        n = t.size
        if n == 0:
            return
        while self._n + n > self._tb.size:
            self._tb = np.concatenate((self._tb, np.zeros(self._tb.size)))
            self._rawb = np.concatenate((self._rawb, np.zeros_like(self._rawb)))
        self._tb[self._n : self._n + n] = t
        self._rawb[self._n : self._n + n] = np.asarray(raw, dtype=np.float64).reshape(
            n, self.channels
        )
        self._n += n
        self.t_now = max(self.t_now, float(t[-1]))
        self._advance()

    def feed_reference(self, t: float, force_n: float) -> None:
        """One reference reading (N) at device time *t*."""
        if self._rn == self._rtb.size:
            self._rtb = np.concatenate((self._rtb, np.zeros(self._rtb.size)))
            self._rvb = np.concatenate((self._rvb, np.zeros(self._rvb.size)))
        self._rtb[self._rn] = t
        self._rvb[self._rn] = force_n
        self._rn += 1
        self._advance()

    def confirm(self, t: float | None = None) -> None:
        """Manual mode: the operator has placed the load (at device time *t*, default now)."""
        self.waiting_for_confirm = False
        t = self.t_now if t is None else t
        if self.in_preload:
            self.preloads_done += 1
            self.waiting_for_confirm = True
            if not self.in_preload:
                self._ready = t
                self.status = "wait"
            return
        step = self.current
        if step is None:
            return
        if step.direction == "creep" and self._creep_arrive is not None:
            self._arrive = self._creep_arrive
        else:
            self._arrive = t
        if step.direction == "creep" and self._creep_arrive is None:
            self._creep_arrive = self._arrive
        self._step_started = t
        self.status = "settle"

    # -- internals ---------------------------------------------------------------------

    def _window(self, start: float, end: float) -> np.ndarray:
        t = self._tb[: self._n]
        a, b = np.searchsorted(t, start), np.searchsorted(t, end)
        return self._rawb[a:b]

    def _tol(self, nominal: float) -> float:
        return max(self.plan.tolerance_n, self.plan.tolerance_pct / 100.0 * nominal)

    def _refs_after(self, t0: float) -> tuple[np.ndarray, np.ndarray]:
        rt = self._rtb[: self._rn]
        a = int(np.searchsorted(rt, t0))
        return rt[a:], self._rvb[a : self._rn]

    def _advance(self) -> None:
        while not self.done:
            before = (len(self.points), self.preloads_done, self.status)
            if self.in_preload:
                self._preload()
            else:
                self._step()
            if (len(self.points), self.preloads_done, self.status) == before:
                break

    def _preload(self) -> None:
        if self.manual:
            return  # confirm() counts them
        fs = self.plan.full_scale_n
        rt, rv = self._refs_after(self._ready)
        if rt.size == 0:
            return
        if self._pre_state == "up":
            hit = np.flatnonzero(rv >= fs - self._tol(fs))
            if hit.size:
                self._pre_state = "hold"
                self._pre_since = float(rt[hit[0]])
                self._ready = self._pre_since
        elif self._pre_state == "hold":
            assert self._pre_since is not None
            if rt[-1] >= self._pre_since + self.plan.preload_hold_s:
                self._pre_state = "down"
                self._ready = self._pre_since + self.plan.preload_hold_s
        else:
            hit = np.flatnonzero(rv <= self._tol(0.0) + 0.02 * fs)
            if hit.size:
                self.preloads_done += 1
                self._pre_state = "up"
                self._ready = float(rt[hit[0]])
                if not self.in_preload:
                    self.status = "wait"

    def _step(self) -> None:
        step = self.current
        assert step is not None
        if self._step_started is None:
            self._step_started = max(self._ready, self.t_now if np.isfinite(self.t_now) else 0.0)
        if self.t_now - self._step_started > self.plan.step_timeout_s:
            why = (
                self._unstable
                or self.reason
                or (
                    f"the load never reached {step.nominal_n:g} N "
                    f"(within {self._tol(step.nominal_n):.2g} N)"
                )
            )
            raise BenchDataError(f"{step.label}: {why} within {self.plan.step_timeout_s:g} s")
        if self._arrive is None:
            if self.manual:
                self.status = "confirm"
                self.waiting_for_confirm = True
                return
            if step.direction == "creep" and self._creep_arrive is not None:
                self._arrive = self._creep_arrive
            else:
                rt, rv = self._refs_after(self._ready)
                hit = np.flatnonzero(np.abs(rv - step.nominal_n) <= self._tol(step.nominal_n))
                if hit.size == 0:
                    self.status = "wait"
                    return
                self._arrive = float(rt[hit[0]])
                if step.direction == "creep":
                    self._creep_arrive = self._arrive
            self.status = "settle"
        start = max(self._arrive + step.settle_s, self._ready)
        end = start + self.plan.read_s
        if self.t_now < end:
            self.status = "settle" if self.t_now < start else "read"
            return
        point, why = self._reading(step, start, end)
        if point is None:
            # Slide the window on and try again (the signal may still be settling).
            self.reason = why
            if why.startswith("unstable"):
                self._unstable = why
            self.status = "unstable"
            self._ready = start + self.plan.read_s / 2
            if why.startswith("the load moved") and not self.manual and step.direction != "creep":
                self._arrive = None
            return
        self.points.append(point)
        self._ready = end
        self._arrive = None
        if step.direction != "creep":
            self._creep_arrive = None  # a zero between creep dwells: the next one starts afresh
        self._step_started = None
        self.reason = ""
        self._unstable = ""
        self.status = "wait"

    def _reading(self, step: Step, start: float, end: float) -> tuple[BenchPoint | None, str]:
        win = self._window(start, end)
        n = win.shape[0]
        if n < 4:
            return None, f"too few samples in the {self.plan.read_s:g} s reading window ({n})"
        if self.adc_limits is not None and step.direction != "zero":
            lo, hi = self.adc_limits
            # An unsigned ADC (FSR) rests at 0 with no load: only its top is saturation.
            at_limit = (win >= hi) | ((win <= lo) if lo < 0 else False)
            bad = np.flatnonzero(at_limit.any(axis=0))
            if bad.size:
                which = ", ".join(map(str, bad.tolist()))
                raise BenchDataError(f"{step.label}: channel {which} saturated (ADC at its limit)")
        mean = win.mean(axis=0)
        std = win.std(axis=0)
        if self.manual:
            ref, ref_std = step.nominal_n, 0.0
        else:
            rt, rv = self._rtb[: self._rn], self._rvb[: self._rn]
            rs = (rt >= start) & (rt <= end)
            if not rs.any():
                return None, "no reference reading in the reading window"
            ref, ref_std = float(rv[rs].mean()), float(rv[rs].std())
            span = float(np.ptp(rv[rs]))
            if abs(ref - step.nominal_n) > self._tol(step.nominal_n):
                return None, f"the load moved: reference {ref:.3g} N, expected {step.nominal_n:g} N"
            limit = max(self.plan.stability_pct / 100.0 * max(step.nominal_n, 1.0), 0.01)
            if span > limit:
                return None, (
                    f"unstable readings: the reference moved {span:.3g} N during the "
                    f"{self.plan.read_s:g} s reading (limit {limit:.2g} N)"
                )
        # The device's own signal must have settled: compare the window's halves.
        half = n // 2
        drift = np.abs(win[half:].mean(axis=0) - win[:half].mean(axis=0))
        noise = 4.0 * std / np.sqrt(max(half, 1)) + 1.0
        zero_raw = self._zero_raw(step)
        span_c = np.abs(mean - zero_raw) if zero_raw is not None else np.abs(mean)
        allowed = np.maximum(self.plan.stability_pct / 100.0 * span_c, noise)
        bad = np.flatnonzero(drift > allowed)
        if bad.size and step.direction != "zero":
            ch = int(bad[0])
            return None, (
                f"unstable readings: channel {ch} drifted {drift[ch]:.3g} counts during the "
                f"{self.plan.read_s:g} s reading (limit {allowed[ch]:.3g})"
            )
        loaded_s = None
        if step.direction == "zero":
            self._contact_t = None
        else:
            if self._contact_t is None:
                self._contact_t = self._contact_start()
            loaded_s = float(start + self.plan.read_s / 2 - self._contact_t)
        point = BenchPoint(
            step.series,
            step.direction,
            ref,
            tuple(float(v) for v in mean),
            tuple(float(v) for v in std),
            ref_std,
            step.position_mm,
            step.hold_s,
            float(start),
            step.index,
            loaded_s,
        )
        return point, ""

    def _contact_start(self) -> float:
        """When the load last left rest before this step arrived (the reference rose past 2 %)."""
        arrive = self._arrive if self._arrive is not None else self.t_now
        if self.manual or self._rn == 0:
            return arrive
        rt, rv = self._rtb[: self._rn], self._rvb[: self._rn]
        before = np.flatnonzero((rt <= arrive) & (rv <= 0.02 * self.plan.full_scale_n))
        if before.size == 0:
            return arrive
        k = int(before[-1]) + 1
        return float(rt[k]) if k < rt.size else arrive

    def _zero_raw(self, step: Step) -> np.ndarray | None:
        for p in reversed(self.points):
            if p.direction == "zero":
                return np.asarray(p.raw)
        return None


# --- live runner -----------------------------------------------------------------


@dataclass
class Progress:
    """What a progress display shows."""

    done: int
    total: int
    label: str
    status: str
    reference_n: float | None
    raw: tuple[float, ...] | None
    t: float
    message: str = ""


ProgressHook = Callable[[Progress], None]


async def run_bench(
    device: Any,
    plan: BenchPlan,
    source: Any,
    *,
    progress: ProgressHook | None = None,
    rate_hz: int | None = None,
    idle_timeout: float = 30.0,
) -> BenchData:
    """Run *plan* on a connected :class:`~knotsense.host.device.AsyncDevice`.

    *source* is a :class:`~knotsense.calibration.sources.SerialGauge` (polled
    every :data:`REFERENCE_POLL_S` device seconds) or a
    :class:`~knotsense.calibration.sources.ManualSource` (prompted per step).
    """
    from knotsense.host.device import Samples

    info = await device.get_info()
    c = info.channel_count
    manual = getattr(source, "kind", "") == "manual"
    signed = _sensor_name(info) == "load_cell"  # bipolar bridge ADC; FSR dividers are unipolar
    lo, hi = (-(1 << (info.adc_bits - 1)), (1 << (info.adc_bits - 1)) - 1)
    if not signed:
        lo, hi = 0, (1 << info.adc_bits) - 1
    tracker = StepTracker(plan, c, manual=manual, adc_limits=(lo, hi))
    await device.start_stream(rate_hz=rate_hz) if rate_hz else await device.start_stream()
    t0: float | None = None
    next_poll = -np.inf
    last_raw: tuple[float, ...] | None = None
    last_ref: float | None = None
    confirm_after: float | None = None
    wall0 = time.monotonic()

    def report(message: str = "") -> None:
        if progress is None:
            return
        step = tracker.current
        label = (
            f"preload {tracker.preloads_done + 1}/{plan.preloads}"
            if tracker.in_preload
            else (step.label if step else "done")
        )
        progress(
            Progress(
                len(tracker.points),
                len(tracker.steps),
                label,
                tracker.status,
                last_ref,
                last_raw,
                tracker.t_now,
                message or tracker.reason,
            )
        )

    try:
        async for item in device.stream(timeout=idle_timeout):
            if not isinstance(item, Samples):
                continue
            if item.raw.shape[1] != c:
                raise BenchDataError("the bench needs every channel streamed")
            t_dev = item.device_us.astype(np.float64) * 1e-6
            if t0 is None:
                t0 = float(t_dev[0])
            t = t_dev - t0
            if confirm_after is not None and item.received_at >= confirm_after:
                tracker.confirm(float(t[0]))
                confirm_after = None
            last_raw = tuple(float(v) for v in item.raw[-1])
            tracker.feed_samples(t, item.raw)
            if tracker.done:
                break
            if manual:
                if tracker.waiting_for_confirm and confirm_after is None:
                    report()
                    step = tracker.current
                    text = (
                        f"preload {tracker.preloads_done + 1}/{plan.preloads}: "
                        f"{source.place_text(plan.full_scale_n)}, then remove it; press Enter"
                        if tracker.in_preload
                        else f"{step.label}: {source.place_text(step.nominal_n)}, press Enter"  # type: ignore[union-attr]
                    )
                    await asyncio.to_thread(source.ask, text)
                    confirm_after = item.received_at
                    confirm_after = max(confirm_after, _received_now(device))
                elif tracker.status in ("settle", "read", "unstable"):
                    report(
                        "waiting for the signal to settle" if tracker.status == "unstable" else ""
                    )
                continue
            if tracker.t_now >= next_poll:
                value = await asyncio.to_thread(source.read_n)
                last_ref = value
                tracker.feed_reference(tracker.t_now, value)
                next_poll = tracker.t_now + REFERENCE_POLL_S
                report()
                if tracker.done:
                    break
        else:
            pass
    except BenchDataError:
        raise
    finally:
        with contextlib.suppress(KnotsenseError):
            await device.stop_stream()
    if not tracker.done:
        step = tracker.current
        raise BenchDataError(
            f"{step.label if step else 'bench'}: the device stream ended or went quiet "
            f"for {idle_timeout:g} s before the plan was complete"
        )
    report("done")
    return BenchData(
        tuple(tracker.points),
        c,
        tuple((float(ch.x_mm), float(ch.y_mm)) for ch in info.channels),
        (lo, hi),
        _sensor_name(info),
        plan.to_dict(),
        source.describe(),
        time.monotonic() - wall0,
        info.serial_number,
        info.firmware if isinstance(info.firmware, str) else ".".join(map(str, info.firmware)),
    )


def _received_now(device: Any) -> float:
    try:
        return float(device.transport.clock())
    except Exception:
        return time.time()


def _sensor_name(info: Any) -> str:
    kind = info.channels[0].kind if info.channels else None
    name = getattr(kind, "name", str(kind)).lower()
    return {"load_cell": "load_cell", "fsr": "fsr"}.get(name, name)


def track_arrays(
    plan: BenchPlan,
    t: np.ndarray,
    raw: np.ndarray,
    reference: np.ndarray,
    *,
    positions_mm: tuple[tuple[float, float], ...] = (),
    adc_limits: tuple[float, float] | None = None,
    sensor: str = "",
    chunk_s: float = 0.5,
) -> BenchData:
    """Run the procedure offline on recorded arrays (reference sampled at the sample times)."""
    c = raw.shape[1]
    tracker = StepTracker(plan, c, adc_limits=adc_limits)
    rate = 1.0 / float(np.median(np.diff(t[:100])))
    per = max(1, int(chunk_s * rate))
    poll = max(1, int(REFERENCE_POLL_S * rate))
    for a in range(0, t.size, per):
        b = min(t.size, a + per)
        tracker.feed_samples(t[a:b], raw[a:b])
        for k in range(a, b, poll):
            tracker.feed_reference(float(t[k]), float(reference[k]))
        if tracker.done:
            break
    if not tracker.done:
        step = tracker.current
        why = tracker.reason or "the data ended"
        raise BenchDataError(
            f"{step.label if step else 'bench'}: {why} before the plan was complete"
        )
    return BenchData(
        tuple(tracker.points),
        c,
        positions_mm,
        adc_limits,
        sensor,
        plan.to_dict(),
        {"kind": "simulated", "dialect": "true force"},
        float(t[-1] - t[0]),
    )


# --- validation ------------------------------------------------------------------


def _point_label(p: BenchPoint) -> str:
    return f"series {p.series} {p.direction} {p.reference_n:.4g} N"


def validate(data: BenchData) -> None:
    """Refuse bench data a calibration cannot rest on (one line: which step and why)."""
    loaded = [p for p in data.points if p.direction in ("up", "down")]
    ups = [p for p in loaded if p.direction == "up"]
    levels = sorted({round(p.reference_n, 1) for p in ups})
    if len(levels) < MIN_STEPS:
        raise BenchDataError(
            f"too few steps: {len(levels)} distinct ascending loads, ISO 376 needs at least "
            f"{MIN_STEPS} from 10 to 100 % of the range"
        )
    top = max(levels)
    if levels[0] > 0.1 * top * 1.05:
        raise BenchDataError(
            f"the lowest step is {levels[0]:g} N, above 10 % of the range ({0.1 * top:g} N)"
        )
    if data.adc_limits is not None:
        lo, hi = data.adc_limits
        for p in loaded:
            for ch, v in enumerate(p.raw):
                if v >= hi or (lo < 0 and v <= lo):
                    raise BenchDataError(
                        f"{_point_label(p)}: channel {ch} saturated ({v:.0f} counts)"
                    )
    # Monotonic per series and direction, in the same sense on every series.
    for ch in range(data.channels):
        sense = 0.0
        for s in sorted({p.series for p in loaded}):
            for d in ("up", "down"):
                pts = [p for p in loaded if p.series == s and p.direction == d]
                pts.sort(key=lambda p: p.reference_n)
                for a, b in itertools.pairwise(pts):
                    dr = b.raw[ch] - a.raw[ch]
                    if dr == 0:
                        raise BenchDataError(
                            f"{_point_label(b)}: channel {ch} stopped changing at {b.raw[ch]:.0f} "
                            "counts (saturated?)"
                        )
                    if sense == 0.0:
                        sense = np.sign(dr)
                    elif np.sign(dr) != sense:
                        raise BenchDataError(
                            f"{_point_label(b)}: channel {ch} is not monotonic "
                            f"({a.raw[ch]:.0f} -> {b.raw[ch]:.0f} counts for "
                            f"{a.reference_n:.4g} -> {b.reference_n:.4g} N)"
                        )
