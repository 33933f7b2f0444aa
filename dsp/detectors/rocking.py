"""Rocking: a deliberate 0.4-3 Hz oscillation of the force (DESIGN.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from knotsense.dsp.detectors.interval import EPS as _EPS
from knotsense.dsp.detectors.records import Event, Onset, RockingEpisode
from knotsense.dsp.filters import time_steps
from knotsense.errors import ConfigurationError

FloatArray = NDArray[np.float64]

__all__ = ["RockingDetector"]


@dataclass
class _Cycle:
    start: float
    end: float
    p2p: float
    mean: float


class RockingDetector:
    """Rocking: >= ``min_cycles`` consecutive cycles at ``min_freq``-``max_freq`` Hz whose
    peak-to-peak reaches ``max(min_p2p, rel_p2p * mean force)``.

    Cycles are cut at upward zero crossings of the band-passed force (a Schmitt
    trigger at +-``hysteresis`` of the required swing rejects noise), and each is
    judged on its own period and swing, so breathing (0.15-0.33 Hz, a few % of the
    load) fails twice. A cycle whose period differs from the previous one by more
    than ``max_ratio`` starts a new run (a breath merged with a rocking cycle).
    ``tolerance`` widens the band by 10 % for jitter in the
    period estimate. The onset fires when the ``min_cycles``-th cycle completes;
    the episode closes at the first cycle that fails (or when no cycle completes
    within the longest allowed period). A failing cycle that holds bins
    interpolated over a short data hole is unknown, not failed: the run goes
    on without counting it; a hole longer than ``max_gap`` breaks the run.

    Live latency (the issue asks for "about two cycles"; the definition's three
    consecutive cycles win): the :class:`Onset` is announced when the third
    qualifying cycle is complete -- at the trigger's rise after the upward
    crossing that ends it -- so ``detected_at - start`` is 3 periods plus at
    most half a period and a bin, and never less than 2.5 periods. Counted from
    the end of the first full cycle that is two cycles (plus the trigger's
    half-period at most); counted from the true start of a rocking that fades
    in, one period more when its first cycle is too small to count. Nothing is
    announced on fewer cycles: two cycles are not rocking.
    """

    kind: ClassVar[str] = "rocking"

    def __init__(
        self,
        dt: float,
        min_freq: float = 0.4,
        max_freq: float = 3.0,
        min_p2p: float = 8.0,
        rel_p2p: float = 0.15,
        min_cycles: int = 3,
        hysteresis: float = 0.15,
        tolerance: float = 0.1,
        max_ratio: float = 1.3,
    ) -> None:
        if not 0 < min_freq < max_freq:
            raise ConfigurationError(f"rocking band {min_freq}-{max_freq} Hz is not ordered")
        if max_freq * (1 + tolerance) >= 0.5 / dt:
            raise ConfigurationError(f"rocking max frequency {max_freq} Hz is too close to Nyquist")
        if min_cycles < 1 or min_p2p < 0 or rel_p2p < 0:
            raise ConfigurationError("rocking needs min_cycles >= 1 and non-negative swings")
        self.dt = float(dt)
        self.min_freq, self.max_freq = float(min_freq), float(max_freq)
        self.min_p2p, self.rel_p2p = float(min_p2p), float(rel_p2p)
        self.min_cycles = int(min_cycles)
        self.hysteresis, self.tolerance = float(hysteresis), float(tolerance)
        self.max_ratio = float(max_ratio)
        self.min_period = 1.0 / (self.max_freq * (1 + tolerance))
        self.max_period = 1.0 / (self.min_freq * (1 - tolerance))
        self.reset()

    def reset(self) -> None:
        self._extended = False
        self._filled: list[float] = []  # centres of bins interpolated over short holes
        self._run: list[_Cycle] = []
        self._run_floor = -math.inf  # a look-back never reaches into the previous episode
        self._t_end = math.nan
        self._reset_cycles()

    def _reset_cycles(self) -> None:
        self._state = 0
        self._zc = math.nan
        self._b_last = math.nan
        self._prev_t = math.nan
        self._prev_x = math.nan
        self._buf_t = np.empty(0)
        self._buf_x = np.empty(0)
        self._buf_m = np.empty(0)
        # Live chunks without a cycle boundary only queue their bins here; the
        # buffer is joined and trimmed to ``_anchor`` when a boundary needs it
        # (anchors never decrease, so trimming late keeps exactly the same bins).
        self._parts: list[tuple[FloatArray, FloatArray, FloatArray]] = []
        self._anchor = math.nan

    def _buffer(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """The bins kept from earlier chunks (queued parts joined, trimmed to the anchor)."""
        if self._parts:
            bt = np.concatenate([self._buf_t, *(p[0] for p in self._parts)])
            bx = np.concatenate([self._buf_x, *(p[1] for p in self._parts)])
            bm = np.concatenate([self._buf_m, *(p[2] for p in self._parts)])
            keep = int(np.searchsorted(bt, self._anchor, "left"))
            self._buf_t, self._buf_x, self._buf_m = bt[keep:], bx[keep:], bm[keep:]
            self._parts = []
        return self._buf_t, self._buf_x, self._buf_m

    @property
    def active(self) -> bool:
        return len(self._run) >= self.min_cycles

    def _close_run(self, detected_at: float) -> list[Event]:
        run, self._run = self._run, []
        if len(run) < self.min_cycles:
            return []
        self._run_floor = run[-1].end
        start, end = run[0].start, run[-1].end
        return [
            RockingEpisode(
                start,
                end,
                detected_at,
                1.0 / float(np.median([c.end - c.start for c in run])),
                len(run),
                float(np.median([c.p2p for c in run])),
                float(np.mean([c.mean for c in run])),
            )
        ]

    def feed_floats(
        self, tt: FloatArray, xx: FloatArray, mm: FloatArray, tl: list, xl: list, ml: list
    ) -> list[Event]:
        """A few bins (live chunks) given also as Python floats.

        Done here in plain Python, with the vector code's arithmetic, when only
        the trigger state, the last crossing, the buffer and -- while no run is
        open -- the last boundary change: no hole, no cycle boundary that could
        count (breathing's long periods cannot), no timeout of a running
        cycle. Anything else goes to :meth:`process`.
        """
        lim = 1.5 * self.dt
        pt, px = self._prev_t, self._prev_x
        prev = pt if math.isfinite(pt) else tl[0]
        hyst, lo, rel = self.hysteresis, self.min_p2p, self.rel_p2p
        state, zc, b_last = self._state, self._zc, self._b_last
        idle = not self._run
        for t, x, m in zip(tl, xl, ml, strict=True):
            if t - prev > lim or x != x or m != m:
                return self.process(tt, xx, mm)
            if px <= 0 and x > 0:
                zc = pt + (-px) / (x - px) * (t - pt)
            h = hyst * max(lo, rel * m)
            if x > h:
                if state == -1:  # a cycle boundary at the last upward crossing
                    if t - b_last > self.max_period + _EPS:  # the cycle ran out first
                        if not idle:
                            return self.process(tt, xx, mm)
                        b_last = math.nan
                    if not (idle and not self.min_period <= zc - b_last <= self.max_period):
                        return self.process(tt, xx, mm)  # a cycle that may count
                    b_last = zc  # no run to extend or close (a NaN period lands here too)
                state = 1
            elif x < -h:
                state = -1
            prev = pt = t
            px = x
        t_last = tl[-1]
        if math.isfinite(b_last) and t_last - b_last > self.max_period + _EPS:
            if not idle:
                return self.process(tt, xx, mm)  # a running cycle times out
            b_last = math.nan
        if b_last is not self._b_last:
            self._extended = False  # as _close_extended leaves it
        self._state, self._zc, self._b_last = state, zc, b_last
        self._prev_t, self._prev_x = t_last, xl[-1]
        self._t_end = t_last
        anchor = b_last if math.isfinite(b_last) else zc
        if math.isfinite(anchor):
            self._anchor = max(anchor, t_last - 10 * self.max_period) - self.max_period
            self._parts.append((tt, xx, mm))
            if len(self._parts) > 64:
                self._buffer()  # bound the memory
        else:
            self._buf_t = self._buf_x = self._buf_m = np.empty(0)
            self._parts = []
        return []

    def process(self, t: ArrayLike, osc: ArrayLike, level: ArrayLike) -> list[Event]:
        """Feed bins: centres *t*, band-passed force *osc*, filtered total *level*."""
        tt = np.asarray(t, dtype=np.float64)
        xx = np.asarray(osc, dtype=np.float64)
        mm = np.asarray(level, dtype=np.float64)
        events: list[Event] = []
        if tt.size == 0:
            return events
        first = self._prev_t if math.isfinite(self._prev_t) else tt[0]
        steps = time_steps(tt, first)
        jumps = np.flatnonzero(steps > 1.5 * self.dt).tolist()
        bounds = [0, *jumps, tt.size]
        for a, b in pairwise(bounds):
            if a == b:
                continue
            if a in jumps:  # a hole in the data breaks any run
                events += self._close_run(float(tt[a]) + self.dt / 2)
                self._reset_cycles()
                self._run_floor = float(tt[a])
            events += self._segment(tt[a:b], xx[a:b], mm[a:b])
        self._t_end = float(tt[-1])
        return events

    def _segment(self, t: FloatArray, x: FloatArray, m: FloatArray) -> list[Event]:
        events: list[Event] = []
        half = self.dt / 2
        # Upward zero crossings, interpolated; the previous bin joins for the first one.
        et = np.concatenate(([self._prev_t], t))
        ex = np.concatenate(([self._prev_x], x))
        zi = np.flatnonzero((ex[:-1] <= 0) & (ex[1:] > 0))
        zt = et[zi] + (-ex[zi]) / (ex[zi + 1] - ex[zi]) * (et[zi + 1] - et[zi])
        # Schmitt trigger state per bin, carried across chunks.
        h = self.hysteresis * np.maximum(self.min_p2p, self.rel_p2p * m)
        s = np.where(x > h, 1, np.where(x < -h, -1, 0))
        idx = np.maximum.accumulate(np.where(s != 0, np.arange(s.size), -1))
        st = np.where(idx >= 0, s[np.maximum(idx, 0)], self._state)
        before = np.concatenate(([self._state], st[:-1]))
        rises = np.flatnonzero((st == 1) & (before == -1))
        pos = np.searchsorted(zi, rises, "right") - 1  # zi[k] is the chunk index of the crossing
        bounds_t = np.where(pos >= 0, zt[np.maximum(pos, 0)] if zt.size else math.nan, self._zc)
        # Bins of the cycle in progress plus this chunk.
        buf_t, buf_x, buf_m = self._buffer()
        at = np.concatenate((buf_t, t))
        ax = np.concatenate((buf_x, x))
        am = np.concatenate((buf_m, m))
        for r, bt in zip(rises.tolist(), bounds_t.tolist(), strict=True):
            rise_t = float(t[r])
            if math.isfinite(self._b_last) and rise_t - self._b_last > self.max_period + _EPS:
                events += self._time_out(at, ax, am)  # it ran out before this rise came
            prev = self._b_last
            self._b_last = bt
            if not math.isfinite(prev):
                continue
            period = bt - prev
            ok = self.min_period <= period <= self.max_period
            if ok:
                lo = int(np.searchsorted(at, prev, "left"))
                hi = int(np.searchsorted(at, bt, "left"))
                seg_x, seg_m = ax[lo:hi], am[lo:hi]
                ok = hi > lo
            if ok:
                p2p = float(seg_x.max() - seg_x.min())
                mean = float(seg_m.mean())
                ok = p2p >= max(self.min_p2p, self.rel_p2p * mean)
            if ok and self._run:
                # A cycle far from its neighbour's period is not the same rocking
                # (typically a breath merged with the first or last rocking cycle).
                ratio = period / (self._run[-1].end - self._run[-1].start)
                if not 1 / self.max_ratio <= ratio <= self.max_ratio:
                    if self._spoilt(prev, bt):
                        continue
                    events += self._close_extended(at, ax, am, bt, rise_t + half)
                    ok = not self._extended  # a cycle the extension took is not a new start
            if ok:
                if not self._run:
                    self._run += self._look_back(at, ax, am, prev, period)
                self._run.append(_Cycle(prev, bt, p2p, mean))
                if len(self._run) == self.min_cycles:
                    events.append(Onset(self.kind, self._run[0].start, rise_t + half))
            elif self._run and self._spoilt(prev, bt):
                continue  # a short data hole spoilt this cycle: the run goes on uncounted
            else:
                detected = rise_t
                if period > self.max_period:
                    k = int(np.searchsorted(at, prev + self.max_period + _EPS, "right"))
                    detected = min(detected, float(at[min(k, at.size - 1)]))
                limit = min(bt, prev + self.max_period)
                events += self._close_extended(at, ax, am, limit, detected + half)
        self._state = int(st[-1])
        if zt.size:
            self._zc = float(zt[-1])
        self._prev_t, self._prev_x = float(t[-1]), float(x[-1])
        if math.isfinite(self._b_last) and at[-1] - self._b_last > self.max_period + _EPS:
            events += self._time_out(at, ax, am)
        # Keep the bins the next cycle can need: from its start (the last boundary,
        # or else the last crossing, which no later boundary precedes).
        anchor = self._b_last if math.isfinite(self._b_last) else self._zc
        if math.isfinite(anchor):
            anchor = max(anchor, float(at[-1]) - 10 * self.max_period)  # bound the memory
            anchor -= self.max_period  # room for the look-back of a first cycle
            keep = int(np.searchsorted(at, anchor, "left"))
            self._buf_t, self._buf_x, self._buf_m = at[keep:], ax[keep:], am[keep:]
            self._anchor = anchor
            if self._filled:
                self._filled = [f for f in self._filled if f >= anchor]
        else:
            self._buf_t = self._buf_x = self._buf_m = np.empty(0)
        return events

    def mark_filled(self, centres: list[float]) -> None:
        """Bins about to be fed were interpolated over a short hole (``BinAverager``).

        A cycle that contains one and fails is not evidence that rocking
        stopped -- the hole flattened it -- so a running episode is bridged
        over it (the cycle is not counted) instead of being split in two.
        """
        self._filled += centres

    def _spoilt(self, start: float, end: float) -> bool:
        return any(start <= f < end for f in self._filled)

    def _time_out(self, at: FloatArray, ax: FloatArray, am: FloatArray) -> list[Event]:
        """Give up on a cycle longer than allowed: the run ends at the first bin that
        makes it certain, whether a chunk ends there or a later rise comes first."""
        k = int(np.searchsorted(at, self._b_last + self.max_period + _EPS, "right"))
        limit = self._b_last + self.max_period
        events = self._close_extended(at, ax, am, limit, float(at[k]) + self.dt / 2)
        self._b_last = math.nan
        return events

    def _swing(
        self, at: FloatArray, ax: FloatArray, am: FloatArray, lo_t: float, hi_t: float, first: bool
    ) -> _Cycle | None:
        """A rocking cycle in ``[lo_t, hi_t)`` the trigger could not cut, or None.

        It must swing up then down by the required amount and sit near zero at
        the edge that touches nothing detected (its start when *first*, else its end).
        """
        lo = int(np.searchsorted(at, lo_t, "left"))
        mid = int(np.searchsorted(at, (lo_t + hi_t) / 2, "left"))
        hi = int(np.searchsorted(at, hi_t, "left"))
        if not (lo < mid < hi) or at[lo] - lo_t > self.dt + _EPS:
            return None
        mean = float(am[lo:hi].mean())
        need = max(self.min_p2p, self.rel_p2p * mean)
        up, down = float(ax[lo:mid].max()), float(ax[mid:hi].min())
        edge = float(ax[lo] if first else ax[hi - 1])
        swings = up - down >= need and up >= 0.35 * need and down <= -0.35 * need
        if swings and abs(edge) <= 0.25 * (up - down):
            return _Cycle(lo_t, hi_t, up - down, mean)
        return None

    def _look_back(
        self, at: FloatArray, ax: FloatArray, am: FloatArray, start: float, period: float
    ) -> list[_Cycle]:
        """The cycle just before a run's first one, if it was rocking the trigger missed.

        When rocking starts while the trigger is already high, its first upward
        crossing is not a boundary and the first cycle would be lost; it is
        recovered when the window one period earlier is a clean swing that
        starts after the previous run ended.
        """
        if start - period < self._run_floor:
            return []
        cycle = self._swing(at, ax, am, start - period, start, first=True)
        return [cycle] if cycle else []

    def _close_extended(
        self, at: FloatArray, ax: FloatArray, am: FloatArray, limit: float, detected_at: float
    ) -> list[Event]:
        """Close the run, first adding its last cycle if the trigger missed it.

        Mirror of the look-back: rocking that stops where breathing cannot lift
        the trigger again leaves its last cycle uncut. The window must end by
        *limit* (data already seen), so the answer never depends on chunking.
        """
        events: list[Event] = []
        self._extended = False
        if self._run:
            last = self._run[-1]
            period = last.end - last.start
            if last.end + period <= limit + _EPS:
                cycle = self._swing(at, ax, am, last.end, last.end + period, first=False)
                if cycle is not None:
                    self._run.append(cycle)
                    self._extended = True
                    if len(self._run) == self.min_cycles:
                        events.append(Onset(self.kind, self._run[0].start, detected_at))
        return events + self._close_run(detected_at)

    def finish(self) -> list[Event]:
        """Close a running episode at the end of the data."""
        return self._close_run(self._t_end + self.dt / 2)
