"""Detector accuracy against the simulator's ground truth (issue 5, "Accuracy").

Every shipped scenario is rendered through both sensor kinds for several seeds;
each case draws its own channel count (1-8), sample rate (50-1000 Hz), noise
and drift scale, and gets spikes and short data gaps (deleted sample ranges).
The raw counts are calibrated with an ideal calibration fitted on the unit's
static curve (``UnitParams.static_counts``: linear for load cells, monotone
for FSRs), run through :func:`knotsense.dsp.pipeline.analyze`, and matched to
``Scenario.ground_truth`` with IoU >= 0.5.

    python benchmarks/accuracy_report.py [--seeds N] [--json]

prints F1 and median onset errors per scenario and sensor kind, then every
case that missed or invented an episode. ``tests/dsp/test_dsp_accuracy_sim.py``
runs the same cases (``KNOTSENSE_ACCURACY_SEEDS`` seeds per scenario and kind,
2 by default) and asserts the issue's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SENSORS = ("load_cell", "fsr")
RATES = (50, 80, 100, 250, 500, 1000)
MAX_VALUES = 3_000_000  # samples x channels per case: keeps the default run near a minute
KINDS = ("release", "rocking")


@dataclass(frozen=True)
class Case:
    """One rendered session: which scenario, unit and perturbations."""

    scenario: str
    sensor: str
    seed: int
    rate: int
    channels: int
    noise_scale: float
    drift_scale: float
    spikes_per_min: float
    gaps_per_min: float

    @property
    def label(self) -> str:
        return (
            f"{self.scenario}/{self.sensor} seed={self.seed} {self.channels}ch "
            f"{self.rate}Hz noise x{self.noise_scale:g} drift x{self.drift_scale:g}"
        )


@dataclass
class CaseResult:
    case: Case
    scores: dict[str, Any]  # kind -> knotsense.dsp.evaluation.Score
    onsets: list[tuple[str, float, Any, float]] = field(default_factory=list)
    """(kind, true start, detected episode, its live onset's detected_at) per match."""


def seeds_from_env(default: int = 2) -> int:
    try:
        return max(1, int(os.environ.get("KNOTSENSE_ACCURACY_SEEDS", default)))
    except ValueError:
        return default


def make_cases(seeds: int, scenarios: list[str] | None = None) -> list[Case]:
    """Cases for every scenario x sensor kind x seed, with seeded unit and perturbations."""
    from knotsense.firmware_sim.scenario import list_scenarios, load_scenario

    cases = []
    for name in scenarios or list_scenarios():
        duration = load_scenario(name).duration_s
        for si, sensor in enumerate(SENSORS):
            for seed in range(seeds):
                rng = np.random.default_rng([seed, zlib.crc32(name.encode()), si])
                channels = int(rng.integers(1, 9))
                rates = [r for r in RATES if r * duration * channels <= MAX_VALUES] or [50]
                rate = int(rates[int(rng.integers(0, len(rates)))])
                cases.append(
                    Case(
                        name,
                        sensor,
                        seed,
                        rate,
                        channels,
                        noise_scale=float(rng.choice([1.0, 1.0, 2.0, 4.0])),
                        drift_scale=float(rng.choice([1.0, 1.0, 2.0])),
                        spikes_per_min=float(rng.choice([0.0, 2.0, 6.0])),
                        gaps_per_min=float(rng.choice([0.0, 1.0, 3.0])),
                    )
                )
    return cases


def ideal_calibration(unit: Any) -> Any:
    """A calibration fitted on the unit's static (settled, rising) curve, per channel."""
    from knotsense.dsp.calibration_models import Calibration, fit_model

    force = np.linspace(0.0, unit.full_scale_n, 121)
    counts = unit.static_counts(np.repeat(force[:, None], unit.channels, axis=1))
    kind = "linear" if unit.sensor == "load_cell" else "monotone"
    return Calibration(tuple(fit_model(counts[:, c], force, kind) for c in range(unit.channels)))


def perturb(
    t: np.ndarray, raw: np.ndarray, case: Case, unit: Any, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Spikes (impulses of 40-150 N on one channel) and gaps (0.05-0.35 s deleted)."""
    raw = raw.astype(np.float64)
    n, c = raw.shape
    minutes = (t[-1] - t[0]) / 60 if n > 1 else 0.0
    per_n = unit.static_counts(np.full((1, c), 100.0))[0] - unit.static_counts(np.zeros((1, c)))[0]
    for _ in range(rng.poisson(case.spikes_per_min * minutes)):
        i, ch = int(rng.integers(0, n - 2)), int(rng.integers(0, c))
        size = rng.choice([-1.0, 1.0]) * rng.uniform(0.4, 1.5) * per_n[ch]
        raw[i : i + int(rng.integers(1, 3)), ch] += size
    raw = np.clip(raw, unit.adc_min, unit.adc_max)
    keep = np.ones(n, dtype=bool)
    for _ in range(rng.poisson(case.gaps_per_min * minutes)):
        g0 = int(rng.integers(0, n))
        keep[g0 : g0 + max(1, int(rng.uniform(0.05, 0.35) * case.rate))] = False
    return t[keep], raw[keep]


def run_case(case: Case, scenario: Any = None) -> CaseResult:
    """Render, perturb, calibrate, analyse and score one case."""
    from knotsense.dsp.evaluation import score
    from knotsense.dsp.pipeline import PipelineConfig, analyze
    from knotsense.firmware_sim.render import render
    from knotsense.firmware_sim.scenario import load_scenario

    sc = scenario if scenario is not None else load_scenario(case.scenario)
    sc = sc.with_overrides(noise_scale=case.noise_scale, drift_scale=case.drift_scale)
    r = render(sc, case.seed, rate_hz=case.rate, channels=case.channels, sensor=case.sensor)
    rng = np.random.default_rng([case.seed, 0xACC])
    t, raw = perturb(r.t, r.raw, case, r.unit, rng)
    truth = sc.ground_truth(seed=case.seed)
    cfg = PipelineConfig(
        release_threshold=truth.release_threshold_n,
        hold=truth.hold_s,
        gap=truth.gap_s,
        max_force=truth.max_force_n,
        calibration=ideal_calibration(r.unit),
    )
    a = analyze(t, raw, cfg)
    scores = {kind: score(truth.intervals, a.episodes, kind) for kind in KINDS}
    onsets = []
    for kind in KINDS:
        for m in scores[kind].matches:
            live = [o for o in a.onsets if o.kind == kind and o.start == m.detected.start]
            if live:
                onsets.append((kind, m.truth.start, m.detected, live[0].detected_at))
    return CaseResult(case, scores, onsets)


def summarise(results: list[CaseResult]) -> dict[str, Any]:
    """Figures per scenario and sensor kind, per sensor kind, overall, and the failures."""
    from knotsense.dsp.evaluation import Score

    groups: dict[str, dict[str, Any]] = {}

    def add(key: str, res: CaseResult) -> None:
        g = groups.setdefault(key, {kind: Score() for kind in KINDS})
        for kind in KINDS:
            g[kind] = g[kind] + res.scores[kind]

    for res in results:
        add(f"{res.case.scenario}/{res.case.sensor}", res)
        add(f"all/{res.case.sensor}", res)
        add("all", res)
    failures = []
    for res in results:
        for kind in KINDS:
            s = res.scores[kind]
            if s.missed or s.false:
                failures.append(
                    {
                        "case": res.case.label,
                        "kind": kind,
                        "missed": [(round(e.start, 2), round(e.end, 2)) for e in s.missed],
                        "false": [(round(e.start, 2), round(e.end, 2)) for e in s.false],
                    }
                )
    order = sorted(groups, key=lambda k: (k.startswith("all"), k == "all", k))
    return {
        "cases": len(results),
        "groups": {k: {kind: groups[k][kind].to_dict() for kind in KINDS} for k in order},
        "failures": failures,
    }


def format_report(summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['cases']} cases; IoU >= 0.5; onset error = |detected start - true start|",
        f"{'group':32} {'release F1':>10} {'tp/miss/false':>13} {'onset s':>8} "
        f"{'rocking F1':>10} {'tp/miss/false':>13} {'onset s':>8}",
    ]
    for key, g in summary["groups"].items():
        cells = []
        for kind in KINDS:
            d = g[kind]
            counts = f"{d['true_positives']}/{d['missed']}/{d['false']}"
            cells.append(f"{d['f1']:>10.3f} {counts:>13} {d['median_onset_error_s']:>8.3f}")
        lines.append(f"{key:32} " + " ".join(cells))
    lines.append(f"failing cases: {len(summary['failures'])}")
    for f in summary["failures"]:
        lines.append(f"  {f['case']}: {f['kind']} missed {f['missed']} false {f['false']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=seeds_from_env(5), help="seeds per case")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("scenarios", nargs="*", help="scenarios (default: all shipped)")
    args = parser.parse_args(argv)
    results = [run_case(c) for c in make_cases(args.seeds, args.scenarios or None)]
    summary = summarise(results)
    print(json.dumps(summary) if args.json else format_report(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
