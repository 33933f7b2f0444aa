"""Ground truth: what really happened in a scenario, by the detection semantics of DESIGN.md.

From a :class:`~knotsense.firmware_sim.load.LoadProfile` (the true applied
load) this module finds the contact, release, overpressure and rocking
intervals that a perfect detector would report, so the host's detectors can
be scored against them. It sits on ``load`` and below ``scenario``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from knotsense.firmware_sim.load import LoadProfile

CONTACT_FLOOR_N = 5.0
OVERPRESSURE_MIN_S = 1.0
ROCK_BAND_HZ = (0.4, 3.0)
ROCK_MIN_CYCLES = 3
CIRCLE_RATE = (0.2, 2.0)  # turns per second
CIRCLE_MIN_TURNS = 2.0
CIRCLE_MIN_RADIUS_MM = 1.0
TRUTH_RATE_HZ = 100.0
TRUTH_SMOOTH_S = 0.5


@dataclass(frozen=True)
class TruthInterval:
    """One interval of ground truth; ``figures`` holds JSON-safe numbers about it."""

    kind: str
    start: float
    end: float
    figures: dict = field(default_factory=dict, compare=False)

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "figures": {k: _json_safe(v) for k, v in self.figures.items()},
        }


def _json_safe(v: object) -> object:
    if isinstance(v, float | np.floating):
        return round(float(v), 4)
    if isinstance(v, np.integer):
        return int(v)
    return v


@dataclass(frozen=True)
class GroundTruth:
    """What really happened in a scenario, by the detection semantics of DESIGN.md."""

    scenario: str
    seed: int
    release_threshold_n: float
    max_force_n: float
    intervals: tuple[TruthInterval, ...]
    hold_s: float = 60.0
    gap_s: float = 2.0
    duration_s: float = 0.0

    def of_kind(self, kind: str) -> tuple[TruthInterval, ...]:
        return tuple(i for i in self.intervals if i.kind == kind)

    def to_dict(self) -> dict:
        """JSON-safe dictionary (``json.dumps`` works on it as is)."""
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "release_threshold_n": self.release_threshold_n,
            "max_force_n": self.max_force_n,
            "hold_s": self.hold_s,
            "gap_s": self.gap_s,
            "duration_s": round(self.duration_s, 3),
            "intervals": [i.to_dict() for i in self.intervals],
        }


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs of *mask*."""
    if mask.size == 0:
        return []
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def ground_truth(
    scenario_name: str,
    max_force_n: float,
    profile: LoadProfile,
    threshold: float,
    hold_s: float = 60.0,
    gap_s: float = 2.0,
) -> GroundTruth:
    """Contact, release, overpressure and rocking intervals of *profile*.

    The "filtered total force" is the true applied total smoothed by a 0.5 s
    moving average, sampled at 100 Hz. Rocking comes from the rock segments
    that meet the definition (0.4-3 Hz, peak-to-peak at least max(8 N, 15 % of
    the mean), at least 3 cycles), with their axis and extent; circling from the
    circle segments of at least 2 turns at 0.2-2 turns/s.
    """
    dt = 1.0 / TRUTH_RATE_HZ
    t = np.arange(0.0, profile.duration, dt)
    force, _, _ = profile.evaluate(t)
    k = max(1, round(TRUTH_SMOOTH_S / dt))
    kernel = np.ones(k) / k
    filtered = np.convolve(np.pad(force, (k // 2, k - 1 - k // 2), mode="edge"), kernel, "valid")
    intervals: list[TruthInterval] = []

    def interval(kind: str, a: int, b: int, **figures: Any) -> TruthInterval:
        seg = filtered[a:b]
        return TruthInterval(
            kind,
            float(t[a]),
            float(t[b - 1] + dt),
            {"mean_n": float(seg.mean()), "max_n": float(seg.max()), **figures},
        )

    for a, b in _runs(filtered > CONTACT_FLOOR_N):
        intervals.append(interval("contact", a, b))

    above = filtered >= threshold
    bridged = above.copy()
    runs = _runs(above)
    for (_, b0), (a1, _) in itertools.pairwise(runs):
        if (a1 - b0) * dt <= gap_s:
            bridged[b0:a1] = True
    for a, b in _runs(bridged):
        if (b - a) * dt >= hold_s:
            below = int((~above[a:b]).sum())
            intervals.append(
                interval(
                    "release",
                    a,
                    b,
                    duration_s=(b - a) * dt,
                    hold_reached_at=float(t[a] + hold_s),
                    bridged_s=below * dt,
                )
            )

    for a, b in _runs(filtered > max_force_n):
        if (b - a) * dt > OVERPRESSURE_MIN_S:
            intervals.append(interval("overpressure", a, b, duration_s=(b - a) * dt))

    for c in profile.segments:
        if c.seg.kind != "rock":
            continue
        a = round(c.start / dt)
        b = min(round(c.end / dt), t.size)
        mean = float(force[a:b].mean()) if b > a else 0.0
        p2p = mean * c.seg.swing
        cycles = c.freq_hz * c.seg.duration
        if (
            ROCK_BAND_HZ[0] <= c.freq_hz <= ROCK_BAND_HZ[1]
            and p2p >= max(8.0, 0.15 * mean)
            and cycles >= ROCK_MIN_CYCLES
        ):
            intervals.append(
                TruthInterval(
                    "rocking",
                    c.start,
                    c.end,
                    {
                        "freq_hz": c.freq_hz,
                        "p2p_n": p2p,
                        "mean_n": mean,
                        "cycles": cycles,
                        "axis_deg": c.seg.axis_deg % 180.0,
                        "extent_mm": 2.0 * c.seg.cop_swing_mm,
                    },
                )
            )
    for c in profile.segments:
        turns = c.freq_hz * c.seg.duration
        if (
            c.seg.kind == "circle"
            and CIRCLE_RATE[0] <= c.freq_hz <= CIRCLE_RATE[1]
            and turns >= CIRCLE_MIN_TURNS
            and c.seg.radius_mm >= CIRCLE_MIN_RADIUS_MM
        ):
            figures = {
                "turns": turns,
                "direction": c.seg.direction,
                "radius_mm": c.seg.radius_mm,
                "turns_per_s": c.freq_hz,
            }
            intervals.append(TruthInterval("circling", c.start, c.end, figures))
    intervals.sort(key=lambda i: (i.start, i.kind))
    return GroundTruth(
        scenario_name,
        profile.seed,
        float(threshold),
        float(max_force_n),
        tuple(intervals),
        float(hold_s),
        float(gap_s),
        profile.duration,
    )
