"""Interval detection: maximal runs of the level at or above a threshold, dips bridged.

The common engine of contact, release and overpressure (DESIGN.md, "Detection
semantics"). It runs on the decimated, filtered stream the pipeline makes (bin
centres on a regular grid, with jumps where data were missing), vectorised per
chunk with a Python loop only over state changes; every decision is computed
from the same bins in the same order however the input was chunked.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from knotsense.dsp.detectors.records import Episode, Event, Onset
from knotsense.errors import ConfigurationError

FloatArray = NDArray[np.float64]
EPS = 1e-6  # seconds: bin times are on a float grid
SMALL = 32  # up to this many bins per call, the steady cases run in plain Python

__all__ = ["IntervalDetector"]


class IntervalDetector:
    """Maximal intervals where ``level >= threshold``, bridging dips up to ``gap`` s.

    An interval that has lasted ``min_duration`` is announced with an
    :class:`Onset`; when it closes (a dip or hole longer than ``gap``, or
    ``finish``) it becomes an episode. Reported start/end are the bin edges
    moved back by ``delay`` (the low-pass group delay), so a ramp through the
    threshold is dated when the force crossed it, not when the filter did.
    """

    kind: ClassVar[str] = ""

    def __init__(
        self, threshold: float, gap: float, min_duration: float, dt: float, delay: float = 0.0
    ) -> None:
        for name, value in (("threshold", threshold), ("dt", dt)):
            if not (math.isfinite(value) and value > 0):
                raise ConfigurationError(f"{self.kind} {name} must be > 0, got {value!r}")
        if not (math.isfinite(gap) and gap >= 0):
            raise ConfigurationError(f"{self.kind} gap must be >= 0, got {gap!r}")
        if not (math.isfinite(min_duration) and min_duration >= 0):
            raise ConfigurationError(f"{self.kind} duration must be >= 0, got {min_duration!r}")
        self.threshold, self.gap, self.min_duration = float(threshold), float(gap), min_duration
        self.dt, self.delay = float(dt), float(delay)
        self.reset()

    def reset(self) -> None:
        self._open = False
        self._reached = False
        self._start = math.nan  # centre of the first active bin
        self._last = math.nan  # centre of the last active bin
        self._t_end = math.nan
        self._vals: list[FloatArray] = []
        self._pend: list[FloatArray] = []

    @property
    def active(self) -> bool:
        """An announced episode is running (live display)."""
        return self._open and self._reached

    def _start_time(self) -> float:
        return self._start - self.dt / 2 - self.delay

    def _close(self, detected_at: float) -> list[Event]:
        events: list[Event] = []
        if self._open and self._reached:
            vals = np.concatenate(self._vals)
            end = self._last + self.dt / 2 - self.delay
            events.append(self._episode(self._start_time(), end, detected_at, vals))
        self._open = self._reached = False
        self._vals, self._pend = [], []
        return events

    def _episode(self, start: float, end: float, detected_at: float, vals: FloatArray) -> Episode:
        raise NotImplementedError

    def process(self, t: ArrayLike, level: ArrayLike) -> list[Event]:
        """Feed bins (centres *t*, filtered total *level*); returns onsets and closed episodes."""
        tt = np.asarray(t, dtype=np.float64)
        vv = np.asarray(level, dtype=np.float64)
        if tt.size == 0:
            return []
        if tt.size <= SMALL:
            vl = vv.tolist()
            if all(v == v for v in vl):
                return self.feed_floats(tt, vv, tt.tolist(), vl, min(vl), max(vl))
        return self._vector(tt, vv)

    def feed_floats(
        self, tt: FloatArray, vv: FloatArray, tl: list, vl: list, lo: float, hi: float
    ) -> list[Event]:
        """A few bins (live chunks): the steady cases in plain Python, else :meth:`_vector`.

        *lo* and *hi* are ``min(vl)`` and ``max(vl)`` (NaN-free), computed once
        for every detector. Only the cases whose outcome is obvious take the
        short way -- closed and everything below the threshold, open and
        everything above it with no hole, open and a dip that does not yet
        close -- and they change the state exactly as the vector code would, so
        results do not depend on it.
        """
        thr = self.threshold
        if not self._open:
            if hi >= thr:
                return self._vector(tt, vv)
            self._t_end = tl[-1]
            return []
        if lo >= thr:
            prev, limit, dt = self._last, self.gap + EPS, self.dt
            for x in tl:
                if x - prev - dt > limit:
                    return self._vector(tt, vv)
                prev = x
            self._vals.extend(self._pend)
            self._vals.append(vv)
            self._pend = []
            self._last = tl[-1]
            events: list[Event] = []
            if not self._reached:
                need = self._start + self.min_duration - self.dt - EPS
                for x in tl:
                    if x >= need:
                        self._reached = True
                        events.append(Onset(self.kind, self._start_time(), x + self.dt / 2))
                        break
            self._t_end = tl[-1]
            return events
        if hi < thr and tl[-1] <= self._last + self.gap + EPS:
            self._pend.append(vv)
            self._t_end = tl[-1]
            return []
        return self._vector(tt, vv)

    def _vector(self, tt: FloatArray, vv: FloatArray) -> list[Event]:
        events: list[Event] = []
        half = self.dt / 2
        ia = np.flatnonzero(vv >= self.threshold)
        if ia.size:
            ta = tt[ia]
            prev = np.concatenate(([self._last if self._open else -np.inf], ta[:-1]))
            new = ta - prev - self.dt > self.gap + EPS
            bounds = np.flatnonzero(new).tolist()
            if not bounds or bounds[0] != 0:
                bounds.insert(0, 0)  # continuation of the interval open before this chunk
            bounds.append(ia.size)
            for a, b in pairwise(bounds):
                i0, i1 = int(ia[a]), int(ia[b - 1])
                if new[a]:
                    if self._open:
                        j = int(np.searchsorted(tt, self._last + self.gap + EPS, "right"))
                        events += self._close(float(tt[j]) + half)
                    self._open, self._reached = True, False
                    self._start = float(tt[i0])
                    self._vals, self._pend = [vv[i0 : i1 + 1]], []
                else:
                    self._vals.extend(self._pend)
                    self._vals.append(vv[: i1 + 1])
                    self._pend = []
                self._last = float(tt[i1])
                if not self._reached:
                    need = self._start + self.min_duration - self.dt - EPS
                    seg = ta[a:b]
                    r = int(np.searchsorted(seg, need, "left"))
                    if r < seg.size:
                        self._reached = True
                        events.append(Onset(self.kind, self._start_time(), float(seg[r]) + half))
            if self._open and i1 + 1 < vv.size:
                self._pend = [vv[i1 + 1 :]]
        elif self._open:
            self._pend.append(vv)
        if self._open:
            j = int(np.searchsorted(tt, self._last + self.gap + EPS, "right"))
            if j < tt.size:
                events += self._close(float(tt[j]) + half)
        self._t_end = float(tt[-1])
        return events

    def finish(self) -> list[Event]:
        """Close an open episode at the end of the data."""
        if not self._open:
            return []
        return self._close(self._t_end + self.dt / 2)
