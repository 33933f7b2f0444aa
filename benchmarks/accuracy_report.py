"""Detector accuracy against ground truth: the simulator's scenarios and the independent corpus.

Two sources of sessions (issue 5, "Accuracy"; issue 14):

- ``sim``: every shipped scenario rendered through both sensor kinds for
  several seeds; each case draws its own channel count (1-8), sample rate
  (50-1000 Hz), noise and drift scale, and gets spikes and short data gaps.
  The raw counts are calibrated with an ideal calibration fitted on the unit's
  static curve (``UnitParams.static_counts``).
- ``dev`` / ``held-out``: traces of the validation corpus in ``tests/corpus/``
  (``corpus_gen.py``), written from DESIGN.md's definitions and not from the
  simulator: drifting, modulated and non-sinusoidal rocking, rocking on and
  between holds, breathing, posture steps, spikes, drift, FSR creep, dropouts.
  Dev seeds are 0-99, held-out seeds 1000-1099 (judge a change on held-out,
  tune on dev).

Every session runs through :func:`knotsense.dsp.pipeline.analyze` and its
episodes are matched to the truth with IoU >= 0.5, per kind (release,
rocking, overpressure, contact):

    python benchmarks/accuracy_report.py [--corpus sim,dev,held-out] [--seeds N]
        [--traces N] [--json] [scenario ...]

prints P/R/F1 and the median onset error (|detected start - true start|) per
group and kind, rocking recall by stroke shape and placement (corpus), then
every session that missed or invented an episode. The default run (``sim``
at 5 seeds, ``dev`` at 12 traces) takes well under a minute.
``tests/dsp/test_dsp_accuracy_sim.py`` runs the simulator's cases
(``KNOTSENSE_ACCURACY_SEEDS`` seeds per scenario and kind, 2 by default);
``tests/corpus/test_corpus.py`` checks the corpus itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

# Episode scoring is test/tool code (tests/support/), not part of the package.
_TESTS = str(Path(__file__).resolve().parents[1] / "tests")
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

SENSORS = ("load_cell", "fsr")
RATES = (50, 80, 100, 250, 500, 1000)
MAX_VALUES = 3_000_000  # samples x channels per case: keeps the default run near a minute
KINDS = ("release", "rocking", "overpressure", "contact", "circling")
TABLE_KINDS = ("release", "rocking", "overpressure", "circling")
CORPUS_DIR = Path(__file__).resolve().parents[1] / "tests" / "corpus"
SOURCES = ("sim", "dev", "held-out")
_EMPTY: Any = type("_NoScore", (), {"matches": ()})()


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
    scores: dict[str, Any]  # kind -> support.evaluation.Score
    onsets: list[tuple[str, float, Any, float]] = field(default_factory=list)
    """(kind, true start, detected episode, its live onset's detected_at) per match."""
    context: tuple[Any, ...] = ()
    """Corpus: what else happened (distractors, circling), to explain false episodes."""
    motion: dict[str, list[float]] = field(default_factory=dict)
    """Per matched episode: axis error (deg), extent error (mm), turns error, direction right."""


def motion_errors(scores: dict[str, Any]) -> dict[str, list[float]]:
    """Axis and circling figures of the matched episodes against their truth."""
    from knotsense.dsp.motion import axis_error

    out: dict[str, list[float]] = {"axis_deg": [], "extent_mm": [], "turns": [], "direction": []}
    for m in scores["rocking"].matches:
        truth = getattr(m.truth, "figures", {}) or {}
        det_axis = getattr(m.detected, "axis", None)
        if "axis_deg" in truth and det_axis is not None:
            out["axis_deg"].append(axis_error(det_axis, truth["axis_deg"]))
            out["extent_mm"].append(abs(m.detected.extent - truth["extent_mm"]))
    for m in scores.get("circling", _EMPTY).matches:
        truth = getattr(m.truth, "figures", {}) or {}
        if "turns" in truth:
            out["turns"].append(abs(m.detected.turns - truth["turns"]))
            out["direction"].append(float(m.detected.direction == truth["direction"]))
    return out


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


def _flat(interval: Any) -> Any:
    """A truth interval without the axis figures a 1-2 channel layout cannot show."""
    figures = {k: v for k, v in interval.figures.items() if k not in ("axis_deg", "extent_mm")}
    return replace(interval, figures=figures)


def positions_of(unit: Any) -> tuple[tuple[float, float], ...] | None:
    """The unit's channel positions (mm) for the pipeline, None for a single channel."""
    if unit.channels < 2:
        return None
    return tuple((float(x), float(y)) for x, y in unit.positions_mm)


def run_case(case: Case, scenario: Any = None) -> CaseResult:
    """Render, perturb, calibrate, analyse and score one case."""
    from support.evaluation import score

    from knotsense.dsp.pipeline import PipelineConfig, analyze
    from knotsense.firmware_sim.render import render
    from knotsense.firmware_sim.scenario import load_scenario

    sc = scenario if scenario is not None else load_scenario(case.scenario)
    sc = sc.with_overrides(noise_scale=case.noise_scale, drift_scale=case.drift_scale)
    r = render(sc, case.seed, rate_hz=case.rate, channels=case.channels, sensor=case.sensor)
    rng = np.random.default_rng([case.seed, 0xACC])
    t, raw = perturb(r.t, r.raw, case, r.unit, rng)
    truth = sc.ground_truth(seed=case.seed)
    if case.channels < 3:  # one or two channels cannot show circling nor a rocking's axis
        truth = replace(
            truth, intervals=tuple(_flat(i) for i in truth.intervals if i.kind != "circling")
        )
    cfg = PipelineConfig(
        release_threshold=truth.release_threshold_n,
        hold=truth.hold_s,
        gap=truth.gap_s,
        max_force=truth.max_force_n,
        calibration=ideal_calibration(r.unit),
        positions=positions_of(r.unit),
    )
    a = analyze(t, raw, cfg)
    scores = {kind: score(truth.intervals, a.episodes, kind) for kind in KINDS}
    onsets = []
    for kind in KINDS:
        for m in scores[kind].matches:
            live = [o for o in a.onsets if o.kind == kind and o.start == m.detected.start]
            if live:
                onsets.append((kind, m.truth.start, m.detected, live[0].detected_at))
    return CaseResult(case, scores, onsets, motion=motion_errors(scores))


@dataclass(frozen=True)
class CorpusCase:
    """One trace of the validation corpus (tests/corpus/corpus_gen.py)."""

    split: str
    seed: int
    sensor: str
    rate: int
    channels: int

    @property
    def scenario(self) -> str:
        """The group a trace reports under: its channel layout class."""
        return "1ch" if self.channels == 1 else "2ch" if self.channels == 2 else "3-8ch"

    @property
    def label(self) -> str:
        return f"{self.split} seed={self.seed} {self.sensor} {self.channels}ch {self.rate}Hz"


def corpus_module() -> Any:
    """``tests/corpus/corpus_gen.py`` (the tests folder is not a package)."""
    if str(CORPUS_DIR) not in sys.path:
        sys.path.insert(0, str(CORPUS_DIR))
    import corpus_gen

    return corpus_gen


def corpus_config(trace: Any) -> Any:
    """The pipeline configuration a corpus trace is analysed with (forces already in N)."""
    from knotsense.dsp.pipeline import PipelineConfig

    positions = None
    if trace.channels >= 2:
        positions = tuple((float(x), float(y)) for x, y in trace.positions)
    return PipelineConfig(
        release_threshold=trace.threshold,
        hold=trace.hold,
        gap=trace.gap,
        max_force=trace.max_force,
        positions=positions,
    )


def run_corpus_case(split: str, seed: int) -> CaseResult:
    """Generate, analyse and score one corpus trace."""
    from support.evaluation import score

    from knotsense.dsp.pipeline import analyze

    trace = corpus_module().make_trace(seed)
    a = analyze(trace.t, trace.forces, corpus_config(trace))
    case = CorpusCase(split, seed, trace.sensor, trace.rate, trace.channels)
    scores = {kind: score(trace.truth, a.episodes, kind) for kind in KINDS}
    onsets = []
    for kind in KINDS:
        for m in scores[kind].matches:
            live = [o for o in a.onsets if o.kind == kind and o.start == m.detected.start]
            if live:
                onsets.append((kind, m.truth.start, m.detected, live[0].detected_at))
    context = trace.decoys + trace.of_kind("circling")
    return CaseResult(case, scores, onsets, context, motion_errors(scores))


def _near(episode: Any, context: tuple[Any, ...]) -> str:
    """Names of the context intervals overlapping *episode* ("" when none)."""
    names = sorted({c.kind for c in context if c.start < episode.end and episode.start < c.end})
    return "+".join(names)


def corpus_cases(split: str, traces: int) -> list[tuple[str, int]]:
    return [(split, seed) for seed in corpus_module().seeds(split, traces)]


def _rates(d: dict[str, Any]) -> dict[str, Any]:
    """Precision and recall next to the F1 of one ``Score.to_dict()``."""
    tp, miss, false = d["true_positives"], d["missed"], d["false"]
    d["precision"] = round(tp / (tp + false), 4) if tp + false else 1.0
    d["recall"] = round(tp / (tp + miss), 4) if tp + miss else 1.0
    return d


def _breakdown(results: list[CaseResult]) -> dict[str, dict[str, Any]]:
    """Rocking recall and median onset error by stroke shape and placement (corpus truth)."""
    rows: dict[str, list[float | None]] = {}
    for res in results:
        s = res.scores["rocking"]
        items = [(m.truth, abs(m.onset_error)) for m in s.matches]
        items += [(t, None) for t in s.missed]
        for truth, err in items:
            figs = getattr(truth, "figures", {}) or {}
            for key in ("mode", "shape"):
                if key in figs:
                    rows.setdefault(f"{key}={figs[key]}", []).append(err)
            if "cycles" in figs and "mode" in figs:
                n = figs["cycles"]
                band = "cycles<8" if n < 8 else "cycles<25" if n < 25 else "cycles>=25"
                rows.setdefault(band, []).append(err)
    out = {}
    for key in sorted(rows):
        errs = rows[key]
        hit = [e for e in errs if e is not None]
        out[key] = {
            "truths": len(errs),
            "recall": round(len(hit) / len(errs), 4),
            "median_onset_error_s": round(float(np.median(hit)), 3) if hit else 0.0,
        }
    return out


def summarise(results: list[CaseResult]) -> dict[str, Any]:
    """Figures per scenario and sensor kind, per sensor kind, overall, and the failures."""
    from support.evaluation import Score

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
                        "false": [
                            (round(e.start, 2), round(e.end, 2), _near(e, res.context))
                            if res.context
                            else (round(e.start, 2), round(e.end, 2))
                            for e in s.false
                        ],
                    }
                )
    order = sorted(groups, key=lambda k: (k.startswith("all"), k == "all", k))
    out = {
        "cases": len(results),
        "groups": {k: {kind: _rates(groups[k][kind].to_dict()) for kind in KINDS} for k in order},
        "failures": failures,
    }
    breakdown = _breakdown(results)
    if breakdown:
        out["rocking_by"] = breakdown
    merged: dict[str, list[float]] = {}
    for res in results:
        for key, vals in res.motion.items():
            merged.setdefault(key, []).extend(vals)
    out["motion"] = _motion_figures(merged)
    return out


def _motion_figures(m: dict[str, list[float]]) -> dict[str, Any]:
    def stat(vals: list[float], q: float) -> float | None:
        return round(float(np.percentile(vals, q)), 3) if vals else None

    axis, ext = m.get("axis_deg", []), m.get("extent_mm", [])
    turns, direction = m.get("turns", []), m.get("direction", [])
    return {
        "rocking_with_axis": len(axis),
        "axis_error_deg_median": stat(axis, 50),
        "axis_error_deg_p90": stat(axis, 90),
        "extent_error_mm_median": stat(ext, 50),
        "circling_matched": len(turns),
        "turns_error_median": stat(turns, 50),
        "direction_right": round(float(np.mean(direction)), 4) if direction else None,
    }


def format_report(summary: dict[str, Any], title: str = "", max_failures: int = 60) -> str:
    lines = [
        f"{title}{summary['cases']} sessions; IoU >= 0.5; P/R/F1 and median |onset error| (s)",
        f"{'group':28} "
        + " ".join(
            f"{kind[:12]:>12} {'P':>5} {'R':>5} {'t/m/f':>9} {'onset':>6}" for kind in TABLE_KINDS
        ),
    ]
    for key, g in summary["groups"].items():
        cells = []
        for kind in TABLE_KINDS:
            d = g[kind]
            counts = f"{d['true_positives']}/{d['missed']}/{d['false']}"
            cells.append(
                f"{d['f1']:>12.3f} {d['precision']:>5.2f} {d['recall']:>5.2f} {counts:>9} "
                f"{d['median_onset_error_s']:>6.2f}"
            )
        lines.append(f"{key:28} " + " ".join(cells))
    if summary.get("rocking_by"):
        lines.append("rocking recall by truth figure (truths, recall, median onset error s):")
        lines.extend(
            f"  {k:24} {v['truths']:>4} {v['recall']:>6.3f} {v['median_onset_error_s']:>6.2f}"
            for k, v in summary["rocking_by"].items()
        )
    mo = summary.get("motion") or {}
    if mo.get("rocking_with_axis") or mo.get("circling_matched"):
        lines.append(
            f"rocking axis: {mo['rocking_with_axis']} episodes, error median "
            f"{mo['axis_error_deg_median']} deg, p90 {mo['axis_error_deg_p90']} deg, extent "
            f"error median {mo['extent_error_mm_median']} mm; circling: {mo['circling_matched']} "
            f"matched, turns error median {mo['turns_error_median']}, direction right "
            f"{mo['direction_right']}"
        )
    fails = summary["failures"]
    lines.append(f"failing sessions x kinds: {len(fails)}")
    for f in fails[:max_failures]:
        lines.append(f"  {f['case']}: {f['kind']} missed {f['missed']} false {f['false']}")
    if len(fails) > max_failures:
        lines.append(f"  ... and {len(fails) - max_failures} more (--json lists all)")
    return "\n".join(lines)


def run_source(source: str, seeds: int, traces: int, scenarios: list[str] | None) -> list:
    """Every session of one source ("sim", "dev" or "held-out"), scored."""
    if source == "sim":
        return [run_case(c) for c in make_cases(seeds, scenarios)]
    return [run_corpus_case(split, seed) for split, seed in corpus_cases(source, traces)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus",
        default="sim,dev",
        help="comma-separated sources: sim, dev, held-out, or all (default: sim,dev)",
    )
    parser.add_argument(
        "--seeds", type=int, default=seeds_from_env(5), help="seeds per simulator case"
    )
    parser.add_argument("--traces", type=int, default=12, help="corpus traces per split")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("scenarios", nargs="*", help="simulator scenarios (default: all shipped)")
    args = parser.parse_args(argv)
    sources = SOURCES if args.corpus == "all" else tuple(args.corpus.split(","))
    bad = [s for s in sources if s not in SOURCES]
    if bad or args.seeds < 1 or args.traces < 1:
        parser.error(f"--corpus takes {', '.join(SOURCES)} or all; --seeds/--traces >= 1")
    out = {}
    for source in sources:
        out[source] = summarise(run_source(source, args.seeds, args.traces, args.scenarios))
    if args.json:
        print(json.dumps(out))
    else:
        names = {"sim": "simulator scenarios", "dev": "corpus dev", "held-out": "corpus held-out"}
        print("\n\n".join(format_report(out[s], f"{names[s]}: ") for s in sources))
    return 0


if __name__ == "__main__":
    sys.exit(main())
