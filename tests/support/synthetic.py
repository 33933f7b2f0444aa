"""Synthetic force traces with known episodes, for tests, benchmarks and demos.

Not the simulator (knotsense.firmware_sim models the device and its wire
format): this is a quick, seeded generator of the *forces* a session produces
-- lie-down ramps, viscoelastic settling, breathing, rocking bouts, short dips,
lift-offs, noise, drift, spikes, NaNs and gaps -- with ground truth computed
from the clean signal by the DESIGN.md definitions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

__all__ = ["SyntheticSession", "TrueEpisode", "make_session", "true_releases"]


@dataclass(frozen=True)
class TrueEpisode:
    """A ground-truth episode (frequency and cycles only for rocking)."""

    kind: str
    start: float
    end: float
    frequency: float = 0.0
    cycles: int = 0


@dataclass(frozen=True)
class SyntheticSession:
    """Sample times, per-channel forces (N), the clean total and the truth."""

    t: FloatArray
    forces: FloatArray
    clean_total: FloatArray
    truth: tuple[TrueEpisode, ...]
    threshold: float
    hold: float
    gap: float
    positions: tuple[tuple[float, ...], ...]

    def of(self, kind: str) -> list[TrueEpisode]:
        return [e for e in self.truth if e.kind == kind]


def true_releases(
    t: FloatArray, total: FloatArray, threshold: float, hold: float, gap: float
) -> list[TrueEpisode]:
    """Release intervals of a clean signal by the definition (reference implementation)."""
    idx = np.flatnonzero(total >= threshold)
    if idx.size == 0:
        return []
    dt = float(np.median(np.diff(t)))
    out: list[TrueEpisode] = []
    start = last = float(t[idx[0]])
    for ti in t[idx[1:]]:
        if ti - last - dt > gap:
            if last + dt - start >= hold:
                out.append(TrueEpisode("release", start, last + dt))
            start = float(ti)
        last = float(ti)
    if last + dt - start >= hold:
        out.append(TrueEpisode("release", start, last + dt))
    return out


def _breath(t: FloatArray, rate: float, phase: float) -> FloatArray:
    """Zero-mean breathing wave in [-0.5, 0.5]: linear rise, exponential fall."""
    u = (t * rate + phase) % 1.0
    rise = u < 0.4
    wave = np.where(rise, u / 0.4, np.exp(-(u - 0.4) / 0.12))
    return wave - 0.5


def make_session(
    seed: int,
    rate: float = 100.0,
    channels: int = 4,
    lies: int = 4,
    threshold: float | None = None,
    hold: float = 60.0,
    gap: float = 2.0,
    noise: float = 0.5,
    spikes_per_min: float = 3.0,
    gaps_per_min: float = 1.0,
    rocking: bool = True,
    breathing: bool = True,
) -> SyntheticSession:
    """A seeded session of *lies* lie-downs separated by lift-offs.

    Each lie is a release (level 1.2-1.6 x threshold, 65-110 s, maybe a dip
    shorter than ``gap`` or a lift longer than it), a short hold (above the
    threshold for 25-45 s: not a release) or a low lie (below the threshold);
    any lie may carry rocking bouts (0.4-2 Hz, 20-60 % swing, 4-10 cycles).
    """
    rng = np.random.default_rng(seed)
    thr = float(threshold if threshold is not None else rng.uniform(90, 150))
    plan: list[tuple[float, float, dict]] = []  # (start, end, lie parameters)
    cursor = float(rng.uniform(3, 8))
    for _ in range(lies):
        kind = rng.choice(["release", "release", "short", "low"])
        if kind == "release":
            level, dur = thr * rng.uniform(1.25, 1.6), rng.uniform(70, 110)
        elif kind == "short":
            level, dur = thr * rng.uniform(1.25, 1.6), rng.uniform(25, 45)
        else:
            level, dur = thr * rng.uniform(0.45, 0.7), rng.uniform(30, 60)
        plan.append((cursor, cursor + dur, {"kind": kind, "level": level}))
        cursor += dur + rng.uniform(5, 12)
    t_end = cursor
    n = int(t_end * rate)
    t = np.arange(n) / rate
    total = np.zeros(n)
    rock_total = np.zeros(n)
    rock_truth: list[TrueEpisode] = []
    balance = np.zeros(n)  # fraction of load moved along the layout axis (-1..1)
    for start, end, p in plan:
        level = p["level"]
        up = rng.uniform(1.0, 3.0)
        down = rng.uniform(0.6, 1.5)
        settle, tau = rng.uniform(0.05, 0.15), rng.uniform(3, 20)
        m = (t >= start) & (t < end + down)
        tl = t[m] - start
        env = np.clip(tl / up, 0, 1) * np.clip((end + down - t[m]) / down, 0, 1)
        lie = level * (1 + settle * np.exp(-np.maximum(tl - up, 0) / tau)) * env
        if breathing:
            depth = rng.uniform(0.03, 0.08)
            lie *= 1 + depth * _breath(tl, rng.uniform(0.2, 0.33), rng.uniform(0, 1))
            balance[m] += 0.05 * _breath(tl, 0.25, 0.3)
        blocked = (np.inf, np.inf)
        if p["kind"] == "release" and rng.random() < 0.5:
            # A dip shorter than `gap` must not split the release.
            d0, dd = start + rng.uniform(20, 40), rng.uniform(0.3, 0.7) * gap
            lie[(t[m] >= d0) & (t[m] < d0 + dd)] = thr * rng.uniform(0.3, 0.7)
            blocked = (d0, d0 + dd)
        elif p["kind"] == "release" and rng.random() < 0.4:
            # A lift longer than `gap` must split it.
            d0, dd = start + rng.uniform(15, end - start - 15), gap + rng.uniform(1.0, 3.0)
            lie[(t[m] >= d0) & (t[m] < d0 + dd)] = 0.0
            blocked = (d0, d0 + dd)
        total[m] += lie
        if rocking and rng.random() < 0.6:
            slot = start + up + 5
            for _ in range(int(rng.integers(1, 3))):
                f, cyc = rng.uniform(0.4, 2.0), int(rng.integers(4, 11))
                swing = rng.uniform(0.2, 0.6)
                r0 = slot + rng.uniform(0, 5)
                r1 = r0 + cyc / f
                if r1 > end - 3:
                    break
                if r0 < blocked[1] + 3 and r1 > blocked[0] - 3:
                    slot = blocked[1] + 3  # keep rocking clear of dips and lifts
                    continue
                rm = (t >= r0) & (t < r1)
                wave = np.sin(2 * np.pi * f * (t[rm] - r0))
                rock_total[rm] += 0.5 * swing * level * wave
                balance[rm] += 0.3 * wave
                rock_truth.append(TrueEpisode("rocking", float(r0), float(r1), float(f), cyc))
                slot = r1 + rng.uniform(4, 10)
    clean = total + rock_total
    releases = true_releases(t, clean, thr, hold, gap)
    # Channels: a base share per channel, load moved along the layout by `balance`.
    pos = np.linspace(-30.0, 30.0, channels) if channels > 1 else np.zeros(1)
    axis = pos / (np.max(np.abs(pos)) or 1.0)
    base = rng.uniform(0.7, 1.3, channels)
    share = base[None, :] * (1 + np.outer(np.clip(balance, -0.9, 0.9), axis))
    share /= share.sum(axis=1, keepdims=True)
    forces = clean[:, None] * share
    drift = np.outer(np.sin(2 * np.pi * t / rng.uniform(600, 1200)), rng.uniform(-1, 1, channels))
    forces += drift + rng.normal(0, noise, forces.shape)
    minutes = t_end / 60
    for _ in range(rng.poisson(spikes_per_min * minutes)):
        i, c = int(rng.integers(0, n - 2)), int(rng.integers(0, channels))
        forces[i : i + int(rng.integers(1, 3)), c] += rng.choice([-1, 1]) * rng.uniform(40, 150)
    for _ in range(rng.poisson(0.5 * minutes)):
        forces[int(rng.integers(0, n)), int(rng.integers(0, channels))] = np.nan
    keep = np.ones(n, dtype=bool)
    for _ in range(rng.poisson(gaps_per_min * minutes)):
        g0 = int(rng.integers(0, n))
        keep[g0 : g0 + int(rng.uniform(0.05, 0.35) * rate)] = False
    truth = tuple(sorted(releases + rock_truth, key=lambda e: e.start))
    return SyntheticSession(
        t[keep],
        forces[keep],
        clean[keep],
        truth,
        thr,
        hold,
        gap,
        tuple((float(p),) for p in pos),
    )
