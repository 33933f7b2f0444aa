"""The load a body puts on the knob: scenario segments and their analytic load profile.

A :class:`LoadProfile` turns a list of :class:`Segment` (lie down, hold, rock,
press, lift ...) into the total force and centre of pressure at any host time
(seconds since power-on), so the device, the offline renderer and the ground
truth all see the same body. The seed perturbs the body (breathing rate and
phase, posture-shift times and sizes, rocking frequency) within a few percent.

This module is the bottom of the simulator's scenario stack: ``truth`` and
``scenario`` build on it, ``physics`` reads it; it imports none of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from knotsense.errors import ConfigurationError

SEGMENT_KINDS = (
    "idle",
    "approach",
    "lie_down",
    "hold",
    "rock",
    "press",
    "lift",
    "lift_off",
    "step",
    "overpressure",
    "circle",
)


@dataclass(frozen=True)
class Segment:
    """One phase of a scenario. Fields a kind does not use are ignored.

    Attributes:
        kind: one of :data:`SEGMENT_KINDS`.
        duration: seconds.
        force: target level in N (hold, step, lie_down, rock, overpressure); None keeps
            the level the previous segment ended at.
        ramp_s: transition time to ``force`` (default: 0.6 s; lie_down: its duration; step 2 s).
        breathing_depth: breathing modulation, peak-to-peak fraction of the load
            (default 0.05 for hold/overpressure, 0.03 while rocking, 0 otherwise).
        breathing_hz: overrides the scenario's breathing rate in this segment.
        settle_s: creep time constant from the starting level to ``force`` (hold).
        shifts_per_min: posture shifts per minute (hold; default 0.6).
        shift_pct: size of a posture shift, percent of the load (random sign).
        freq_hz: rocking frequency.
        swing: rocking peak-to-peak load swing as a fraction of the mean load.
        cop_mm: mean centre of pressure (x, y) in mm from the knob centre.
        cop_swing_mm: rocking amplitude of the centre of pressure along ``axis_deg``.
        axis_deg: direction of the rocking's centre-of-pressure swing (0 = +x).
        turns_per_s, radius_mm, direction: a circle segment's centre of pressure
            going round its resting point ("ccw" or "cw"); the load stays level.
        peak: press peak force in N.
        ratio: fraction of the load left during a lift.
    """

    kind: str
    duration: float
    force: float | None = None
    ramp_s: float | None = None
    breathing_depth: float | None = None
    breathing_hz: float | None = None
    settle_s: float = 0.0
    shifts_per_min: float | None = None
    shift_pct: float = 4.0
    freq_hz: float = 0.6
    swing: float = 0.4
    cop_mm: tuple[float, float] = (0.0, 0.0)
    cop_swing_mm: float = 8.0
    peak: float | None = None
    ratio: float = 0.0
    axis_deg: float = 0.0
    turns_per_s: float = 0.5
    radius_mm: float = 5.0
    direction: str = "ccw"

    def __post_init__(self) -> None:
        if self.kind not in SEGMENT_KINDS:
            raise ConfigurationError(
                f"unknown segment kind {self.kind!r} (known: {', '.join(SEGMENT_KINDS)})"
            )
        if not (self.duration > 0 and math.isfinite(self.duration)):
            raise ConfigurationError(f"{self.kind} segment: duration must be > 0")
        if self.force is not None and not 0 <= self.force < 5000:
            raise ConfigurationError(f"{self.kind} segment: force must be 0..5000 N")
        if self.kind == "rock" and not (0 < self.freq_hz < 20 and 0 <= self.swing < 2):
            raise ConfigurationError("rock segment: freq_hz must be 0..20, swing 0..2")
        circle_ok = 0 < self.turns_per_s < 10 and 0 <= self.radius_mm < 100
        if self.kind == "circle" and not (circle_ok and self.direction in ("cw", "ccw")):
            raise ConfigurationError(
                "circle segment: turns_per_s must be 0..10, radius_mm 0..100, direction cw or ccw"
            )
        if not 0 <= self.ratio <= 1:
            raise ConfigurationError(f"{self.kind} segment: ratio must be 0..1")
        object.__setattr__(self, "cop_mm", tuple(float(v) for v in self.cop_mm))
        if len(self.cop_mm) != 2:
            raise ConfigurationError(f"{self.kind} segment: cop_mm must be [x, y]")


def _smooth(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


_BREATH_RISE = 0.4
_BREATH_FALL_TAU = 0.15


def _breath_wave(phase: np.ndarray) -> np.ndarray:
    """Breathing shape, zero mean and unit peak-to-peak: linear rise, exponential fall."""
    u = phase - np.floor(phase)
    w = np.where(u < _BREATH_RISE, u / _BREATH_RISE, np.exp(-(u - _BREATH_RISE) / _BREATH_FALL_TAU))
    return (w - _BREATH_MEAN) / _BREATH_P2P


_u = np.linspace(0, 1, 20001)[:-1]
_w = np.where(_u < _BREATH_RISE, _u / _BREATH_RISE, np.exp(-(_u - _BREATH_RISE) / _BREATH_FALL_TAU))
_BREATH_MEAN = float(_w.mean())
_BREATH_P2P = float(_w.max() - _w.min())
del _u, _w

_DEFAULT_BREATHING = {
    "hold": 0.05,
    "overpressure": 0.05,
    "rock": 0.03,
    "circle": 0.03,
    "lie_down": 0.0,
}


@dataclass(frozen=True)
class _Compiled:
    """A segment placed in time, with its defaults resolved and its random draws made."""

    seg: Segment
    start: float
    end: float
    level0: float
    target: float
    cop0: tuple[float, float]
    ramp: float
    breathing_depth: float
    breathing_hz: float
    shift_times: np.ndarray
    shift_sizes: np.ndarray
    shift_cop: np.ndarray
    freq_hz: float
    end_level: float
    end_cop: tuple[float, float]


class LoadProfile:
    """The total force and centre of pressure a list of segments puts on the knob, for one seed.

    Args:
        segments: the scenario's segments, in order.
        breathing_hz: the scenario's breathing rate (the seed varies it by up to 8 %).
        seed: fixes every random draw (breathing phase, posture shifts, rocking frequency).
    """

    SHIFT_S = 0.8

    def __init__(self, segments: Sequence[Segment], breathing_hz: float, seed: int = 0) -> None:
        self.seed = seed
        rng = np.random.default_rng([seed, 0x5CE1A])
        self.breath_phase0 = float(rng.random())
        self.breathing_hz = breathing_hz * float(rng.uniform(0.92, 1.08))
        self.segments: list[_Compiled] = []
        t = 0.0
        level, cop = 0.0, (0.0, 0.0)
        for i, seg in enumerate(segments):
            c = self._compile(seg, i, t, level, cop)
            self.segments.append(c)
            t, level, cop = c.end, c.end_level, c.end_cop
        self.duration = t
        self._starts = np.array([c.start for c in self.segments])

    def _compile(
        self, seg: Segment, index: int, start: float, level0: float, cop0: tuple[float, float]
    ) -> _Compiled:
        rng = np.random.default_rng([self.seed, index, 0xB0D7])
        kind = seg.kind
        target = level0 if seg.force is None else seg.force
        if kind in ("idle", "lift_off", "approach"):
            target = 0.0
        default_ramp = {"lie_down": seg.duration, "step": 2.0, "lift_off": 1.2}.get(kind, 0.6)
        ramp = min(seg.ramp_s if seg.ramp_s is not None else default_ramp, seg.duration)
        depth = (
            seg.breathing_depth
            if seg.breathing_depth is not None
            else _DEFAULT_BREATHING.get(kind, 0.0)
        )
        hz = seg.breathing_hz if seg.breathing_hz is not None else self.breathing_hz
        shifts_per_min = (
            seg.shifts_per_min
            if seg.shifts_per_min is not None
            else (0.6 if kind in ("hold", "overpressure") else 0.0)
        )
        n_shifts = (
            int(rng.poisson(shifts_per_min * seg.duration / 60.0)) if seg.duration > 12 else 0
        )
        shift_times = np.sort(rng.uniform(5.0, max(5.0, seg.duration - 5.0), n_shifts))
        shift_sizes = (
            rng.choice([-1.0, 1.0], n_shifts)
            * seg.shift_pct
            / 100
            * rng.uniform(0.6, 1.2, n_shifts)
        )
        shift_cop = rng.normal(0.0, 1.5, (n_shifts, 2))
        freq = seg.freq_hz * float(rng.uniform(0.97, 1.03)) if kind == "rock" else seg.freq_hz
        if kind == "circle":  # freq_hz holds the circle's turns per second
            freq = seg.turns_per_s * float(rng.uniform(0.97, 1.03))
        if kind == "step" or kind == "lie_down":
            cop_target = seg.cop_mm
        else:
            cop_target = (cop0[0] + seg.cop_mm[0], cop0[1] + seg.cop_mm[1])
        if kind in ("idle", "lift_off"):
            cop_target = (0.0, 0.0)
        end_level = target
        if kind in ("press", "lift"):
            end_level = level0
        elif n_shifts:
            end_level = target * float(np.prod(1.0 + shift_sizes))
        if kind == "hold" and seg.settle_s > 0:
            end_level = (target + (level0 - target) * math.exp(-seg.duration / seg.settle_s)) * (
                float(np.prod(1.0 + shift_sizes)) if n_shifts else 1.0
            )
        end_cop = (
            cop_target[0] + float(shift_cop[:, 0].sum()),
            cop_target[1] + float(shift_cop[:, 1].sum()),
        )
        if kind in ("press", "lift"):
            end_cop = cop0
        return _Compiled(
            seg,
            start,
            start + seg.duration,
            level0,
            target,
            cop0,
            ramp,
            depth,
            hz,
            shift_times,
            shift_sizes,
            shift_cop,
            freq,
            end_level,
            end_cop,
        )

    def evaluate(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Total force (N) and centre of pressure x, y (mm) at host times *t* (seconds)."""
        t = np.asarray(t, dtype=np.float64)
        force = np.zeros_like(t)
        cx = np.zeros_like(t)
        cy = np.zeros_like(t)
        if t.size == 0:
            return force, cx, cy
        first = max(0, int(np.searchsorted(self._starts, t.min(), side="right")) - 1)
        last = int(np.searchsorted(self._starts, t.max(), side="right"))
        for c in self.segments[first:last]:
            mask = (t >= c.start) & ((t < c.end) | (c is self.segments[-1]))
            if not mask.any():
                continue
            if mask.all():
                force, cx, cy = self._segment(c, t - c.start)
                break
            f, x, y = self._segment(c, t[mask] - c.start)
            force[mask], cx[mask], cy[mask] = f, x, y
        return force, cx, cy

    def _segment(self, c: _Compiled, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        seg = c.seg
        kind = seg.kind
        tau = np.minimum(tau, seg.duration)
        ramp_u = _smooth(tau / c.ramp) if c.ramp > 0 else np.ones_like(tau)
        cop_t = (
            seg.cop_mm
            if kind in ("step", "lie_down")
            else (
                c.cop0[0] + seg.cop_mm[0],
                c.cop0[1] + seg.cop_mm[1],
            )
        )
        if kind in ("idle", "lift_off"):
            cop_t = (0.0, 0.0)
        x = c.cop0[0] + (cop_t[0] - c.cop0[0]) * ramp_u
        y = c.cop0[1] + (cop_t[1] - c.cop0[1]) * ramp_u
        if kind == "approach":
            # Light touches of a hand testing the knob: two bumps of ~15 N.
            base = c.level0 * (1 - ramp_u)
            for k, at in enumerate((0.25, 0.6)):
                centre = at * seg.duration
                width = min(1.2, seg.duration / 5)
                u = np.clip((tau - centre) / width + 0.5, 0, 1)
                base = base + (12.0 + 4 * k) * np.sin(np.pi * u) ** 2
            return base, x, y
        if kind == "press":
            peak = seg.peak if seg.peak is not None else c.level0 * 1.35 + 20
            base = c.level0 + (peak - c.level0) * np.sin(np.pi * tau / seg.duration) ** 2
            return base, c.cop0[0] + 0 * tau, c.cop0[1] + 0 * tau
        if kind == "lift":
            edge = min(0.35, seg.duration / 4)
            down = _smooth(tau / edge) * (1 - _smooth((tau - (seg.duration - edge)) / edge))
            base = c.level0 * (1 - (1 - seg.ratio) * down)
            return base, c.cop0[0] + 0 * tau, c.cop0[1] + 0 * tau
        if kind == "hold" and seg.settle_s > 0:
            creep = np.exp(-tau / seg.settle_s)
            base = c.target + (c.level0 - c.target) * creep
        else:
            base = c.level0 + (c.target - c.level0) * ramp_u
        if c.shift_times.size:
            s = _smooth((tau[:, None] - c.shift_times[None, :]) / self.SHIFT_S)
            base = base * np.prod(1.0 + s * c.shift_sizes[None, :], axis=1)
            x = x + s @ c.shift_cop[:, 0]
            y = y + s @ c.shift_cop[:, 1]
        if kind == "rock":
            env = _smooth(tau * c.freq_hz / 0.5) * _smooth((seg.duration - tau) * c.freq_hz / 0.5)
            wave = np.sin(2 * np.pi * c.freq_hz * tau) * env
            base = base * (1.0 + seg.swing / 2 * wave)
            x = x + seg.cop_swing_mm * math.cos(math.radians(seg.axis_deg)) * wave
            y = y + seg.cop_swing_mm * math.sin(math.radians(seg.axis_deg)) * wave
        if kind == "circle":
            ends = 0.25 / c.freq_hz  # the radius grows and shrinks over a quarter turn
            env = _smooth(tau / ends) * _smooth((seg.duration - tau) / ends)
            angle = (1.0 if seg.direction == "ccw" else -1.0) * 2 * np.pi * c.freq_hz * tau
            x = x + seg.radius_mm * env * np.cos(angle)
            y = y + seg.radius_mm * env * np.sin(angle)
        if c.breathing_depth > 0:
            phase = self.breath_phase0 + c.breathing_hz * (tau + c.start)
            b = _breath_wave(phase)
            base = base * (1.0 + c.breathing_depth * b)
            y = y - 1.5 * b
        return np.maximum(base, 0.0), x, y
