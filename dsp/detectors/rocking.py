"""Rocking: a deliberate 0.4-3 Hz oscillation of the force (DESIGN.md).

The detector reads the band-passed force (total or balance) lobe by lobe. A
Schmitt trigger at ``+-hysteresis`` of the required swing cuts the signal into
half-cycles at its zero crossings (a positive lobe, then a negative one); two
neighbouring lobes make a cycle, judged on its own period and peak-to-peak
against DESIGN.md's rule ``max(min_p2p, rel_p2p * mean)`` on the *local* mean
force (the level over that cycle). Cycles overlap by one lobe, so evidence
comes every half period.

- Entry: ``2 * min_cycles - 2`` consecutive qualifying cycles (that is
  ``min_cycles`` full cycles of lobes) whose periods agree with their running
  median within ``max_ratio``, and the lobe after them already swinging by the
  required amount: the :class:`Onset` comes about ``min_cycles - 0.3`` periods
  after the start, never on two cycles.
- Tracking: the dominant period is tracked (a running mean of the episode's
  cycles), so a frequency that drifts within an episode is followed instead of
  compared with a fixed band per window.
- Exit, with hysteresis: inside an episode a cycle keeps it going at
  ``keep`` times the required swing and within ``max_ratio`` of the tracked
  period; cycles that fail are a break, and a break up to ``max_break`` tracked
  periods (at most ``max_break_s``) is bridged, so a single weak or misshapen
  cycle does not split a steady episode. A swing far above the episode's own
  (``max_jump``: a lift-off or posture step) is not rocking.
- Edges: the episode starts at the upward (or downward) crossing that began
  its first lobe and ends where its last lobe returns through zero, both moved
  by the band-pass phase at the tracked frequency, so slow rocking is not
  dated early or late by the filter.

Everything runs bin by bin in plain Python on the decimated stream (25 Hz), so
the output is the same however the input is chunked; an hour costs a few tens
of milliseconds. Data holes longer than 1.5 bins end any episode; bins
interpolated over short holes (:meth:`RockingDetector.mark_filled`) lengthen
the bridge by their duration instead.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import signal

from knotsense.dsp.detectors.records import Event, Onset, RockingEpisode
from knotsense.errors import ConfigurationError

FloatArray = NDArray[np.float64]

__all__ = ["RockingDetector"]


class RockingDetector:
    """Rocking: >= ``min_cycles`` cycles at ``min_freq``-``max_freq`` Hz whose
    peak-to-peak reaches ``max(min_p2p, rel_p2p * local mean force)``.

    Live latency: the :class:`Onset` comes when ``min_cycles - 1`` cycles and a
    half are complete and the last lobe has swung far enough, so
    ``detected_at - start`` is about ``min_cycles - 0.3`` periods (at least
    ``min_cycles - 0.5``). Nothing is announced on fewer cycles.
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
        hysteresis: float = 0.4,
        tolerance: float = 0.1,
        max_ratio: float = 1.45,
        keep: float = 0.6,
        max_break: float = 1.6,
        max_break_s: float = 2.5,
        max_jump: float = 3.0,
        balance: float = 0.6,
        band: tuple[FloatArray, float] | None = None,
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
        self.max_ratio, self.keep = float(max_ratio), float(keep)
        self.max_break, self.max_break_s = float(max_break), float(max_break_s)
        self.max_jump, self.balance = float(max_jump), float(balance)
        self.min_period = 1.0 / (self.max_freq * (1 + tolerance))
        self.max_period = 1.0 / (self.min_freq * (1 - tolerance))
        self._entry = max(1, 2 * self.min_cycles - 2)  # overlapping cycles before the onset
        self._lag = self._phase_lag(band)
        self.reset()

    def _phase_lag(self, band: tuple[FloatArray, float] | None) -> tuple[list, list]:
        """Seconds the band-pass moves a sine's zero crossings, on a frequency grid.

        The filter output leads (positive) or lags a sine of frequency f by
        ``phase / (2 pi f)``; adding it back dates the edges on the force itself.
        """
        freqs = np.linspace(self.min_freq * 0.5, self.max_freq * 1.5, 64)
        if band is None:
            return freqs.tolist(), [0.0] * freqs.size
        sos, rate = band
        _, h = signal.sosfreqz(np.asarray(sos), worN=freqs, fs=rate)
        lead = np.unwrap(np.angle(h)) / (2 * np.pi * freqs)
        return freqs.tolist(), lead.tolist()

    def _shift(self, period: float) -> float:
        f = 1.0 / period
        return float(np.interp(f, self._lag[0], self._lag[1]))

    def reset(self) -> None:
        self._filled: set[float] = set()
        self._t_end = math.nan
        self._prev_t = math.nan
        self._floor = -math.inf  # no episode reaches back before the last one ended
        self._restart()

    def _restart(self) -> None:
        """Forget the swing tracker and any open episode (after a hole)."""
        self._dir = 0  # +1: looking for a peak, -1: for a trough, 0: not yet known
        self._hi = self._lo = math.nan  # running extremes while the direction is unknown
        self._hi_at = self._lo_at = (math.nan, 0.0, 0)
        self._cand = math.nan  # the running extreme of the current swing
        self._cand_at = (math.nan, 0.0, 0)  # its (time, level sum, bins)
        self._around = (math.nan, math.nan)  # the bins before and after it
        self._wait = False  # the bin after the candidate is still to come
        self._px = math.nan
        self._cum = 0.0  # level summed over the bins so far
        self._bins = 0
        self._ext: list[tuple[float, float, float, int]] = []  # last extrema (t, x, sum, bins)
        # Cycles (start, end, p2p, mean) of the run before entry, consecutive.
        self._run: list[tuple[float, float, float, float]] = []
        self._active = False
        self._good_end = math.nan
        self._period = math.nan  # tracked period of the episode
        self._swing = math.nan  # tracked peak-to-peak of the episode
        self._start = math.nan
        self._cycles: list[tuple[float, float, float, float]] = []
        self._bridge = 0.0  # filled-bin time since the last good cycle

    @property
    def active(self) -> bool:
        return self._active

    def mark_filled(self, centres: list[float]) -> None:
        """Bins about to be fed were interpolated over a short hole (``BinAverager``).

        A flattened cycle is not evidence that rocking stopped: the bridge over a
        break is lengthened by the interpolated time.
        """
        self._filled.update(centres)

    def feed_floats(
        self, tt: FloatArray, xx: FloatArray, mm: FloatArray, tl: list, xl: list, ml: list
    ) -> list[Event]:
        """:meth:`process` for bins also given as Python floats (live chunks)."""
        return self._feed(tl, xl, ml)

    def process(self, t: ArrayLike, osc: ArrayLike, level: ArrayLike) -> list[Event]:
        """Feed bins: centres *t*, band-passed force *osc*, filtered total *level*."""
        tt = np.asarray(t, dtype=np.float64)
        if tt.size == 0:
            return []
        xx = np.asarray(osc, dtype=np.float64)
        mm = np.asarray(level, dtype=np.float64)
        return self._feed(tt.tolist(), xx.tolist(), mm.tolist())

    def _need(self, mean: float) -> float:
        return max(self.min_p2p, self.rel_p2p * mean)

    def _feed(self, tl: list, xl: list, ml: list) -> list[Event]:
        events: list[Event] = []
        gap = 1.5 * self.dt
        hyst, lo, rel = self.hysteresis, self.min_p2p, self.rel_p2p
        filled = self._filled
        prev_t, px = self._prev_t, self._px
        for t, x, m in zip(tl, xl, ml, strict=True):
            if x != x or m != m or t - prev_t > gap:
                if self._active:
                    events += self._close(t + self.dt / 2)
                self._restart()
                self._floor = t
                px = math.nan
                prev_t = t
                if x != x or m != m:
                    continue
            prev_t = t
            if self._wait:
                self._around = (self._around[0], x)
                self._wait = False
            if filled and t in filled:
                filled.discard(t)
                self._bridge += self.dt
            self._cum += m
            self._bins += 1
            h = hyst * (lo if lo > rel * m else rel * m)
            d = self._dir
            if d == 1:
                if x > self._cand:
                    self._cand, self._cand_at = x, (t, self._cum, self._bins)
                elif x < self._cand - h:
                    events += self._extremum(self._cand, self._cand_at, t)
                    self._dir, self._cand, self._cand_at = -1, x, (t, self._cum, self._bins)
            elif d == -1:
                if x < self._cand:
                    self._cand, self._cand_at = x, (t, self._cum, self._bins)
                elif x > self._cand + h:
                    events += self._extremum(self._cand, self._cand_at, t)
                    self._dir, self._cand, self._cand_at = 1, x, (t, self._cum, self._bins)
            else:
                at = (t, self._cum, self._bins)
                if not x <= self._hi:
                    self._hi, self._hi_at = x, at
                if not x >= self._lo:
                    self._lo, self._lo_at = x, at
                self._around = (math.nan, math.nan)
                if x < self._hi - h:
                    self._dir, self._cand, self._cand_at = 1, self._hi, self._hi_at
                    events += self._extremum(self._hi, self._hi_at, t)
                    self._dir, self._cand, self._cand_at = -1, x, at
                elif x > self._lo + h:
                    events += self._extremum(self._lo, self._lo_at, t)
                    self._dir, self._cand, self._cand_at = 1, x, at
            if self._cand_at[0] == t:
                self._around, self._wait = (px, math.nan), True
            if self._active:
                events += self._check(t)
            px = x
        self._prev_t, self._px = prev_t, px
        if tl:
            self._t_end = tl[-1]
        return events

    def _extremum(self, x: float, at: tuple[float, float, int], t: float) -> list[Event]:
        """A peak or trough at *at* is certain (the signal came back by the trigger
        swing at bin *t*): judge the cycle of the last three extrema."""
        ext = self._ext
        tx = at[0]
        a, b = self._around
        if at[0] == self._cand_at[0]:
            curv = a - 2 * x + b
            if curv == curv and curv != 0:  # a parabola through the bins around it
                tx += min(0.5, max(-0.5, 0.5 * (a - b) / curv)) * self.dt
        ext.append((tx, x, at[1], at[2]))
        if len(ext) > 3:
            del ext[0]
        if len(ext) < 3:
            return []
        (t0, x0, c0, n0), (_t1, x1, _c1, _n1), (t2, x2, c2, n2) = ext
        period = t2 - t0
        s1, s2 = abs(x1 - x0), abs(x2 - x1)

        p2p = 0.5 * (s1 + s2)
        mean = (c2 - c0) / (n2 - n0) if n2 > n0 else 0.0
        need = self._need(mean)
        in_band = self.min_period <= period <= self.max_period
        cyc = (t0, t2, p2p, mean)
        if self._active:
            tracked = self._period
            if (
                in_band
                and tracked / self.max_ratio <= period <= tracked * self.max_ratio
                and p2p >= self.keep * need
                and min(s1, s2) >= 0.55 * self._swing
                and max(s1, s2) <= self.max_jump * self._swing
            ):
                self._good_end = t2
                self._bridge = 0.0
                self._cycles.append(cyc)
                self._period += 0.3 * (period - self._period)
                self._swing += 0.3 * (p2p - self._swing)
                return []
            return self._check(t)
        balanced = min(s1, s2) >= self.balance * max(s1, s2)
        if not (in_band and p2p >= need and balanced and t0 >= self._floor):
            self._run = []
            return []
        run = self._run
        if run and run[-1][1] == ext[1][0]:
            periods = sorted(c[1] - c[0] for c in run)
            med = periods[len(periods) // 2]
            swings = sorted(c[2] for c in run)
            amp = swings[len(swings) // 2]
            if (
                med / self.max_ratio <= period <= med * self.max_ratio
                and amp / self.max_jump <= p2p <= amp * self.max_jump
            ):
                run.append(cyc)
                return self._enter(t) if len(run) >= self._entry else []
        self._run = [cyc]  # a new run from this cycle
        return []

    def _enter(self, t: float) -> list[Event]:
        run = self._run
        periods = sorted(c[1] - c[0] for c in run)
        period = periods[len(periods) // 2]
        self._active = True
        self._period = period
        self._swing = sorted(c[2] for c in run)[len(run) // 2]
        self._cycles = list(run)
        self._run = []
        self._good_end = run[-1][1]
        self._bridge = 0.0
        # The first extremum is a quarter period into the rocking (from rest to a peak).
        start = max(run[0][0] - 0.25 * period, self._floor)
        self._start = start + self._shift(period)
        return [Onset(self.kind, self._start, t + self.dt / 2)]

    def _check(self, t: float) -> list[Event]:
        """Close the episode once no later cycle can bridge the break."""
        allowed = min(self.max_break * self._period, self.max_break_s) + self._bridge
        late = t - self._good_end > allowed + 2 * self.max_period
        ext = self._ext
        if len(ext) >= 2 and ext[-2][0] - self._good_end > allowed:
            late = True  # the next cycle starts at the last extremum but one, or later
        return self._close(t + self.dt / 2) if late else []

    def _close(self, detected_at: float) -> list[Event]:
        """The episode ends a quarter period after its last extremum (back at rest)."""
        self._active = False
        cycles = self._cycles
        period = self._period
        end = self._good_end + 0.25 * period + self._shift(period)
        self._floor = self._good_end
        self._cycles = []
        med = sum(c[1] - c[0] for c in cycles) / len(cycles)
        swings = sorted(c[2] for c in cycles)
        mean = sum(c[3] for c in cycles) / len(cycles)
        count = max(self.min_cycles, round((end - self._start) / med))
        return [
            RockingEpisode(
                self._start,
                end,
                detected_at,
                1.0 / med,
                int(count),
                swings[len(swings) // 2],
                mean,
            )
        ]

    def finish(self) -> list[Event]:
        """Close a running episode at the end of the data."""
        if not self._active:
            return []
        return self._close(self._t_end + self.dt / 2)
