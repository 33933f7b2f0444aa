"""Detector accuracy against the simulator's ground truth (issue 5, "Accuracy").

The cases and the scoring live in ``benchmarks/accuracy_report.py`` (the same
code prints the closing note's figures). By default 2 seeds per scenario and
sensor kind run (about 30 sessions); set ``KNOTSENSE_ACCURACY_SEEDS=10`` for more.
The tests may import the simulator; knotsense.dsp itself never does.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from support.evaluation import score

from knotsense.dsp.detectors import ReleaseEpisode, RockingEpisode
from knotsense.dsp.pipeline import PipelineConfig, analyze
from knotsense.firmware_sim.render import render
from knotsense.firmware_sim.scenario import ScenarioBuilder

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "accuracy_report.py"
_spec = importlib.util.spec_from_file_location("knotsense_accuracy_report", _PATH)
assert _spec is not None and _spec.loader is not None
report = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = report
_spec.loader.exec_module(report)

SEEDS = report.seeds_from_env(2)


@pytest.fixture(scope="module")
def results() -> list:
    return [report.run_case(c) for c in report.make_cases(SEEDS)]


def test_cases_cover_the_matrix(results: list) -> None:
    cases = [r.case for r in results]
    assert {c.sensor for c in cases} == {"load_cell", "fsr"}
    assert len({c.scenario for c in cases}) >= 7
    assert min(c.channels for c in cases) <= 2 and max(c.channels for c in cases) >= 7
    assert min(c.rate for c in cases) <= 100 and max(c.rate for c in cases) >= 500
    assert any(c.spikes_per_min for c in cases) and any(c.gaps_per_min for c in cases)
    assert any(c.noise_scale > 1 for c in cases) and any(c.drift_scale > 1 for c in cases)


def test_release_and_rocking_f1_and_onset_errors(results: list) -> None:
    """F1 >= 0.95 at IoU >= 0.5; median onset error <= 0.5 s (release), <= 1.5 s (rocking)."""
    summary = report.summarise(results)
    text = report.format_report(summary)
    for group in ("all", "all/load_cell", "all/fsr"):
        rel, rock = summary["groups"][group]["release"], summary["groups"][group]["rocking"]
        assert rel["f1"] >= 0.95 and rock["f1"] >= 0.95, text
        assert rel["median_onset_error_s"] <= 0.5, text
        assert rock["median_onset_error_s"] <= 1.5, text
    overall = summary["groups"]["all"]
    assert overall["release"]["true_positives"] >= 10 * SEEDS
    assert overall["rocking"]["true_positives"] >= 8 * SEEDS


def test_nobody_on_the_knob_gives_nothing(results: list) -> None:
    for r in results:
        if r.case.scenario in ("quiet_baseline", "calibration_bench"):
            assert not r.scores["rocking"].false, r.case.label
            assert not r.scores["release"].false, r.case.label


def test_rocking_onset_comes_when_the_third_cycle_completes(results: list) -> None:
    """The live rocking onset: what is guaranteed.

    The definition needs 3 consecutive cycles, so the onset is announced when
    the third qualifying cycle completes (the upward crossing that closes it,
    seen through the Schmitt trigger): ``detected_at - start`` is 3 periods
    plus at most half a period and two bins, and never less than 2.5 periods.
    Counted from the end of the first full cycle that is about two cycles,
    which is how the issue's "within about two cycles" is met. From the true
    start it is at most one more period (when the fading-in first cycle is too
    small to count), and its median is about 3 periods.
    """
    lat_true = []
    for r in results:
        for kind, true_start, ep, detected_at in r.onsets:
            if kind != "rocking":
                continue
            period = 1.0 / ep.frequency
            own = detected_at - ep.start
            assert 2.5 * period <= own <= 3.5 * period + 0.08, (r.case.label, own, period)
            assert detected_at - true_start <= 4.5 * period + 0.08, r.case.label
            lat_true.append((detected_at - true_start) / period)
    assert lat_true and np.median(lat_true) <= 3.3


def _config(truth, rendered) -> PipelineConfig:
    return PipelineConfig(
        release_threshold=truth.release_threshold_n,
        max_force=truth.max_force_n,
        calibration=report.ideal_calibration(rendered.unit),
    )


def _analyse(scenario, seed: int, sensor: str, rate: int = 100):
    r = render(scenario, seed, rate_hz=rate, sensor=sensor)
    truth = scenario.ground_truth(seed=seed)
    return truth, analyze(r.t, r.raw, _config(truth, r))


@pytest.mark.parametrize("sensor", ["load_cell", "fsr"])
@pytest.mark.parametrize("breathing_hz", [0.15, 0.25, 0.33])
def test_breathing_alone_is_not_rocking(sensor: str, breathing_hz: float) -> None:
    """quiet_baseline has nobody on the knob; this is a body breathing deeply on it."""
    sc = (
        ScenarioBuilder("breathing", sensor=sensor, channels=4, breathing_hz=breathing_hz)
        .idle(2)
        .lie_down(3, force=150)
        .hold(100, breathing_depth=0.08, shifts_per_min=0)
        .hold(60, force=90, breathing_depth=0.08, shifts_per_min=0)
        .lift_off(2)
        .idle(2)
        .build()
    )
    for seed in range(2):
        truth, a = _analyse(sc, seed, sensor)
        assert not truth.of_kind("rocking")
        assert not [e for e in a.episodes if isinstance(e, RockingEpisode)], (seed, a.episodes)
        assert score(truth.intervals, a.episodes, "release").f1 == 1.0


@pytest.mark.parametrize("sensor", ["load_cell", "fsr"])
@pytest.mark.parametrize(("lift_s", "parts"), [(1.0, 1), (1.6, 1), (3.2, 2), (4.5, 2)])
def test_dip_shorter_than_gap_does_not_split_and_longer_lift_does(
    sensor: str, lift_s: float, parts: int
) -> None:
    sc = (
        ScenarioBuilder("lift", sensor=sensor, channels=3, release_threshold_n=110)
        .idle(2)
        .lie_down(3, force=150)
        .hold(70, shifts_per_min=0)
        .lift(lift_s, ratio=0.1)
        .hold(70, shifts_per_min=0)
        .lift_off(2)
        .idle(2)
        .build()
    )
    truth, a = _analyse(sc, 3, sensor, rate=250)
    assert len(truth.of_kind("release")) == parts  # the simulator agrees with the definition
    releases = [e for e in a.episodes if isinstance(e, ReleaseEpisode)]
    assert len(releases) == parts
    s = score(truth.intervals, a.episodes, "release")
    assert s.f1 == 1.0 and s.median_onset_error <= 0.5
