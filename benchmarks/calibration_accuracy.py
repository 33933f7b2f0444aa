"""Calibration accuracy against the sensor's own floor (issue 15).

For several units of each kind of :mod:`calsim` (the independent bench
simulation): run the bench procedure on a simulated bench table, fit it with
``knotsense.calibration.fitting.fit_bench``, apply the calibration to a
separate recording of known loads (``Calibration.apply(raw, t)``: the same
streaming model the live pipeline runs) and report the p95 force error over
1 s windows at 10-100 % of range, against the oracle floor of that unit.

    python benchmarks/calibration_accuracy.py [--units N] [--plan default|sensor]
        [--static] [--json]

``--plan default`` is the ISO 376-style default plan (one descending series);
``sensor`` (the default) the plan :func:`knotsense.calibration.plan.plan_for`
gives the kind. ``--static`` applies the models without times (each reading
as a load from rest: what the calibration did before the two-branch model).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import calsim

KINDS = ("load_cell", "fsr")


@dataclass(frozen=True)
class UnitResult:
    kind: str
    serial: str
    model: str
    p95_pct: float
    floor_pct: float
    heldout_p95_pct: float | None

    @property
    def ratio(self) -> float:
        return self.p95_pct / self.floor_pct


def plan_for_unit(u: calsim.Unit, which: str):
    from knotsense.calibration import plan

    if which == "default":
        return plan.BenchPlan(full_scale_n=u.full_scale_n, tolerance_n=0.005 * u.full_scale_n)
    return plan.plan_for(u.kind, u.full_scale_n)


def bench_data(u: calsim.Unit, plan, seed: int = 1):
    """The bench table the procedure takes on unit *u* following *plan*."""
    from knotsense.calibration.bench import track_arrays

    force = calsim.bench_profile(plan)
    tr = calsim.simulate(u, force, seed=seed)
    limits = (0.0, calsim.ADC_FSR) if u.kind == "fsr" else None
    return track_arrays(plan, tr.t, tr.raw, tr.reference, sensor=u.kind, adc_limits=limits)


def evaluate(
    u: calsim.Unit, calibration, seed: int = 2, static: bool = False
) -> tuple[float, float]:
    """(p95 error, oracle floor p95), % of reading, on the unit's verification recording."""
    force, windows = calsim.verification_profile(u, seed)
    tr = calsim.simulate(u, force, seed=seed)
    est = calibration.apply(tr.raw) if static else calibration.apply(tr.raw, t=tr.t)
    e = calsim.window_errors(tr, est[:, 0], windows)
    o = calsim.window_errors(tr, tr.oracle, windows)
    return float(np.percentile(e, 95)), float(np.percentile(o, 95))


def run_unit(kind: str, index: int, plan: str = "sensor", static: bool = False) -> UnitResult:
    from knotsense.calibration.fitting import fit_bench
    from knotsense.dsp.calibration_models import Calibration

    u = calsim.make_unit(kind, index)
    data = bench_data(u, plan_for_unit(u, plan))
    fit = fit_bench(data, kind)
    ch = fit.channels[0]
    p95, floor = evaluate(u, Calibration((ch.model,)), static=static)
    selection = getattr(ch, "selection", {})
    label = str(selection.get("chosen", type(ch.model).kind))
    held = selection.get("heldout_p95_pct_reading")
    return UnitResult(kind, u.serial, label, p95, floor, None if held is None else float(held))


def run(units: int = 4, plan: str = "sensor", static: bool = False) -> list[UnitResult]:
    return [run_unit(k, i, plan, static) for k in KINDS for i in range(units)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=4)
    ap.add_argument("--plan", choices=("default", "sensor"), default="sensor")
    ap.add_argument("--static", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    results = run(args.units, args.plan, args.static)
    if args.json:
        print(json.dumps([r.__dict__ | {"ratio": r.ratio} for r in results], indent=1))
        return 0
    head = f"{'unit':<9} {'model':<36} {'p95 %':>7} {'floor %':>8} {'ratio':>6}"
    print(head + f" {'bench CV p95':>12}")
    for r in results:
        held = "-" if r.heldout_p95_pct is None else f"{r.heldout_p95_pct:.2f}"
        print(
            f"{r.serial:<9} {r.model:<36} {r.p95_pct:7.3f} {r.floor_pct:8.3f} "
            f"{r.ratio:6.2f} {held:>12}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
