"""Scenarios: what a body does to the knob over time, and the ground truth that follows.

A scenario is a list of segments (lie down, hold, rock, press, lift ...) plus
the unit it runs on (sensor kind, channels, rate). It is data -- TOML files in
``firmware_sim/scenarios/`` -- or built in Python::

    scenario = (
        ScenarioBuilder("demo", sensor="load_cell", channels=4)
        .idle(3).lie_down(4, force=140).hold(90, force=150, settle_s=20)
        .rock(20, freq_hz=0.6, swing=0.4).lift(1.5).hold(30).lift_off(2).idle(3)
        .build()
    )

The load is evaluated analytically at any host time (seconds since power-on),
so the device, :func:`render` and the ground truth all see the same body. The
seed perturbs the body (breathing rate and phase, posture-shift times and
sizes, rocking frequency) within a few percent; the ground truth is computed
for that seed.

TOML layout (every key optional except ``name`` and the segments)::

    name = "demo"
    description = "..."
    sensor = "load_cell"          # or "fsr"
    channels = 4                  # 1..8
    rate_hz = 80
    max_force_n = 280             # the user's maximum: overpressure above it
    release_threshold_n = 110
    breathing_hz = 0.25
    silicone = "dense"            # soft | dense | hard: Prony relaxation preset
    ambient_c = 22.0
    ambient_drift_c = 0.0         # ambient change over the whole scenario
    noise_scale = 1.0             # multiplies the sensor noise
    drift_scale = 1.0             # multiplies sensor drift and temperature coefficients
    faults = ""                   # fault grammar of knotsense.firmware_sim.config

    [[segment]]
    kind = "hold"                 # see SEGMENT_KINDS
    duration = 90
    force = 150
    ...                           # any field of Segment
"""

from __future__ import annotations

import itertools
import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from knotsense.errors import ConfigurationError
from knotsense.firmware_sim.config import SENSORS, FaultConfig

if TYPE_CHECKING:
    from knotsense.firmware_sim.physics import Rendered

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
)
SILICONES = ("soft", "dense", "hard")
CONTACT_FLOOR_N = 5.0
OVERPRESSURE_MIN_S = 1.0
ROCK_BAND_HZ = (0.4, 3.0)
ROCK_MIN_CYCLES = 3
TRUTH_RATE_HZ = 100.0
TRUTH_SMOOTH_S = 0.5


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
        cop_swing_mm: rocking amplitude of the centre of pressure along x.
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
        if not 0 <= self.ratio <= 1:
            raise ConfigurationError(f"{self.kind} segment: ratio must be 0..1")
        object.__setattr__(self, "cop_mm", tuple(float(v) for v in self.cop_mm))
        if len(self.cop_mm) != 2:
            raise ConfigurationError(f"{self.kind} segment: cop_mm must be [x, y]")


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


@dataclass(frozen=True)
class Scenario:
    """A body on the knob over time, and the unit it runs on. See the module docstring."""

    name: str
    segments: tuple[Segment, ...]
    description: str = ""
    sensor: str = "load_cell"
    channels: int = 4
    rate_hz: int = 80
    max_force_n: float = 280.0
    release_threshold_n: float = 110.0
    breathing_hz: float = 0.25
    silicone: str = "dense"
    ambient_c: float = 22.0
    ambient_drift_c: float = 0.0
    noise_scale: float = 1.0
    drift_scale: float = 1.0
    faults: FaultConfig = field(default_factory=FaultConfig)

    def __post_init__(self) -> None:
        if not self.segments:
            raise ConfigurationError(f"scenario {self.name!r} has no segments")
        if self.sensor not in SENSORS:
            raise ConfigurationError(f"scenario {self.name!r}: sensor must be one of {SENSORS}")
        if not 1 <= self.channels <= 8:
            raise ConfigurationError(f"scenario {self.name!r}: channels must be 1..8")
        if self.silicone not in SILICONES:
            raise ConfigurationError(f"scenario {self.name!r}: silicone must be one of {SILICONES}")
        if not 0 < self.release_threshold_n < self.max_force_n:
            raise ConfigurationError(
                f"scenario {self.name!r}: need 0 < release_threshold_n < max_force_n"
            )
        if not 0.05 <= self.breathing_hz <= 1.0:
            raise ConfigurationError(f"scenario {self.name!r}: breathing_hz must be 0.05..1")

    @property
    def duration_s(self) -> float:
        return float(sum(s.duration for s in self.segments))

    def profile(self, seed: int = 0) -> LoadProfile:
        """The load of this scenario for *seed*, evaluable at any host time."""
        return LoadProfile(self, seed)

    def ground_truth(
        self,
        release_threshold_n: float | None = None,
        hold_s: float = 60.0,
        gap_s: float = 2.0,
        *,
        seed: int = 0,
    ) -> GroundTruth:
        """Release, rocking, overpressure and contact intervals for *seed* (DESIGN.md semantics).

        The "filtered total force" is the true applied total smoothed by a
        0.5 s moving average, sampled at 100 Hz. Rocking comes from the rock
        segments that meet the definition (0.4-3 Hz, peak-to-peak at least
        max(8 N, 15 % of the mean), at least 3 cycles).
        """
        threshold = self.release_threshold_n if release_threshold_n is None else release_threshold_n
        return _ground_truth(self, self.profile(seed), threshold, hold_s, gap_s, seed)

    def with_overrides(self, **changes: Any) -> Scenario:
        """A copy with some fields changed (sensor, channels, rate_hz ...)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


# --- load profile -------------------------------------------------------------------------


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

_DEFAULT_BREATHING = {"hold": 0.05, "overpressure": 0.05, "rock": 0.03, "lie_down": 0.0}


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
    """The total force and centre of pressure a scenario puts on the knob, for one seed."""

    SHIFT_S = 0.8

    def __init__(self, scenario: Scenario, seed: int = 0) -> None:
        self.scenario = scenario
        self.seed = seed
        rng = np.random.default_rng([seed, 0x5CE1A])
        self.breath_phase0 = float(rng.random())
        self.breathing_hz = scenario.breathing_hz * float(rng.uniform(0.92, 1.08))
        self.segments: list[_Compiled] = []
        t = 0.0
        level, cop = 0.0, (0.0, 0.0)
        for i, seg in enumerate(scenario.segments):
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
            x = x + seg.cop_swing_mm * wave
        if c.breathing_depth > 0:
            phase = self.breath_phase0 + c.breathing_hz * (tau + c.start)
            b = _breath_wave(phase)
            base = base * (1.0 + c.breathing_depth * b)
            y = y - 1.5 * b
        return np.maximum(base, 0.0), x, y


# --- ground truth -------------------------------------------------------------------------


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs of *mask*."""
    if mask.size == 0:
        return []
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def _ground_truth(
    scenario: Scenario,
    profile: LoadProfile,
    threshold: float,
    hold_s: float,
    gap_s: float,
    seed: int,
) -> GroundTruth:
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

    for a, b in _runs(filtered > scenario.max_force_n):
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
                    {"freq_hz": c.freq_hz, "p2p_n": p2p, "mean_n": mean, "cycles": cycles},
                )
            )
    intervals.sort(key=lambda i: (i.start, i.kind))
    return GroundTruth(
        scenario.name,
        seed,
        float(threshold),
        float(scenario.max_force_n),
        tuple(intervals),
        float(hold_s),
        float(gap_s),
        profile.duration,
    )


# --- builder ------------------------------------------------------------------------------


class ScenarioBuilder:
    """Build a :class:`Scenario` in Python, one segment per call (see the module docstring)."""

    def __init__(self, name: str = "custom", **settings: Any) -> None:
        self._name = name
        self._settings = settings
        self._segments: list[Segment] = []

    def add(self, kind: str, duration: float, **params: Any) -> Self:
        self._segments.append(Segment(kind, float(duration), **params))
        return self

    def idle(self, duration: float) -> Self:
        return self.add("idle", duration)

    def approach(self, duration: float = 6.0) -> Self:
        return self.add("approach", duration)

    def lie_down(self, duration: float, force: float, **params: Any) -> Self:
        return self.add("lie_down", duration, force=force, **params)

    def hold(self, duration: float, force: float | None = None, **params: Any) -> Self:
        return self.add("hold", duration, force=force, **params)

    def rock(
        self,
        duration: float,
        freq_hz: float = 0.6,
        swing: float = 0.4,
        **params: Any,
    ) -> Self:
        return self.add("rock", duration, freq_hz=freq_hz, swing=swing, **params)

    def press(self, duration: float = 1.5, peak: float | None = None) -> Self:
        return self.add("press", duration, peak=peak)

    def lift(self, duration: float, ratio: float = 0.0) -> Self:
        return self.add("lift", duration, ratio=ratio)

    def lift_off(self, duration: float = 2.0) -> Self:
        return self.add("lift_off", duration)

    def step(self, duration: float, force: float, **params: Any) -> Self:
        return self.add("step", duration, force=force, **params)

    def overpressure(self, duration: float, force: float, **params: Any) -> Self:
        return self.add("overpressure", duration, force=force, **params)

    def build(self) -> Scenario:
        return Scenario(name=self._name, segments=tuple(self._segments), **self._settings)


# --- files --------------------------------------------------------------------------------

_SCENARIO_KEYS = {f.name for f in fields(Scenario)} - {"segments"}
_SEGMENT_KEYS = {f.name for f in fields(Segment)}


def _scenario_dir() -> Path:
    return Path(str(resources.files("knotsense.firmware_sim") / "scenarios"))


def list_scenarios() -> list[str]:
    """Names of the scenarios shipped with the package, sorted."""
    return sorted(p.stem for p in _scenario_dir().glob("*.toml"))


def scenario_from_dict(data: dict, where: str = "scenario") -> Scenario:
    """Build a scenario from the TOML structure of the module docstring.

    Raises:
        ConfigurationError: unknown keys or bad values (one line).
    """
    data = dict(data)
    raw_segments = data.pop("segment", None)
    if not isinstance(raw_segments, list) or not raw_segments:
        raise ConfigurationError(f"{where}: needs at least one [[segment]]")
    unknown = set(data) - _SCENARIO_KEYS
    if unknown:
        raise ConfigurationError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    if "name" not in data:
        raise ConfigurationError(f"{where}: missing name")
    if "faults" in data:
        data["faults"] = FaultConfig.parse(str(data["faults"]))
    segments = []
    for k, raw in enumerate(raw_segments):
        if not isinstance(raw, dict):
            raise ConfigurationError(f"{where}: segment {k + 1} is not a table")
        bad = set(raw) - _SEGMENT_KEYS
        if bad:
            raise ConfigurationError(
                f"{where}: segment {k + 1}: unknown key(s) {', '.join(sorted(bad))}"
            )
        if "kind" not in raw or "duration" not in raw:
            raise ConfigurationError(f"{where}: segment {k + 1}: needs kind and duration")
        try:
            segments.append(Segment(**raw))
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}: segment {k + 1}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"{where}: segment {k + 1}: {exc}") from None
    try:
        return Scenario(segments=tuple(segments), **data)
    except TypeError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None


def load_scenario(name_or_path: str) -> Scenario:
    """A shipped scenario by name, or a scenario file by path.

    Raises:
        ConfigurationError: unknown name, unreadable file or malformed TOML (one line).
    """
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.suffix or "/" in name_or_path:
        if not path.is_file():
            raise ConfigurationError(f"scenario file not found: {name_or_path}")
    else:
        path = _scenario_dir() / f"{name_or_path}.toml"
        if not path.is_file():
            raise ConfigurationError(
                f"unknown scenario {name_or_path!r} (known: {', '.join(list_scenarios())})"
            )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read scenario {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"malformed scenario {path.name}: {exc}") from None
    return scenario_from_dict(data, path.name)


def render(
    scenario: Scenario | str,
    seed: int = 0,
    rate_hz: float | None = None,
    channels: int | None = None,
    sensor: str | None = None,
    serial_number: str | None = None,
    duration_s: float | None = None,
) -> Rendered:
    """The scenario through the silicone and the sensors of one unit, without the wire.

    Samples are uniform in host time at *rate_hz* (default: the scenario's);
    see :class:`knotsense.firmware_sim.physics.Rendered` for the fields.
    """
    from knotsense.firmware_sim.physics import render_scenario

    if isinstance(scenario, str):
        scenario = load_scenario(scenario)
    return render_scenario(
        scenario,
        seed,
        rate_hz=rate_hz,
        channels=channels,
        sensor=sensor,
        serial_number=serial_number,
        duration_s=duration_s,
    )
