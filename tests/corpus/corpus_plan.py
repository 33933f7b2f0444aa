"""What the body does in a corpus trace: a random session plan, then its load and path.

A plan is a list of base-level keyframes (holds, ramps, lifts, presses,
posture shifts; smoothstep between keyframes) plus motions laid on top:
rocking episodes (on a hold, between holds, gently inside a release hold,
just before a lift-off), circling episodes and distractors that are *not*
rocking by DESIGN.md (too small, too slow, too short, or tremor). The body
signal is the total force (N) and the centre of pressure (mm) on a 200 Hz grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from corpus_waves import (
    Stroke,
    breath_wave,
    draw_stroke,
    drifting_phase,
    envelope,
    smoothstep,
)

BODY_RATE = 200.0
ROCK_BAND = (0.4, 3.0)
ROCK_MIN_P2P, ROCK_REL_P2P = 8.0, 0.15


def rock_required(mean: float) -> float:
    """DESIGN.md's swing for rocking: max(8 N, 15 % of the mean force)."""
    return max(ROCK_MIN_P2P, ROCK_REL_P2P * mean)


@dataclass
class Motion:
    """An oscillation laid on the base level from ``start``: rocking or a distractor.

    ``phase`` is the stroke phase (cycles) on the body grid from ``start``;
    ``swing`` the nominal peak-to-peak as a fraction of the base level; ``dips``
    the cycles whose amplitude halves; ``am`` the depth of a slow amplitude
    modulation. ``axis``/``extent`` move the centre of pressure with the stroke.
    """

    kind: str  # "rocking" or a distractor name
    mode: str
    start: float
    cycles: float
    phase: np.ndarray
    stroke: Stroke
    swing: float
    base: float
    f0: float
    drift: float
    dips: tuple[int, ...] = ()
    am: float = 0.0
    am_hz: float = 0.1
    axis: float = 0.0  # radians
    extent: float = 0.0  # mm, peak-to-peak along the axis

    @property
    def end(self) -> float:
        return self.start + self.duration

    @property
    def duration(self) -> float:
        n = int(np.searchsorted(self.phase, self.cycles))
        return n / BODY_RATE

    def gain(self, ph: np.ndarray) -> np.ndarray:
        """Amplitude factor per phase: envelope, slow modulation, single-cycle dips."""
        g = envelope(ph, self.cycles)
        if self.am:
            g = g * (1.0 - self.am * 0.5 * (1 + np.sin(2 * np.pi * self.am_hz * ph / self.f0)))
        for k in self.dips:  # a smooth dip to half over cycle k
            g = g * (1.0 - 0.5 * np.sin(np.pi * np.clip(ph - k, 0.0, 1.0)) ** 2)
        return g


@dataclass
class Circle:
    """The centre of pressure going round its resting point (turns > 0: ccw)."""

    start: float
    turns: float
    phase: np.ndarray  # turns from start, on the body grid
    radius: float
    direction: int  # +1 ccw, -1 cw
    rate: float

    @property
    def end(self) -> float:
        return self.start + int(np.searchsorted(self.phase, self.turns)) / BODY_RATE


@dataclass
class Plan:
    """A whole session: keyframes of the base level and centre of pressure, motions."""

    threshold: float
    max_force: float
    knots: list[tuple[float, float]] = field(default_factory=list)  # (t, level N)
    cop_knots: list[tuple[float, float, float]] = field(default_factory=list)  # (t, x, y)
    motions: list[Motion] = field(default_factory=list)
    circles: list[Circle] = field(default_factory=list)
    holds: list[tuple[float, float, float]] = field(default_factory=list)  # (start, end, level)
    breath_hz: float = 0.25
    breath_depth: float = 0.04
    breath_rise: float = 0.4
    breath_dir: float = 0.0

    @property
    def duration(self) -> float:
        return self.knots[-1][0]

    def level_at(self, t: float) -> float:
        return float(np.interp(t, [k[0] for k in self.knots], [k[1] for k in self.knots]))


class _Redraw(Exception):
    """The draw cannot meet the definitions with margin: draw the plan again."""


class _Builder:
    """Appends blocks to a plan in time order, drawing everything from one rng."""

    def __init__(self, rng: np.random.Generator, plan: Plan, cop_room: float) -> None:
        self.rng, self.plan, self.room = rng, plan, cop_room
        self.t, self.level = 0.0, 0.0
        self.cop = (0.0, 0.0)
        plan.knots.append((0.0, 0.0))
        plan.cop_knots.append((0.0, 0.0, 0.0))

    def go(self, duration: float, level: float, cop: tuple[float, float] | None = None) -> None:
        self.t += duration
        self.level = level
        if cop is not None:
            self.cop = cop
        self.plan.knots.append((self.t, level))
        self.plan.cop_knots.append((self.t, *self.cop))

    def stay(self, duration: float) -> None:
        self.go(duration, self.level)

    def new_cop(self) -> tuple[float, float]:
        r = self.room * 0.3 * np.sqrt(self.rng.random())
        a = self.rng.uniform(0, 2 * np.pi)
        return (float(r * np.cos(a)), float(r * np.sin(a)))

    # --- motions ---------------------------------------------------------------------

    def rocking(self, start: float, mode: str, base: float, max_s: float | None = None) -> Motion:
        """A rocking episode that meets the definition on every cycle, dips included."""
        rng = self.rng
        drift = float(rng.uniform(0.0, 0.3))
        lo, hi = ROCK_BAND[0] * 1.12 / (1 - drift), ROCK_BAND[1] * 0.93 / (1 + drift)
        f0 = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        cycles = float(rng.choice([rng.uniform(3.6, 8), rng.uniform(8, 25), rng.uniform(25, 60)]))
        if max_s is not None:
            cycles = min(cycles, max(3.6, max_s * f0 * (1 - drift)))
        stroke = draw_stroke(rng)
        dips = tuple(
            sorted({int(k) for k in rng.integers(1, max(2, int(cycles) - 1), rng.integers(0, 3))})
        )
        dips = dips if cycles >= 5 else ()
        am = float(rng.choice([0.0, rng.uniform(0.05, 0.2)]))
        cap = min(0.9 / -stroke.trough(), 1.2)  # the load never reaches zero

        def need() -> float:  # the weakest cycle still has 1.1 x the required swing
            floor = (1.0 - am) * (0.5 if dips else 1.0)
            return rock_required(base) / base * 1.1 / floor

        if need() > cap:
            dips, am = (), 0.0
        if need() > cap:
            raise _Redraw(f"no rocking swing fits a {base:.0f} N level")
        swing = need() * rng.uniform(1.0, 1.6)
        if mode == "gentle":  # inside a release hold: troughs stay above the threshold
            room = (1.0 - 1.06 * self.plan.threshold / base) / -stroke.trough()
            if room >= need():
                swing = min(swing, room)
            else:
                mode = "on_hold"
        swing = min(swing, cap)
        phase = drifting_phase(rng, f0, drift, 1 / BODY_RATE, cycles / (f0 * (1 - drift)) + 1)
        return Motion(
            "rocking",
            mode,
            start,
            cycles,
            phase,
            stroke,
            float(swing),
            base,
            f0,
            drift,
            dips,
            am,
            float(rng.uniform(0.05, 0.2)),
            float(rng.uniform(0, np.pi)),
            float(rng.uniform(0.25, 0.9) * self.room),
        )

    def distractor(self, start: float, base: float, room_s: float) -> Motion:
        """Something that is not rocking: too small, too slow, too short, or tremor."""
        rng = self.rng
        kind = str(rng.choice(["small", "slow", "short", "tremor"]))
        stroke = Stroke("sine")
        req = rock_required(base) / base
        if kind == "small":
            f0, swing, cycles = rng.uniform(0.5, 2.5), req * rng.uniform(0.25, 0.5), 20.0
            stroke = draw_stroke(rng)
        elif kind == "slow":  # a slow sway below the band
            f0, swing, cycles = rng.uniform(0.12, 0.3), rng.uniform(0.5, 1.2) * req, 5.0
        elif kind == "short":  # two strokes at most: fewer than three cycles
            f0, swing, cycles = rng.uniform(0.5, 1.5), req * rng.uniform(1.3, 2.0), 1.8
        else:
            f0, swing, cycles = rng.uniform(4.5, 7.0), req * rng.uniform(0.2, 0.5), 40.0
        cycles = min(cycles, room_s * f0)
        phase = drifting_phase(rng, float(f0), 0.05, 1 / BODY_RATE, cycles / (f0 * 0.95) + 1)
        return Motion(
            kind, "distractor", start, cycles, phase, stroke, float(swing), base, float(f0), 0.05
        )

    def circle(self, start: float, max_s: float) -> Circle | None:
        rng = self.rng
        rate = float(np.exp(rng.uniform(np.log(0.25), np.log(1.8))))
        turns = float(min(rng.uniform(2.3, 8.0), max_s * rate * 0.9))
        if turns < 2.3:
            return None
        phase = drifting_phase(rng, rate, 0.15, 1 / BODY_RATE, turns / (rate * 0.85) + 1)
        radius = float(rng.uniform(0.3, 0.6) * self.room)
        return Circle(start, turns, phase, radius, int(rng.choice([-1, 1])), rate)

    # --- blocks ----------------------------------------------------------------------

    def hold(self, level: float, duration: float, extra: str) -> None:
        """A hold with breathing, posture shifts and maybe a motion on top."""
        rng, start = self.rng, self.t
        self.go(float(rng.uniform(0.4, 1.5)), level, self.new_cop())
        body = duration - (self.t - start)
        t0 = self.t
        self.plan.holds.append((t0, t0 + body, level))
        shifts = sorted(rng.uniform(3.0, body - 3.0, rng.poisson(body / 60.0))) if body > 10 else []
        free = (t0 + 3.0, t0 + body - 3.0)
        if extra in ("rock", "gentle", "distractor", "circle") and free[1] - free[0] > 12:
            a = float(rng.uniform(free[0], free[0] + (free[1] - free[0]) * 0.3))
            if extra == "circle":
                c = self.circle(a, free[1] - a - 2)
                if c is not None:
                    self.plan.circles.append(c)
                    free = (a, c.end)
            else:
                m = (
                    self.distractor(a, level, free[1] - a - 2)
                    if extra == "distractor"
                    else self.rocking(a, "on_hold" if extra == "rock" else "gentle", level)
                )
                if m.end > free[1] - 1:
                    m = self._trim(m, free[1] - 1)
                if m is not None:
                    self.plan.motions.append(m)
                    free = (a, m.end)
        # posture shifts: steps of a few percent, never during a motion
        for s in shifts:
            at = t0 + float(s)
            if free[0] - 2 <= at <= free[1] + 2 and extra != "none":
                continue
            if at > self.t + 1.0:
                self.go(at - self.t, self.level)
                lvl = self.level * (1 + float(rng.choice([-1, 1]) * rng.uniform(0.02, 0.06)))
                lvl = min(max(lvl, level * 0.93), level * 1.07)  # keep the side of the threshold
                self.go(float(rng.uniform(0.3, 1.0)), lvl, self.new_cop())
        self.go(max(0.5, t0 + body - self.t), self.level)

    def _trim(self, m: Motion, end: float) -> Motion | None:
        room = (end - m.start) * m.f0 * (1 - m.drift)
        if m.kind == "rocking" and room < 3.6:
            return None
        m.cycles = min(m.cycles, room)
        m.dips = tuple(k for k in m.dips if k + 1 < m.cycles - 1)
        return m

    def rock_between(self, level: float) -> None:
        """Rocking at its own level between two holds."""
        rng = self.rng
        self.go(float(rng.uniform(0.8, 2.0)), level, self.new_cop())
        self.stay(float(rng.uniform(1.0, 3.0)))
        m = self.rocking(self.t, "between", level)
        self.plan.motions.append(m)
        self.stay(m.duration)
        self.stay(float(rng.uniform(1.0, 3.0)))

    def rock_before_lift(self, level: float) -> None:
        """A short rocking episode at the very end of a press, then the lift-off."""
        m = self.rocking(self.t + 0.5, "before_lift", level, max_s=float(self.rng.uniform(3, 8)))
        self.plan.motions.append(m)
        self.stay(0.5 + m.duration + float(self.rng.uniform(0.2, 0.8)))

    def lift(self, level: float) -> None:
        """A partial lift: short ones (bridged) or long ones (splitting a release)."""
        rng = self.rng
        ratio = float(rng.uniform(0.05, 0.6))
        d = float(rng.uniform(0.3, 0.9) if rng.random() < 0.5 else rng.uniform(3.5, 6.0))
        self.go(0.3, level * ratio)
        self.stay(d)
        self.go(0.3, level)

    def press(self, peak: float, duration: float) -> None:
        back = self.level
        self.go(0.4, peak)
        self.stay(duration)
        self.go(0.4, back)


def draw_plan(rng: np.random.Generator, cop_room: float, circles: bool) -> Plan:
    """A random session of 1-3 contacts, each a few holds with motions between and on them."""
    threshold = float(rng.uniform(60, 140))
    plan = Plan(threshold, float(threshold * rng.uniform(1.8, 2.4)))
    plan.breath_hz = float(rng.uniform(0.16, 0.32))
    plan.breath_depth = float(rng.uniform(0.02, 0.06))
    plan.breath_rise = float(rng.uniform(0.3, 0.6))
    plan.breath_dir = float(rng.uniform(0, 2 * np.pi))
    b = _Builder(rng, plan, cop_room)
    b.stay(float(rng.uniform(2, 6)))
    extras = ["none", "rock", "rock", "gentle", "gentle", "distractor"] + ["circle"] * (
        2 if circles else 0
    )
    for _ in range(int(rng.integers(1, 4))):
        b.go(float(rng.uniform(1.5, 4.0)), threshold * float(rng.uniform(0.4, 0.8)), b.new_cop())
        for _ in range(int(rng.integers(2, 5))):
            release = rng.random() < 0.6
            level = threshold * float(rng.uniform(1.12, 1.6) if release else rng.uniform(0.35, 0.8))
            level = min(level, plan.max_force * 0.8)
            extra = str(rng.choice(extras))
            if extra == "gentle" and not release:
                extra = "rock"
            long = release and rng.random() < 0.8
            b.hold(level, float(rng.uniform(72, 140) if long else rng.uniform(15, 45)), extra)
            r = rng.random()
            if r < 0.3:
                b.rock_between(threshold * float(rng.uniform(0.45, 0.9)))
            elif r < 0.45:
                b.lift(b.level)
            elif r < 0.55:
                d = float(rng.uniform(1.8, 4.0) if rng.random() < 0.7 else rng.uniform(0.1, 0.3))
                b.press(plan.max_force * float(rng.uniform(1.1, 1.3)), d)
        if rng.random() < 0.35:
            b.rock_before_lift(b.level)
        b.go(float(rng.uniform(0.8, 2.0)), 0.0, (0.0, 0.0))
        b.stay(float(rng.uniform(3, 10)))
    return plan


def _smooth_keys(t: np.ndarray, kt: np.ndarray, kv: np.ndarray) -> np.ndarray:
    """Keyframe values with smoothstep between keyframes."""
    i = np.clip(np.searchsorted(kt, t, side="right") - 1, 0, len(kt) - 2)
    span = kt[i + 1] - kt[i]
    u = smoothstep(np.where(span > 0, (t - kt[i]) / np.where(span > 0, span, 1), 1.0))
    return kv[i] + (kv[i + 1] - kv[i]) * u


def body_signals(plan: Plan) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Time, base level, total force (N) and centre of pressure (n, 2) on the body grid."""
    t = np.arange(0.0, plan.duration, 1 / BODY_RATE)
    kt = np.array([k[0] for k in plan.knots])
    base = _smooth_keys(t, kt, np.array([k[1] for k in plan.knots]))
    ct = np.array([k[0] for k in plan.cop_knots])
    cop = np.column_stack(
        [_smooth_keys(t, ct, np.array([k[d + 1] for k in plan.cop_knots])) for d in (0, 1)]
    )
    osc = np.zeros_like(t)
    for m in plan.motions:
        i0 = round(m.start * BODY_RATE)
        n = min(int(np.searchsorted(m.phase, m.cycles)), t.size - i0)
        ph = m.phase[:n]
        w = m.stroke.wave(ph) * m.gain(ph)
        osc[i0 : i0 + n] += m.swing * w
        if m.extent:
            cop[i0 : i0 + n, 0] += m.extent * w * np.cos(m.axis)
            cop[i0 : i0 + n, 1] += m.extent * w * np.sin(m.axis)
    for c in plan.circles:
        i0 = round(c.start * BODY_RATE)
        n = min(int(np.searchsorted(c.phase, c.turns)), t.size - i0)
        ph = c.phase[:n]
        r = c.radius * envelope(ph, c.turns, 0.15)
        ang = 2 * np.pi * c.direction * ph
        cop[i0 : i0 + n, 0] += r * np.cos(ang)
        cop[i0 : i0 + n, 1] += r * np.sin(ang)
        osc[i0 : i0 + n] += 0.02 * np.sin(ang) * envelope(ph, c.turns, 0.15)
    phase = plan.breath_hz * t + 0.3 * np.sin(2 * np.pi * t / 97.0)
    breath = plan.breath_depth * breath_wave(phase, plan.breath_rise)
    total = np.maximum(base * (1.0 + osc) * (1.0 + breath), 0.0)
    cop[:, 0] += 1.0 * breath / plan.breath_depth * np.cos(plan.breath_dir)
    cop[:, 1] += 1.0 * breath / plan.breath_depth * np.sin(plan.breath_dir)
    return t, base, total, cop
