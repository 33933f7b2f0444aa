"""The bench plan: what loads to apply, in what order, and how long to wait (ISO 376 style).

A plan is a TOML (or JSON) file the test engineer edits::

    name = "my-bench"
    full_scale_n = 250          # total force at 100 %
    steps_pct = [10, 20, 30, 40, 50, 60, 80, 100]   # at least 8 steps from 10 to 100 %
    preloads = 3                # preload to full scale this many times first
    preload_hold_s = 5
    settle_s = 30               # wait after the load arrives before reading
    zero_settle_s = 8           # the same for the zero readings
    read_s = 2                  # reading window (device samples and reference averaged)
    tolerance_pct = 5           # the reference must be this close to the nominal step
    tolerance_n = 0.5           # ... or this close (whichever is larger)
    stability_pct = 0.5         # largest reference movement (% of the step) while reading
    step_timeout_s = 600        # give up on a step after this long

    [[series]]                  # one per series, in order
    directions = ["up"]         # "up", or "up" then "down" for reversibility
    position_mm = [0, 0]        # where the load sits on the knob (rotated positions)

    [creep]                     # optional creep dwell(s), each loaded from rest
    force_pct = 80              # or a list: one dwell per level, e.g. [30, 60, 100]
    read_at_s = [30, 300]       # two or more increasing times under load

Each series starts and ends with a zero reading. The reference force is split
over the channels by the knob's load sharing (a rigid plate on equal springs,
the channel positions from DeviceInfo); at the centre every channel takes an
equal share.
"""

from __future__ import annotations

import itertools
import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from knotsense.errors import ConfigurationError

MIN_STEPS = 8
DIRECTIONS = ("up", "down")


@dataclass(frozen=True)
class Series:
    """One loading series: ascending, optionally followed by descending."""

    directions: tuple[str, ...] = ("up",)
    position_mm: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        dirs = tuple(str(d) for d in self.directions)
        if dirs not in (("up",), ("up", "down")):
            raise ConfigurationError(f"series directions must be [up] or [up, down], got {dirs}")
        pos = tuple(float(v) for v in self.position_mm)
        if len(pos) != 2:
            raise ConfigurationError("series position_mm must be [x, y]")
        object.__setattr__(self, "directions", dirs)
        object.__setattr__(self, "position_mm", pos)


@dataclass(frozen=True)
class Creep:
    """Creep dwells: a load applied from rest at each ``force_pct``, read at each ``read_at_s``.

    ISO 376 reads one dwell at 30 s and 300 s. Several levels and read times
    (e.g. 5, 15, 30, 100, 300 s at 30, 60 and 100 %) separate an FSR's drift
    with time under load from its curve, which the ascending series alone
    cannot: there the load and the time under load rise together.
    """

    force_pct: float | tuple[float, ...] = 80.0
    read_at_s: tuple[float, ...] = (30.0, 300.0)

    def __post_init__(self) -> None:
        at = tuple(float(v) for v in self.read_at_s)
        if len(at) < 2 or at[0] <= 0 or any(b <= a for a, b in itertools.pairwise(at)):
            raise ConfigurationError(
                "creep read_at_s must be two or more increasing times, e.g. [30, 300]"
            )
        levels = (
            tuple(float(v) for v in self.force_pct)
            if isinstance(self.force_pct, list | tuple)
            else float(self.force_pct)
        )
        for lv in levels if isinstance(levels, tuple) else (levels,):
            if not 0 < lv <= 100:
                raise ConfigurationError("creep force_pct must be in (0, 100]")
        object.__setattr__(self, "read_at_s", at)
        object.__setattr__(self, "force_pct", levels)

    @property
    def levels_pct(self) -> tuple[float, ...]:
        return self.force_pct if isinstance(self.force_pct, tuple) else (self.force_pct,)


@dataclass(frozen=True)
class Step:
    """One reading the procedure takes, in order."""

    index: int
    series: int
    direction: str
    """"up", "down", "zero" (a zero reading) or "creep"."""
    nominal_n: float
    settle_s: float
    position_mm: tuple[float, float] = (0.0, 0.0)
    hold_s: float = 0.0
    """Creep readings: time since the load arrived."""

    @property
    def label(self) -> str:
        where = (
            ""
            if self.position_mm == (0.0, 0.0)
            else f" at {self.position_mm[0]:g},{self.position_mm[1]:g} mm"
        )
        if self.direction == "creep":
            return f"step {self.index + 1} (creep {self.nominal_n:g} N at {self.hold_s:g} s)"
        if self.direction == "zero":
            return f"step {self.index + 1} (series {self.series} zero{where})"
        what = f"{self.direction} {self.nominal_n:g} N{where}"
        return f"step {self.index + 1} (series {self.series} {what})"


@dataclass(frozen=True)
class BenchPlan:
    """A bench procedure; see the module docstring for the file layout."""

    name: str = "default"
    full_scale_n: float = 250.0
    steps_pct: tuple[float, ...] = (10, 20, 30, 40, 50, 60, 80, 100)
    preloads: int = 3
    preload_hold_s: float = 5.0
    settle_s: float = 30.0
    zero_settle_s: float = 8.0
    read_s: float = 2.0
    tolerance_pct: float = 5.0
    tolerance_n: float = 0.5
    stability_pct: float = 0.5
    step_timeout_s: float = 600.0
    series: tuple[Series, ...] = field(
        default=(Series(), Series(position_mm=(6.0, 0.0)), Series(("up", "down")))
    )
    creep: Creep | None = Creep()

    def __post_init__(self) -> None:
        steps = tuple(float(s) for s in self.steps_pct)
        object.__setattr__(self, "steps_pct", steps)
        object.__setattr__(self, "series", tuple(self.series))
        if len(steps) < MIN_STEPS:
            raise ConfigurationError(
                f"plan {self.name!r}: {len(steps)} steps; ISO 376 needs at least {MIN_STEPS} "
                "from 10 to 100 %"
            )
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ConfigurationError(f"plan {self.name!r}: steps_pct must increase")
        if steps[0] > 10.0 + 1e-9 or abs(steps[-1] - 100.0) > 1e-9 or steps[0] <= 0:
            raise ConfigurationError(f"plan {self.name!r}: steps must run from <= 10 % to 100 %")
        if not self.full_scale_n > 0:
            raise ConfigurationError(f"plan {self.name!r}: full_scale_n must be > 0")
        if not self.series:
            raise ConfigurationError(f"plan {self.name!r}: needs at least one [[series]]")
        for name in ("settle_s", "zero_settle_s", "read_s", "step_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigurationError(f"plan {self.name!r}: {name} must be > 0")
        if self.preloads < 0:
            raise ConfigurationError(f"plan {self.name!r}: preloads must be >= 0")

    @property
    def nominal_forces(self) -> tuple[float, ...]:
        return tuple(self.full_scale_n * p / 100.0 for p in self.steps_pct)

    def steps(self) -> list[Step]:
        """Every reading in order: per series a zero, the steps up (and down), a zero; creep."""
        out: list[Step] = []

        def add(
            series: int, direction: str, force: float, pos: tuple[float, float], **kw: Any
        ) -> None:
            settle = self.zero_settle_s if direction == "zero" else self.settle_s
            out.append(Step(len(out), series, direction, force, settle, pos, **kw))

        for k, s in enumerate(self.series, start=1):
            add(k, "zero", 0.0, s.position_mm)
            for f in self.nominal_forces:
                add(k, "up", f, s.position_mm)
            if "down" in s.directions:
                for f in self.nominal_forces[-2::-1]:
                    add(k, "down", f, s.position_mm)
            add(k, "zero", 0.0, s.position_mm)
        if self.creep is not None:
            # One dwell: series 0 (the ISO layout); several: series n+1, n+2, ... with a
            # zero reading after each, so every dwell is a contact of its own.
            many = len(self.creep.levels_pct) > 1
            for k, pct in enumerate(self.creep.levels_pct):
                f = self.full_scale_n * pct / 100.0
                series = len(self.series) + 1 + k if many else 0
                for at in self.creep.read_at_s:
                    out.append(Step(len(out), series, "creep", f, at, (0.0, 0.0), hold_s=at))
                if many:
                    out.append(Step(len(out), series, "zero", 0.0, self.zero_settle_s))
        return out

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("series", "creep")
        }
        d["steps_pct"] = list(self.steps_pct)
        d["series"] = [
            {"directions": list(s.directions), "position_mm": list(s.position_mm)}
            for s in self.series
        ]
        if self.creep is not None:
            fp = self.creep.force_pct
            d["creep"] = {
                "force_pct": list(fp) if isinstance(fp, tuple) else fp,
                "read_at_s": list(self.creep.read_at_s),
            }
        return d

    def to_toml(self) -> str:
        """The plan as a TOML file (what ``load_plan`` reads back)."""
        lines = []
        d = self.to_dict()
        for key, value in d.items():
            if key not in ("series", "creep"):
                lines.append(f"{key} = {json.dumps(value)}")
        for s in d["series"]:
            lines += ["", "[[series]]"]
            lines += [f"{k} = {json.dumps(v)}" for k, v in s.items()]
        if "creep" in d:
            lines += ["", "[creep]"]
            lines += [f"{k} = {json.dumps(v)}" for k, v in d["creep"].items()]
        return "\n".join(lines) + "\n"


_PLAN_KEYS = {f.name for f in fields(BenchPlan)}


def plan_from_dict(data: dict[str, Any], where: str = "plan") -> BenchPlan:
    """Build a plan from the file structure of the module docstring (one-line errors)."""
    if not isinstance(data, dict):
        raise ConfigurationError(f"{where}: a bench plan is a table/object")
    unknown = set(data) - _PLAN_KEYS
    if unknown:
        raise ConfigurationError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    kw = dict(data)
    try:
        if "series" in kw:
            kw["series"] = tuple(
                Series(tuple(s.get("directions", ("up",))), tuple(s.get("position_mm", (0, 0))))
                for s in kw["series"]
            )
        if "creep" in kw:
            c = kw["creep"]
            kw["creep"] = None if not c else Creep(**c)
        if "steps_pct" in kw:
            kw["steps_pct"] = tuple(kw["steps_pct"])
        return BenchPlan(**kw)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigurationError(f"{where}: {exc}") from None


def load_plan(path: str | Path) -> BenchPlan:
    """A plan from a ``.toml`` or ``.json`` file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read plan {p}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"malformed plan {p.name}: {exc}") from None
    data.setdefault("name", p.stem)
    return plan_from_dict(data, p.name)


def default_plan() -> BenchPlan:
    """The ISO 376-style plan: 3 preloads, 8 steps, 3 series (one rotated, one up+down), creep."""
    return BenchPlan()


def plan_for(sensor: str, full_scale_n: float = 250.0, series: int = 5) -> BenchPlan:
    """The plan the two-branch models need, for either sensor kind.

    *series* (at least 3; 5 by default) series, each loading then unloading
    (both branches in every series, so a series can be held out to choose the
    model), every other one at a rotated position: each series is one contact,
    and a sensor's contact-to-contact repeatability averages out over them;
    readings 30 s after each step; creep dwells from rest at 30, 60 and 100 %,
    read 5, 15, 30, 100 and 300 s after the load arrives (an FSR's drift is
    logarithmic in the time under load, and the dwells separate it from the
    curve); the zero readings between series end every contact.
    """
    both = ("up", "down")
    return BenchPlan(
        name=f"{sensor}-branches",
        full_scale_n=full_scale_n,
        tolerance_n=min(0.5, 0.005 * full_scale_n),
        series=tuple(
            Series(both, (6.0, 0.0) if k % 2 else (0.0, 0.0)) for k in range(max(3, series))
        ),
        creep=Creep((30.0, 60.0, 100.0), (5.0, 15.0, 30.0, 100.0, 300.0)),
    )


def simulator_plan() -> BenchPlan:
    """The plan the simulator's ``calibration_bench`` scenario follows (same steps and timing)."""
    return BenchPlan(name="calibration_bench", preload_hold_s=5.0)


def quick_plan(full_scale_n: float = 250.0) -> BenchPlan:
    """A short plan for quick checks on the simulator: 8 steps, two series, short settles."""
    return BenchPlan(
        name="quick",
        full_scale_n=full_scale_n,
        preloads=1,
        settle_s=10.0,
        zero_settle_s=6.0,
        read_s=2.0,
        series=(Series(), Series(("up", "down"))),
        creep=Creep(80.0, (10.0, 40.0)),
    )


def plan_scenario_toml(
    plan: BenchPlan,
    sensor: str = "load_cell",
    channels: int = 4,
    step_s: float | None = None,
    silicone: str = "dense",
) -> str:
    """A simulator scenario (TOML) that applies *plan*'s loads, as dead weights on a bench would.

    Each step lasts ``settle_s + read_s`` plus margin; series, positions and
    creep follow the plan. Feed it to ``sim://?scenario=PATH`` or ``firmware_sim.render.render``.
    """
    step = step_s or (plan.settle_s + plan.read_s + 8.0)
    zero = plan.zero_settle_s + plan.read_s + 8.0
    segs: list[dict[str, Any]] = [{"kind": "idle", "duration": 5}]
    for _ in range(plan.preloads):
        segs.append(
            {
                "kind": "step",
                "duration": plan.preload_hold_s + 10,
                "force": plan.full_scale_n,
                "ramp_s": 3,
            }
        )
        segs.append({"kind": "step", "duration": 10, "force": 0, "ramp_s": 3})
    for s in plan.series:
        pos = list(s.position_mm)
        segs.append({"kind": "step", "duration": zero, "force": 0, "ramp_s": 2, "cop_mm": pos})
        for f in plan.nominal_forces:
            segs.append({"kind": "step", "duration": step, "force": f, "ramp_s": 2, "cop_mm": pos})
        if "down" in s.directions:
            for f in plan.nominal_forces[-2::-1]:
                segs.append(
                    {"kind": "step", "duration": step, "force": f, "ramp_s": 2, "cop_mm": pos}
                )
        segs.append({"kind": "step", "duration": zero, "force": 0, "ramp_s": 2, "cop_mm": pos})
    if plan.creep is not None:
        for pct in plan.creep.levels_pct:
            f = plan.full_scale_n * pct / 100.0
            segs.append(
                {
                    "kind": "step",
                    "duration": plan.creep.read_at_s[-1] + plan.read_s + 8,
                    "force": f,
                    "ramp_s": 2,
                }
            )
            if len(plan.creep.levels_pct) > 1:
                segs.append({"kind": "step", "duration": zero, "force": 0, "ramp_s": 2})
    segs.append({"kind": "step", "duration": 10, "force": 0, "ramp_s": 2})
    lines = [
        f'name = "bench_{plan.name}"',
        f'sensor = "{sensor}"',
        f"channels = {channels}",
        f"max_force_n = {max(400.0, plan.full_scale_n * 1.5):g}",
        f"release_threshold_n = {plan.full_scale_n:g}",
        f'silicone = "{silicone}"',
    ]
    for seg in segs:
        lines += ["", "[[segment]]"] + [f"{k} = {json.dumps(v)}" for k, v in seg.items()]
    return "\n".join(lines) + "\n"
