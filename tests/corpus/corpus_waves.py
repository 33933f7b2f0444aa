"""Waveforms of the validation corpus: rocking strokes, breathing, circling.

Written from the words of DESIGN.md ("Detection semantics"), not from the
simulator: a rocking stroke is a body rolling on a rounded base, so besides
sines there are skewed strokes (fast roll one way, slow the other), strokes
that rest on one edge (half-wave rectified), plateaus (trapezoids) and
harmonic-rich ones. Every stroke shape is a function of the phase in cycles,
with zero mean over a cycle and a peak-to-peak of exactly 1, so the swing a
trace asks for is the swing it gets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SHAPES = ("sine", "skewed", "rectified", "trapezoid", "harmonic")
_GRID = np.linspace(0.0, 1.0, 4001)[:-1]


def smoothstep(u: np.ndarray) -> np.ndarray:
    """0 -> 1 with zero slope at both ends."""
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


@dataclass(frozen=True)
class Stroke:
    """One stroke shape and its parameters (drawn once per episode)."""

    shape: str
    a: float = 0.0
    b: float = 0.0
    p2: float = 0.0
    p3: float = 0.0

    def _raw(self, u: np.ndarray) -> np.ndarray:
        u = u - np.floor(u)
        if self.shape == "sine":
            return np.sin(2 * np.pi * u)
        if self.shape == "skewed":  # rise over a fraction `a` of the cycle, fall over the rest
            v = np.where(u < self.a, 0.5 * u / self.a, 0.5 + 0.5 * (u - self.a) / (1 - self.a))
            return -np.cos(2 * np.pi * v)
        if self.shape == "rectified":  # rolls onto one edge, rests on the other
            return np.maximum(np.sin(2 * np.pi * u), -self.a)
        if self.shape == "trapezoid":  # quick rolls with a plateau of `a` at each end
            ramp = (1.0 - 2 * self.a) / 2
            up = smoothstep(u / ramp)
            down = smoothstep((u - ramp - self.a) / ramp)
            return up - down
        if self.shape == "harmonic":
            return (
                np.sin(2 * np.pi * u)
                + self.a * np.sin(4 * np.pi * u + self.p2)
                + self.b * np.sin(6 * np.pi * u + self.p3)
            )
        raise ValueError(f"unknown stroke shape {self.shape!r}")

    def wave(self, phase: np.ndarray) -> np.ndarray:
        """Zero-mean, unit peak-to-peak stroke at *phase* (cycles)."""
        ref = self._raw(_GRID)
        mean, p2p = float(ref.mean()), float(ref.max() - ref.min())
        return (self._raw(np.asarray(phase, dtype=np.float64)) - mean) / p2p

    def rolls(self, hysteresis: float = 0.02) -> int:
        """Rises through the mean per cycle (with hysteresis on the unit swing)."""
        w = self.wave(np.concatenate((_GRID, _GRID)))
        state, ups = 0, 0
        for i, v in enumerate(w):
            if v > hysteresis and state <= 0:
                ups += state < 0 and i >= _GRID.size
                state = 1
            elif v < -hysteresis:
                state = -1
        return ups

    def trough(self) -> float:
        """The most negative value of :meth:`wave` (between -1 and 0)."""
        return float(self.wave(_GRID).min())


def draw_stroke(rng: np.random.Generator, shape: str | None = None) -> Stroke:
    shape = shape or str(rng.choice(SHAPES))
    if shape == "skewed":
        return Stroke(shape, a=float(rng.uniform(0.22, 0.4) if rng.random() < 0.5 else 0.65))
    if shape == "rectified":
        return Stroke(shape, a=float(rng.uniform(0.0, 0.35)))
    if shape == "trapezoid":
        return Stroke(shape, a=float(rng.uniform(0.1, 0.3)))
    if shape == "harmonic":
        while True:  # harmonics shape the roll but leave one roll per cycle
            s = Stroke(
                shape,
                a=float(rng.uniform(0.15, 0.45)),
                b=float(rng.uniform(0.0, 0.3)),
                p2=float(rng.uniform(0, 2 * np.pi)),
                p3=float(rng.uniform(0, 2 * np.pi)),
            )
            if s.rolls() == 1:
                return s
    return Stroke("sine")


def drifting_phase(
    rng: np.random.Generator, f0: float, drift: float, dt: float, max_s: float
) -> np.ndarray:
    """Phase (cycles) on a grid of *dt* for a frequency that drifts by up to +-*drift*.

    The drift is a chirp (linear), a slow wobble or a random walk, chosen at
    random, plus a few percent of cycle-to-cycle jitter; the instantaneous
    frequency never leaves ``f0 * (1 +- drift)``.
    """
    n = int(max_s / dt) + 2
    u = np.linspace(0.0, 1.0, n)
    kind = int(rng.integers(0, 3))
    if kind == 0:
        rel = drift * (2 * u - 1) * rng.choice([-1.0, 1.0])
    elif kind == 1:
        rel = drift * np.sin(2 * np.pi * (rng.uniform(0.5, 2.0) * u + rng.random()))
    else:
        steps = rng.normal(0.0, 1.0, n).cumsum()
        steps -= steps.mean()
        rel = drift * steps / max(1e-9, np.abs(steps).max())
    jitter = np.convolve(rng.normal(0.0, 1.0, n), np.ones(50) / 50, mode="same")
    rel = np.clip(rel + 0.03 * jitter / max(1e-9, np.abs(jitter).max()), -drift, drift)
    freq = f0 * (1.0 + rel)
    return np.concatenate(([0.0], np.cumsum(freq[:-1] * dt)))


def breath_wave(phase: np.ndarray, rise: float) -> np.ndarray:
    """Zero-mean, unit peak-to-peak breathing: a roughly linear rise, an exponential fall."""
    u = phase - np.floor(phase)
    grid = _GRID
    ref = np.where(grid < rise, grid / rise, np.exp(-(grid - rise) / 0.18))
    w = np.where(u < rise, u / rise, np.exp(-(u - rise) / 0.18))
    return (w - ref.mean()) / (ref.max() - ref.min())


def envelope(phase: np.ndarray, cycles: float, taper: float = 0.2) -> np.ndarray:
    """Amplitude envelope over an episode: ramps of *taper* cycles at both ends."""
    return smoothstep(phase / taper) * smoothstep((cycles - phase) / taper)


def angle_deg(vx: float, vy: float) -> float:
    """Direction of an axis in [0, 180) degrees (an axis has no sign)."""
    return math.degrees(math.atan2(vy, vx)) % 180.0
