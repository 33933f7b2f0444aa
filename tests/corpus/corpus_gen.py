"""An independent validation corpus: seeded traces with ground truth, not from our simulator.

Nothing here imports ``knotsense.firmware_sim`` or ``tests/support/synthetic.py``: the
body, the sensors and the truth are written from DESIGN.md's definitions
(corpus_waves.py: stroke shapes; corpus_plan.py: what the body does). A trace
is what a perfectly calibrated unit would report in newtons, with the
imperfections a calibration cannot remove: noise, quantisation, offset drift,
FSR creep under load and gain error, spikes, and dropped samples.

Seeds: ``DEV_SEEDS`` (0-99) are for developing detectors; ``HELD_OUT_SEEDS``
(1000-1099) are for the figures a change is judged by, and must not be used
to tune it. ``seeds(split, n)`` gives the first *n* of a split.

Ground truth (``Trace.truth``), in the words of DESIGN.md:

- release: maximal intervals where the *filtered total force* (the true
  applied total, 0.5 s centred moving average, on the 200 Hz body grid) stays
  at or above the threshold, bridging dips of at most ``gap`` s, lasting at
  least ``hold`` s. Plans whose truth sits within a margin of a boundary (a
  run within 6 s of ``hold``, a dip within 0.4 s of ``gap``, an overpressure
  within 0.4 s of 1 s, a filtered level within 2 % of the threshold for long)
  are drawn again, so the truth does not depend on the filter one picks.
- overpressure: filtered total above the user's maximum for over 1 s.
- contact: filtered total above 5 N.
- rocking: every rocking motion of the plan; each meets the definition on
  every cycle (0.4-3 Hz, peak-to-peak >= 1.1 x max(8 N, 15 % of the mean)),
  with at least 3 cycles. Distractors (too small, below the band, under 2
  cycles, tremor) and breathing are not rocking. Figures: frequency, cycles,
  swing, shape, mode (on_hold, gentle, between, before_lift), and with 3+
  channels the axis (degrees, 0 = +x, in [0, 180)) and extent (mm p2p).
- circling: the centre of pressure going round for >= 2.3 turns at 0.2-2
  turns/s (3+ channels only), with turns, direction and radius.
"""

from __future__ import annotations

import itertools
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from corpus_plan import BODY_RATE, Plan, _Redraw, body_signals, draw_plan, rock_required
from corpus_waves import angle_deg

DEV_SEEDS = range(0, 100)
HELD_OUT_SEEDS = range(1000, 1100)
SPLITS = {"dev": DEV_SEEDS, "held-out": HELD_OUT_SEEDS}
RATES = (50, 100, 200, 250, 500, 1000)
SENSORS = ("load_cell", "fsr")
HOLD_S, GAP_S, CONTACT_N, OVER_S, SMOOTH_S = 60.0, 2.0, 5.0, 1.0, 0.5
MAX_VALUES = 3_000_000  # samples x channels per trace


def seeds(split: str, n: int | None = None) -> list[int]:
    """The first *n* seeds of a split ("dev" or "held-out")."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (dev, held-out)")
    pool = list(SPLITS[split])
    return pool if n is None else pool[: max(0, n)]


@dataclass(frozen=True)
class Interval:
    """One interval of ground truth (the ``kind``/``start``/``end`` the scorer matches)."""

    kind: str
    start: float
    end: float
    figures: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Trace:
    """One corpus session: sensor readings (N), channel layout and the truth."""

    seed: int
    sensor: str
    rate: int
    t: np.ndarray = field(repr=False)
    forces: np.ndarray = field(repr=False)  # (n, channels), N
    positions: np.ndarray = field(repr=False)  # (channels, 2), mm
    threshold: float
    max_force: float
    truth: tuple[Interval, ...]
    plan: Plan = field(repr=False)
    decoys: tuple[Interval, ...]  # distractors: what is *not* rocking (kind = its name)
    body_t: np.ndarray = field(repr=False)
    body_total: np.ndarray = field(repr=False)  # the true applied total (N)
    body_cop: np.ndarray = field(repr=False)  # the true centre of pressure (mm)
    filtered: np.ndarray = field(repr=False)  # the filtered total of the truth
    hold: float = HOLD_S
    gap: float = GAP_S

    @property
    def channels(self) -> int:
        return int(self.forces.shape[1])

    def of_kind(self, kind: str) -> tuple[Interval, ...]:
        return tuple(i for i in self.truth if i.kind == kind)

    @property
    def label(self) -> str:
        return f"corpus seed={self.seed} {self.sensor} {self.channels}ch {self.rate}Hz"


# --- layout and load sharing -----------------------------------------------------------


def draw_layout(rng: np.random.Generator) -> np.ndarray:
    """Channel positions (mm): one in the middle, a pair, or a jittered ring of 3-8."""
    c = int(rng.choice([1, 2, 3, 4, 4, 5, 6, 8]))
    if c == 1:
        return np.zeros((1, 2))
    radius = float(rng.uniform(12, 25))
    rot = float(rng.uniform(0, 2 * np.pi))
    if c == 2:
        return radius * np.array([[np.cos(rot), np.sin(rot)], [-np.cos(rot), -np.sin(rot)]])
    ang = rot + 2 * np.pi * np.arange(c) / c + rng.uniform(-0.1, 0.1, c)
    r = radius * rng.uniform(0.93, 1.07, c)
    return np.column_stack((r * np.cos(ang), r * np.sin(ang)))


def cop_room(positions: np.ndarray) -> float:
    """How far (mm) the centre of pressure may go from the layout centre with no share < 0."""
    c = positions.shape[0]
    if c < 2:
        return 0.0
    rel = positions - positions.mean(axis=0)
    return float(np.linalg.norm(rel, axis=1).min() * (0.9 if c == 2 else 0.45))


def shares(positions: np.ndarray, cop: np.ndarray) -> np.ndarray:
    """Per-channel load shares (sum 1) whose weighted position is *cop* (least norm)."""
    c = positions.shape[0]
    if c == 1:
        return np.ones((cop.shape[0], 1))
    centre = positions.mean(axis=0)
    rel = positions - centre
    d = (cop - centre) @ np.linalg.pinv(rel)  # (n, c), least norm: rel.T @ d = cop - centre
    w = 1.0 / c + d
    w = np.maximum(w, 0.0)
    return w / w.sum(axis=1, keepdims=True)


# --- the truth -------------------------------------------------------------------------


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def filtered_total(total: np.ndarray) -> np.ndarray:
    """The filtered total force of the truth: a 0.5 s centred moving average."""
    k = round(SMOOTH_S * BODY_RATE)
    pad = np.pad(total, (k // 2, k - 1 - k // 2), mode="edge")
    c = np.concatenate(([0.0], np.cumsum(pad)))
    return (c[k:] - c[:-k]) / k


def level_truth(
    t: np.ndarray, filt: np.ndarray, threshold: float, max_force: float
) -> list[Interval]:
    """Contact, release and overpressure by DESIGN.md; _Redraw near a boundary."""
    dt = 1 / BODY_RATE
    out = [
        Interval("contact", float(t[a]), float(t[b - 1] + dt)) for a, b in _runs(filt > CONTACT_N)
    ]
    above = filt >= threshold
    runs = _runs(above)
    bridged = above.copy()
    for (_, b0), (a1, _) in itertools.pairwise(runs):
        dip = (a1 - b0) * dt
        if abs(dip - GAP_S) < 0.4:
            raise _Redraw(f"a dip of {dip:.2f} s is too close to the gap")
        if dip <= GAP_S:
            bridged[b0:a1] = True
    for a, b in _runs(bridged):
        d = (b - a) * dt
        if abs(d - HOLD_S) < 6.0:
            raise _Redraw(f"a release-level run of {d:.1f} s is too close to the hold")
        if d >= HOLD_S:
            out.append(Interval("release", float(t[a]), float(t[b - 1] + dt), {"duration_s": d}))
    near = np.abs(filt / threshold - 1.0) < 0.02
    if any((b - a) * dt > 1.5 for a, b in _runs(near)):
        raise _Redraw("the level lingers at the threshold")
    for a, b in _runs(filt > max_force):
        d = (b - a) * dt
        if abs(d - OVER_S) < 0.4:
            raise _Redraw(f"an overpressure of {d:.2f} s is too close to 1 s")
        if d > OVER_S:
            out.append(
                Interval("overpressure", float(t[a]), float(t[b - 1] + dt), {"duration_s": d})
            )
    return out


def motion_truth(plan: Plan, total: np.ndarray, channels: int) -> list[Interval]:
    """Rocking and circling intervals of the plan, with their figures."""
    out = []
    for m in plan.motions:
        if m.kind != "rocking":
            continue
        a, b = round(m.start * BODY_RATE), round(m.end * BODY_RATE)
        mean = float(total[a:b].mean())
        figs: dict[str, Any] = {
            "freq_hz": m.cycles / m.duration,
            "cycles": m.cycles,
            "p2p_n": m.swing * m.base,
            "required_p2p_n": rock_required(mean),
            "mean_n": mean,
            "shape": m.stroke.shape,
            "mode": m.mode,
            "drift": m.drift,
            "dips": len(m.dips),
        }
        if channels >= 3:
            figs["axis_deg"] = angle_deg(math.cos(m.axis), math.sin(m.axis))
            figs["extent_mm"] = m.extent
        out.append(Interval("rocking", m.start, m.end, figs))
    if channels >= 3:
        for c in plan.circles:
            figs = {
                "turns": c.turns,
                "direction": "ccw" if c.direction > 0 else "cw",
                "radius_mm": c.radius,
                "turns_per_s": c.turns / (c.end - c.start),
            }
            out.append(Interval("circling", c.start, c.end, figs))
    return out


# --- sensors ---------------------------------------------------------------------------


def sense(
    rng: np.random.Generator, sensor: str, t: np.ndarray, f: np.ndarray, rate: int
) -> np.ndarray:
    """What calibrated channels report for true channel forces *f* (N) at times *t*."""
    n, c = f.shape
    span = t[-1] - t[0]
    gain = 1.0 + rng.normal(0.0, 0.004 if sensor == "load_cell" else 0.02, c)
    y = f * gain
    if sensor == "fsr":
        # creep under load: +k per decade of time loaded, restarting when unloaded
        k = rng.uniform(0.01, 0.035, c)
        for j in range(c):
            loaded = f[:, j] > 1.0
            start = np.maximum.accumulate(np.where(~loaded, np.arange(n), 0))
            since = (np.arange(n) - start) / rate
            y[:, j] *= 1.0 + k[j] * np.log10(1.0 + since / 5.0) * loaded
        y[f < 0.2] = 0.0  # an FSR reads nothing below its turn-on force
    total_drift = rng.uniform(-3.0, 3.0)
    walk = np.cumsum(rng.normal(0.0, 1.0, (max(2, int(span) + 2), c)), axis=0)
    walk -= walk[0]
    walk *= 1.0 / max(1e-9, float(np.abs(walk).max()))
    tk = np.linspace(t[0], t[-1], walk.shape[0])
    drift = np.column_stack([np.interp(t, tk, walk[:, j]) for j in range(c)])
    y += (drift * 0.5 + (t[:, None] - t[0]) / span * total_drift) / c
    sigma = rng.uniform(0.05, 0.6) if sensor == "load_cell" else rng.uniform(0.2, 1.5)
    y += rng.normal(0.0, sigma / math.sqrt(c), (n, c))
    q = float(rng.choice([0.01, 0.02, 0.05, 0.1]))
    return np.round(y / q) * q


def perturb(
    rng: np.random.Generator, t: np.ndarray, y: np.ndarray, rate: int
) -> tuple[np.ndarray, np.ndarray]:
    """Spikes (one channel, 1-2 samples, +-30-150 N) and dropouts (0.05-0.4 s deleted)."""
    n, c = y.shape
    minutes = (t[-1] - t[0]) / 60
    for _ in range(rng.poisson(float(rng.choice([0.0, 2.0, 6.0])) * minutes)):
        i = int(rng.integers(0, n - 2))
        y[i : i + int(rng.integers(1, 3)), int(rng.integers(0, c))] += rng.choice(
            [-1, 1]
        ) * rng.uniform(30, 150)
    keep = np.ones(n, dtype=bool)
    for _ in range(rng.poisson(float(rng.choice([0.0, 1.0, 2.0])) * minutes)):
        g = int(rng.integers(0, n))
        keep[g : g + max(1, int(rng.uniform(0.05, 0.4) * rate))] = False
    return t[keep], y[keep]


# --- the trace -------------------------------------------------------------------------


def make_trace(seed: int, circles: bool = True) -> Trace:
    """The corpus trace of *seed* (deterministic)."""
    for attempt in range(50):
        rng = np.random.default_rng([seed, attempt, zlib.crc32(b"knotsense-corpus")])
        sensor = str(rng.choice(SENSORS))
        positions = draw_layout(rng)
        try:
            plan = draw_plan(rng, cop_room(positions), circles and positions.shape[0] >= 3)
            bt, _, total, cop = body_signals(plan)
            filt = filtered_total(total)
            truth = level_truth(bt, filt, plan.threshold, plan.max_force)
        except _Redraw:
            continue
        truth += motion_truth(plan, total, positions.shape[0])
        truth.sort(key=lambda i: (i.start, i.kind))
        c = positions.shape[0]
        rates = [r for r in RATES if r * plan.duration * c <= MAX_VALUES] or [RATES[0]]
        rate = int(rng.choice(rates))
        n = int(plan.duration * rate)
        t_off = float(np.round(rng.uniform(0, 1000), 3))  # sessions need not start at 0
        n = min(n, int(bt[-1] * rate))
        tb = (np.arange(n) + rng.uniform(0.0, 0.1, n)) / rate  # clock jitter, still increasing
        f_total = np.interp(tb, bt, total)
        cop_s = np.column_stack([np.interp(tb, bt, cop[:, d]) for d in (0, 1)])
        forces = f_total[:, None] * shares(positions, cop_s)
        y = sense(rng, sensor, tb, forces, rate)
        ts, y = perturb(rng, tb + t_off, y, rate)
        return Trace(
            seed,
            sensor,
            rate,
            ts,
            y,
            positions,
            plan.threshold,
            plan.max_force,
            tuple(_shift(i, t_off) for i in truth),
            plan,
            tuple(
                Interval(m.kind, m.start + t_off, m.end + t_off)
                for m in plan.motions
                if m.kind != "rocking"
            ),
            bt + t_off,
            total,
            cop,
            filt,
        )
    raise RuntimeError(f"corpus seed {seed}: no plan met the margins in 50 draws")


def _shift(i: Interval, by: float) -> Interval:
    return Interval(i.kind, i.start + by, i.end + by, i.figures)
