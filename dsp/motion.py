"""Motion direction: the axis of a rocking episode and circling (DESIGN.md, issue 14).

Trigger-point texts say to work a knot "in the direction of the muscle fibre"
and to "circle the knot several times"; with channel positions known, the
centre of pressure (CoP) shows both. Both run on the decimated CoP bins the
pipeline makes (mm, NaN where nobody is on the knob):

- :func:`path_axis` gives a path's principal direction (degrees in the device
  frame, 0 = +x, in [0, 180): an axis has no sign) and its extent (mm, peak to
  peak along the axis). :class:`CopHistory` keeps the recent CoP so the axis of
  a rocking episode can be measured when the episode closes.
- :class:`CirclingDetector` finds the CoP going round a point for at least
  ``min_turns`` turns at 0.2-2 turns/s: the band-passed CoP's angle is wound
  up turn by turn, and a turn counts only if it took a plausible time and the
  path stayed round (a back-and-forth rocking passes through the centre and
  fails that). It streams like every detector here: ``process``/``finish``/
  ``reset``, the same events however the bins are chunked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import signal

from knotsense.dsp.detectors import DetectorInput, Episode, Event, Onset, RockingEpisode
from knotsense.dsp.filters import BandPass
from knotsense.errors import ConfigurationError

FloatArray = NDArray[np.float64]
_TWO_PI = 2.0 * math.pi
_QUARTER = math.pi / 2

__all__ = [
    "Axis",
    "CirclingDetector",
    "CirclingEpisode",
    "CopHistory",
    "MotionTracker",
    "axis_error",
    "path_axis",
]


@dataclass(frozen=True)
class Axis:
    """Principal direction of a CoP path.

    Attributes:
        angle: degrees in the device frame, 0 = +x, counter-clockwise, in [0, 180).
        extent: peak-to-peak travel along the axis (mm; 2nd to 98th percentile).
        linearity: 1 - minor/major spread (1 for a straight line, 0 for a circle).
    """

    angle: float
    extent: float
    linearity: float


def path_axis(cop: ArrayLike, min_points: int = 8) -> Axis | None:
    """The axis of a CoP path ``(n, 2)`` (mm); None with too few finite points.

    A linear trend per coordinate is removed first, so a slow posture drift
    during the episode does not tilt the axis.
    """
    pts = np.asarray(cop, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ConfigurationError(f"a CoP path must be (n, 2), got shape {pts.shape}")
    pts = pts[np.isfinite(pts).all(axis=1)]
    n = pts.shape[0]
    if n < min_points:
        return None
    u = np.linspace(-1.0, 1.0, n)
    c = pts - pts.mean(axis=0)
    c -= np.outer(u, (u @ c) / (u @ u))
    cov = c.T @ c / n
    vals, vecs = np.linalg.eigh(cov)  # ascending
    major = vecs[:, 1]
    if vals[1] <= 0:
        return None
    proj = c @ major
    lo, hi = np.percentile(proj, [2.0, 98.0])
    angle = math.degrees(math.atan2(major[1], major[0])) % 180.0
    linearity = 1.0 - math.sqrt(max(vals[0], 0.0) / vals[1])
    return Axis(round(angle, 6) % 180.0, float(hi - lo), float(linearity))


def axis_error(a: float, b: float) -> float:
    """Angle between two axes (degrees, 0-90): 0 and 180 are the same axis."""
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


class CopHistory:
    """The last ``keep`` seconds of CoP bins, to measure an episode's axis when it closes.

    Trimmed only after the caller has read what it needs for a call's episodes
    (:meth:`trim`), so the output never depends on how the bins were chunked
    as long as an episode closes within ``keep`` minus its own length.
    """

    def __init__(self, keep: float = 300.0) -> None:
        if not (math.isfinite(keep) and keep > 0):
            raise ConfigurationError(f"CoP history must keep > 0 s, got {keep!r}")
        self.keep = float(keep)
        self.reset()

    def reset(self) -> None:
        self._parts: list[tuple[FloatArray, FloatArray]] = []

    def process(self, t: ArrayLike, cop: ArrayLike) -> None:
        tt = np.asarray(t, dtype=np.float64)
        cc = np.asarray(cop, dtype=np.float64)
        if tt.size:
            self._parts.append((tt, cc.reshape(tt.size, -1)))

    def window(self, start: float, end: float) -> FloatArray:
        """CoP rows of the bins with ``start <= t <= end``."""
        rows = [c[(t >= start) & (t <= end)] for t, c in self._parts if t[-1] >= start]
        rows = [r for r in rows if r.size]
        return np.concatenate(rows) if rows else np.empty((0, 2))

    def trim(self) -> None:
        """Forget bins older than ``keep`` before the newest one."""
        if not self._parts:
            return
        cutoff = self._parts[-1][0][-1] - self.keep
        while self._parts and self._parts[0][0][-1] < cutoff:
            self._parts.pop(0)
        if len(self._parts) > 64:  # live: many small parts; join them now and then
            t = np.concatenate([p[0] for p in self._parts])
            c = np.concatenate([p[1] for p in self._parts])
            self._parts = [(t, c)]

    def axis(self, start: float, end: float) -> Axis | None:
        """:func:`path_axis` of the CoP between *start* and *end* (s)."""
        return path_axis(self.window(start, end))


@dataclass(frozen=True)
class CirclingEpisode(Episode):
    """The CoP going round a point: turns, direction and radius.

    Attributes:
        turns: turns completed (a partial last turn counts as its fraction).
        direction: "ccw" (counter-clockwise in the device frame, +x to +y) or "cw".
        radius: median distance of the CoP from the fitted circle's centre (mm).
        rate: turns per second.
    """

    kind: ClassVar[str] = "circling"
    turns: float
    direction: str
    radius: float
    rate: float


def _radius(pts: FloatArray) -> float:
    """Median distance (mm) of *pts* from the least-squares circle's centre (Kasa fit).

    A fitted centre, unlike the mean, is not pulled aside by a partial last
    turn; the median ignores the points where the radius grows and shrinks.
    """
    if pts.shape[0] < 3:
        return 0.0
    a = np.column_stack((2 * pts, np.ones(pts.shape[0])))
    sol = np.linalg.lstsq(a, (pts**2).sum(axis=1), rcond=None)[0]
    return float(np.median(np.hypot(pts[:, 0] - sol[0], pts[:, 1] - sol[1])))


class CirclingDetector:
    """Streaming circling detection on CoP bins (see the module docstring).

    Args:
        rate: bin rate (Hz) of the CoP stream.
        min_turns: turns needed (DESIGN.md: 2).
        min_rate, max_rate: turns per second allowed (0.2-2); a turn may take
            ``slack`` times longer or shorter.
        min_radius: smallest circle radius (mm) that counts (below it, CoP noise
            and breathing wind up too).
        roundness: least ratio of the smallest to the largest radius within each
            quarter turn; a line (rocking) goes through the centre and scores near 0.
        max_gap: a hole in the bins longer than this ends a circling (s).
    """

    def __init__(
        self,
        rate: float,
        min_turns: float = 2.0,
        min_rate: float = 0.2,
        max_rate: float = 2.0,
        min_radius: float = 1.0,
        roundness: float = 0.35,
        max_gap: float = 0.5,
        slack: float = 1.2,
    ) -> None:
        for name, value in (("rate", rate), ("min_turns", min_turns), ("min_radius", min_radius)):
            if not (math.isfinite(value) and value > 0):
                raise ConfigurationError(f"circling {name} must be > 0, got {value!r}")
        if not 0 < min_rate < max_rate < rate / 4:
            raise ConfigurationError(
                f"circling needs 0 < min rate < max rate < {rate / 4} turns/s, "
                f"got {min_rate}-{max_rate}"
            )
        if not 0 <= roundness < 1:
            raise ConfigurationError(f"circling roundness must be 0..1, got {roundness!r}")
        self.dt = 1.0 / rate
        self.min_turns = float(min_turns)
        self.min_turn_s = 1.0 / (max_rate * slack)
        self.max_turn_s = slack / min_rate
        self.min_radius = float(min_radius)
        self.roundness = float(roundness)
        self.max_gap = float(max_gap)
        high = min(max_rate * 2.5, rate / 2.5)
        self._band = BandPass(min_rate / 2.5, high, rate, 2, max_gap)
        self._tf = signal.sos2tf(self._band.sos)
        self.reset()

    def reset(self) -> None:
        self._band.reset()
        self._last_t = -math.inf
        self._restart()

    def _restart(self) -> None:
        """Forget the current run (no winding in progress)."""
        self._prev = math.nan  # angle of the previous bin
        self._dir = 0
        self._wind = 0.0  # winding along self._dir since the quarter began (rad)
        self._best = 0.0
        self._q_t0 = math.nan  # when the quarter in progress began
        self._stats = [math.inf, 0.0, 0.0, 0]  # this quarter: min rho, max rho, sum rho, bins
        self._q_path: list[tuple[float, float, float]] = []
        self._quarters: list[float] = []  # start times of the good quarters of the run
        self._last_good_t = math.nan
        self._partial = 0.0  # winding of the quarter in progress while it looks good (turns)
        self._partial_t = math.nan
        self._onset = False
        self._lag = 0.0  # band-pass delay taken off the reported times (s)
        self._path: list[tuple[float, float, float]] = []  # raw CoP of the good quarters

    @property
    def active(self) -> bool:
        """An announced circling is running (live display)."""
        return self._onset

    def process(self, t: ArrayLike, cop: ArrayLike) -> list[Event]:
        """Feed CoP bins (centres *t*, ``(n, 2)`` mm); returns onsets and closed episodes."""
        tt = np.asarray(t, dtype=np.float64)
        cc = np.asarray(cop, dtype=np.float64)
        if tt.size == 0:
            return []
        if cc.shape != (tt.size, 2):
            raise ConfigurationError(f"CoP must be ({tt.size}, 2), got shape {cc.shape}")
        b = self._band.process(tt, cc)
        rho = np.hypot(b[:, 0], b[:, 1])
        ang = np.arctan2(b[:, 1], b[:, 0])
        events: list[Event] = []
        for tv, xv, yv, rv, av in zip(
            tt.tolist(),
            cc[:, 0].tolist(),
            cc[:, 1].tolist(),
            rho.tolist(),
            ang.tolist(),
            strict=True,
        ):
            if tv - self._last_t > self.max_gap or rv != rv or xv != xv:
                events += self._close(self._last_t)
                self._last_t = tv
                if rv == rv and xv == xv:
                    self._prev = av
                    self._q_t0 = tv
                continue
            self._last_t = tv
            events += self._step(tv, xv, yv, rv, av)
        return events

    def _step(self, tv: float, xv: float, yv: float, rv: float, av: float) -> list[Event]:
        prev = self._prev
        self._prev = av
        if prev != prev:  # the first bin of a run
            self._q_t0 = tv
            return []
        d = av - prev
        if d > math.pi:
            d -= _TWO_PI
        elif d < -math.pi:
            d += _TWO_PI
        if self._dir == 0:
            self._wind += d
        else:
            self._wind += d * self._dir
        st = self._stats
        st[0] = min(st[0], rv)
        st[1] = max(st[1], rv)
        st[2] += rv
        st[3] += 1
        self._q_path.append((tv, xv, yv))
        wind = abs(self._wind) if self._dir == 0 else self._wind
        if wind > self._best:
            self._best = wind
            if self._quarters and self._round():
                self._partial, self._partial_t = wind / _TWO_PI, tv
        if wind < self._best - math.pi / 3:  # turned back
            return self._rerun(tv, av)
        if wind >= _QUARTER:  # a quarter turn completed
            if not self._round():
                return self._rerun(tv, av)
            if self._dir == 0:  # the first quarter shows the direction
                self._dir = 1 if self._wind > 0 else -1
            events: list[Event] = []
            q = self._quarters
            q.append(self._q_t0)
            if len(q) >= 4 and not self.min_turn_s <= tv - q[-4] <= self.max_turn_s:
                return self._rerun(tv, av)  # the last turn was too fast or too slow
            self._last_good_t = tv
            self._path += self._q_path
            if not self._onset and len(q) >= 4 * self.min_turns:
                self._onset = True
                # The band-pass shows the circle this much later (at the rate so far).
                self._lag = self._delay(len(q) / 4 / (tv - q[0]))
                events.append(Onset("circling", q[0] - self._lag, tv))
            self._wind = self._best = wind - _QUARTER
            self._partial, self._partial_t = 0.0, math.nan
            self._q_t0 = tv
            self._stats = [rv, rv, rv, 1]
            self._q_path = [(tv, xv, yv)]
            return events
        if tv - self._q_t0 > self.max_turn_s / 2:  # too slow to be circling
            return self._rerun(tv, av)
        return []

    def _rerun(self, tv: float, av: float) -> list[Event]:
        """Close the run and start a new one at this bin."""
        events = self._close(tv)
        self._prev = av
        self._q_t0 = tv
        return events

    def _round(self) -> bool:
        """The quarter in progress stayed round and wide enough."""
        lo, hi, total, n = self._stats
        return n > 0 and hi > 0 and lo >= self.roundness * hi and total / n >= self.min_radius

    def _close(self, at: float) -> list[Event]:
        """End the run; an episode when it had enough good quarters."""
        events: list[Event] = []
        q = self._quarters
        if len(q) >= 4 * self.min_turns:
            turns = len(q) / 4
            end = self._last_good_t
            path = self._path
            if self._partial > 0:
                turns += self._partial
                end = self._partial_t
                path = path + [p for p in self._q_path if p[0] <= end]
            pts = np.array([(x, y) for _, x, y in path])
            radius = _radius(pts[np.isfinite(pts).all(axis=1)])
            events.append(
                CirclingEpisode(
                    q[0] - self._lag,
                    end - self._lag,
                    at,
                    round(turns, 3),
                    "ccw" if self._dir > 0 else "cw",
                    radius,
                    turns / (end - q[0]),
                )
            )
        self._restart()
        return events

    def _delay(self, rate: float) -> float:
        """Group delay (s) of the band-pass at *rate* turns/s."""
        gd = signal.group_delay(self._tf, w=[rate], fs=1.0 / self.dt)[1]
        return float(gd[0]) * self.dt

    def finish(self) -> list[Event]:
        """End of data: close an open circling."""
        return self._close(self._last_t)


class MotionTracker:
    """The pipeline's motion stage: circling events and the axis of each rocking episode.

    A :class:`~knotsense.dsp.detectors.BinDetector` (kind "circling") fed the
    CoP bins; :meth:`annotate` then fills ``axis``/``extent`` of the rocking
    episodes a step closed, from the last ``axis_window`` seconds of each.
    """

    kind = "circling"

    def __init__(
        self, rate: float, axis_window: float = 240.0, keep: float = 300.0, **circling: float
    ) -> None:
        if not 0 < axis_window < keep:
            raise ConfigurationError("the axis window must be shorter than the CoP history")
        self.axis_window = float(axis_window)
        self.history = CopHistory(keep)
        self.circling = CirclingDetector(rate, **circling)

    def reset(self) -> None:
        self.history.reset()
        self.circling.reset()

    def process_bins(self, bins: DetectorInput) -> list[Event]:
        if bins.cop is None or bins.t.size == 0:
            return []
        cop = bins.cop[:, :2] if bins.cop.shape[1] >= 2 else None
        if cop is None:
            return []
        self.history.trim()
        self.history.process(bins.t, cop)
        return self.circling.process(bins.t, cop)

    def finish(self) -> list[Event]:
        return self.circling.finish()

    def annotate(self, events: list[Event]) -> list[Event]:
        """*events* with each rocking episode's axis and extent filled in."""
        out: list[Event] = []
        for e in events:
            if isinstance(e, RockingEpisode) and e.axis is None:
                ax = self.history.axis(max(e.start, e.end - self.axis_window), e.end)
                if ax is not None:
                    e = replace(e, axis=round(ax.angle, 2), extent=round(ax.extent, 3))
            out.append(e)
        return out
