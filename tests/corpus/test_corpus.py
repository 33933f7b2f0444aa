"""The validation corpus holds to DESIGN.md's definitions, and the report runs on it.

The checks measure the clean body signal with their own means (a Schmitt
trigger on the total minus its moving mean, the centre-of-pressure angle), so
a generator bug that labels the wrong interval fails here. Detector targets
are not asserted: the accuracy report prints them.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus_gen as g
from corpus_plan import BODY_RATE, rock_required
from corpus_waves import SHAPES

SEEDS = g.seeds("dev", 8) + g.seeds("held-out", 4)


@pytest.fixture(scope="module")
def traces() -> list[g.Trace]:
    return [g.make_trace(s) for s in SEEDS]


def _cycles(t: np.ndarray, x: np.ndarray) -> list[tuple[float, float, float]]:
    """(start, period, p2p) of each cycle: upward Schmitt crossings of x minus its moving mean."""
    k = round(2.6 * BODY_RATE)
    c = np.concatenate(([0.0], np.cumsum(np.pad(x, (k // 2, k - 1 - k // 2), mode="edge"))))
    level = (c[k:] - c[:-k]) / k
    r = x - level
    h = 0.1 * np.array([rock_required(v) for v in level[:: max(1, k // 4)]]).min()
    ups, state = [], 0
    for i, v in enumerate(r):
        if state <= 0 and v > h:  # (from rest, the first rise starts a cycle too)
            ups.append(i)
            state = 1
        elif v < -h:
            state = -1
    out = []
    for a, b in itertools.pairwise(ups):
        seg = x[a:b]
        req = rock_required(float(seg.mean()))
        out.append((float(t[a]), float(t[b] - t[a]), float(seg.max() - seg.min()) / req))
    return out


def _longest_run(cycles: list[tuple[float, float, float]]) -> int:
    """Longest run of consecutive cycles that qualify (0.4-3 Hz, swing >= required)."""
    best = run = 0
    for _, period, rel in cycles:
        ok = 1 / 3.0 <= period <= 1 / 0.4 and rel >= 1.0
        run = run + 1 if ok else 0
        best = max(best, run)
    return best


def _window(trace: g.Trace, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.searchsorted(trace.body_t, [a, b])
    return trace.body_t[i:j], trace.body_total[i:j]


def test_seed_splits_are_disjoint_and_traces_deterministic() -> None:
    assert not set(g.seeds("dev")) & set(g.seeds("held-out"))
    assert len(g.seeds("dev")) == len(g.seeds("held-out")) == 100
    a, b = g.make_trace(3), g.make_trace(3)
    assert np.array_equal(a.t, b.t) and np.array_equal(a.forces, b.forces)
    assert a.truth == b.truth
    assert not np.array_equal(g.make_trace(4).forces[:100], a.forces[:100])
    with pytest.raises(ValueError, match="split"):
        g.seeds("test")


def test_corpus_covers_the_brief(traces: list[g.Trace]) -> None:
    """Shapes, placements, drift, cycle counts, rates, channels, sensors, circling, decoys."""
    rocks = [i for tr in traces for i in tr.of_kind("rocking")]
    figs = [r.figures for r in rocks]
    assert {f["shape"] for f in figs} == set(SHAPES)
    assert {f["mode"] for f in figs} >= {"on_hold", "between", "gentle", "before_lift"}
    assert min(f["cycles"] for f in figs) < 5 and max(f["cycles"] for f in figs) > 25
    assert all(3 <= f["cycles"] <= 60 for f in figs)
    assert all(0.4 <= f["freq_hz"] <= 3.0 for f in figs)
    assert max(f["drift"] for f in figs) > 0.2 and any(f["dips"] for f in figs)
    assert {tr.sensor for tr in traces} == {"load_cell", "fsr"}
    assert min(tr.rate for tr in traces) <= 100 and max(tr.rate for tr in traces) >= 500
    assert min(tr.channels for tr in traces) <= 2 and max(tr.channels for tr in traces) >= 5
    assert any(tr.of_kind("circling") for tr in traces)
    assert any(tr.of_kind("overpressure") for tr in traces)
    assert {d.kind for tr in traces for d in tr.decoys} >= {"small", "slow", "short"}
    for tr in traces:
        assert 0.15 <= tr.plan.breath_hz <= 0.33 and 0.02 <= tr.plan.breath_depth <= 0.06
        assert np.all(np.diff(tr.t) > 0) and np.isfinite(tr.forces).all()
        assert tr.t[0] >= tr.body_t[0] and tr.t[-1] <= tr.body_t[-1]


def test_rocking_truth_meets_the_definition_on_the_clean_signal(traces: list[g.Trace]) -> None:
    checked = 0
    for tr in traces:
        for r in tr.of_kind("rocking"):
            t, x = _window(tr, r.start, r.end)
            cycles = _cycles(t, x)
            run = _longest_run(cycles)
            assert run >= 3, (tr.label, r)
            # nearly every stroke qualifies, dips to half included
            assert run >= min(len(cycles), int(r.figures["cycles"])) - 2, (tr.label, r, cycles)
            checked += 1
    assert checked >= 20


def test_nothing_outside_the_rocking_truth_is_rocking(traces: list[g.Trace]) -> None:
    """Holds with breathing, steps and distractors never give 3 qualifying cycles."""
    checked = 0
    for tr in traces:
        rocks = tr.of_kind("rocking")
        off = tr.body_t[0]
        for a, b, _ in tr.plan.holds:
            edges = [a + off + 2.0]
            for r in rocks:
                if a + off < r.end and r.start < b + off:
                    edges += [r.start - 1.0, r.end + 1.0]
            edges.append(b + off - 2.0)
            for lo, hi in zip(edges[::2], edges[1::2], strict=True):
                if hi - lo > 6:
                    t, x = _window(tr, lo, hi)
                    assert _longest_run(_cycles(t, x)) < 3, (tr.label, lo, hi)
                    checked += 1
    assert checked >= 20


def test_release_truth_follows_threshold_hold_and_gap(traces: list[g.Trace]) -> None:
    for tr in traces:
        f, t, dt = tr.filtered, tr.body_t, 1 / BODY_RATE
        for r in tr.of_kind("release"):
            assert r.end - r.start >= tr.hold
            i, j = np.searchsorted(t, [r.start - dt / 2, r.end - dt / 2])  # [i, j) inside
            inside = f[i:j] >= tr.threshold
            assert inside[0] and inside[-1]
            below = np.diff(np.concatenate(([0], (~inside).astype(int), [0])))
            dips = np.flatnonzero(below == -1) - np.flatnonzero(below == 1)
            assert (dips * dt <= tr.gap + 1e-9).all()
            # maximal: no level at or above the threshold within `gap` outside it
            k = round(tr.gap / dt)
            assert not (f[max(0, i - k) : i] >= tr.threshold).any()
            assert not (f[j : j + k] >= tr.threshold).any()
        covered = np.zeros(t.size, dtype=bool)
        for r in tr.of_kind("release"):
            covered[np.searchsorted(t, r.start) : np.searchsorted(t, r.end)] = True
        for a, b in g._runs((f >= tr.threshold) & ~covered):
            assert (b - a) * dt < tr.hold


def test_channels_reproduce_the_centre_of_pressure(traces: list[g.Trace]) -> None:
    for tr in traces:
        if tr.channels < 3:
            continue
        cop = tr.body_cop[:: int(BODY_RATE)]
        w = g.shares(tr.positions, cop)
        assert np.allclose(w.sum(axis=1), 1.0) and (w >= 0).all()
        assert np.allclose(w @ tr.positions, cop, atol=1e-6)


def test_circling_truth_turns_round_the_point(traces: list[g.Trace]) -> None:
    checked = 0
    for tr in traces:
        for c in tr.of_kind("circling"):
            i, j = np.searchsorted(tr.body_t, [c.start, c.end])
            path = tr.body_cop[i:j]
            centre = path.mean(axis=0)
            rel = path - centre
            full = np.hypot(rel[:, 0], rel[:, 1]) > 0.5 * c.figures["radius_mm"]
            ang = np.unwrap(np.arctan2(rel[full, 1], rel[full, 0]))
            turns = (ang[-1] - ang[0]) / (2 * np.pi)  # (the tapered ends left out)
            assert -0.5 < abs(turns) - c.figures["turns"] < 0.2, (tr.label, c, turns)
            assert (turns > 0) == (c.figures["direction"] == "ccw")
            assert 0.2 <= c.figures["turns_per_s"] <= 2.0 and c.figures["turns"] >= 2
            checked += 1
    assert checked >= 2


def _report():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "accuracy_report.py"
    spec = importlib.util.spec_from_file_location("knotsense_accuracy_report_corpus", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_report_scores_the_corpus_on_two_seeds(capsys: pytest.CaptureFixture[str]) -> None:
    report = _report()
    assert report.main(["--corpus", "dev,held-out", "--traces", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"dev", "held-out"}
    for summary in out.values():
        assert summary["cases"] == 1
        overall = summary["groups"]["all"]
        for kind in ("release", "rocking", "overpressure", "contact"):
            d = overall[kind]
            assert 0.0 <= d["f1"] <= 1.0 and 0.0 <= d["precision"] <= 1.0
            assert d["median_onset_error_s"] >= 0.0
        rock = overall["rocking"]
        assert rock["true_positives"] + rock["missed"] > 0  # the trace has rocking truth
        assert summary["rocking_by"]
    assert report.main(["--corpus", "sim", "--seeds", "1", "quiet_baseline"]) == 0
    text = capsys.readouterr().out
    assert "simulator scenarios: 2 sessions" in text and "rocking" in text
    with pytest.raises(SystemExit):
        report.main(["--corpus", "nowhere"])
