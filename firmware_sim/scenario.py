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

The load is evaluated analytically at any host time (seconds since power-on)
by :mod:`~knotsense.firmware_sim.load`, so the device, the offline renderer
(:func:`knotsense.firmware_sim.render.render`) and the ground truth
(:mod:`~knotsense.firmware_sim.truth`) all see the same body. The seed
perturbs the body (breathing rate and phase, posture-shift times and sizes,
rocking frequency) within a few percent; the ground truth is computed for
that seed.

Imports run one way: ``load`` <- ``truth`` <- ``scenario`` <- ``physics``
<- ``render``. The segment, profile and truth types are re-exported here.

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

import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, Self

from knotsense.errors import ConfigurationError
from knotsense.firmware_sim.config import SENSORS, FaultConfig
from knotsense.firmware_sim.load import SEGMENT_KINDS, LoadProfile, Segment
from knotsense.firmware_sim.truth import (
    CONTACT_FLOOR_N,
    OVERPRESSURE_MIN_S,
    ROCK_BAND_HZ,
    ROCK_MIN_CYCLES,
    TRUTH_RATE_HZ,
    TRUTH_SMOOTH_S,
    GroundTruth,
    TruthInterval,
    ground_truth,
)

__all__ = [
    "CONTACT_FLOOR_N",
    "OVERPRESSURE_MIN_S",
    "ROCK_BAND_HZ",
    "ROCK_MIN_CYCLES",
    "SEGMENT_KINDS",
    "SILICONES",
    "TRUTH_RATE_HZ",
    "TRUTH_SMOOTH_S",
    "GroundTruth",
    "LoadProfile",
    "Scenario",
    "ScenarioBuilder",
    "Segment",
    "TruthInterval",
    "list_scenarios",
    "load_scenario",
    "scenario_from_dict",
]

SILICONES = ("soft", "dense", "hard")


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
        return LoadProfile(self.segments, self.breathing_hz, seed)

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
        return ground_truth(
            self.name, self.max_force_n, self.profile(seed), threshold, hold_s, gap_s
        )

    def with_overrides(self, **changes: Any) -> Scenario:
        """A copy with some fields changed (sensor, channels, rate_hz ...)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


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

    def circle(
        self,
        duration: float,
        turns_per_s: float = 0.5,
        radius_mm: float = 5.0,
        direction: str = "ccw",
        **params: Any,
    ) -> Self:
        return self.add(
            "circle",
            duration,
            turns_per_s=turns_per_s,
            radius_mm=radius_mm,
            direction=direction,
            **params,
        )

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
