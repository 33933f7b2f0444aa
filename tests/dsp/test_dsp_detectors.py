"""Detector semantics of DESIGN.md, on hand-made traces with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from knotsense.dsp.detectors import (
    ContactEpisode,
    OverpressureEpisode,
    ReleaseEpisode,
    RockingEpisode,
)
from knotsense.dsp.pipeline import PipelineConfig, analyze

RATE = 100.0


def _trace(segments: list[tuple[float, float]], seed: int = 0, noise: float = 0.3):
    """Piecewise-linear force through (time, N) points, sampled at RATE, with noise."""
    ts, fs = zip(*segments, strict=True)
    t = np.arange(0.0, ts[-1], 1 / RATE)
    f = np.interp(t, ts, fs)
    return t, f + np.random.default_rng(seed).normal(0, noise, t.size)


def _kinds(analysis, cls):
    return [e for e in analysis.episodes if isinstance(e, cls)]


def _lie(start: float, end: float, level: float, ramp: float = 1.0) -> list[tuple[float, float]]:
    return [(start, 0.0), (start + ramp, level), (end - ramp, level), (end, 0.0)]


def test_dip_shorter_than_gap_does_not_split_a_release() -> None:
    pts = [(0, 0), (5, 0), (6, 150), (40, 150), (40.1, 40), (41.5, 40), (41.6, 150)]
    pts += [(95, 150), (96, 0), (100, 0)]
    a = analyze(*_trace(pts), PipelineConfig(release_threshold=100.0))
    (rel,) = _kinds(a, ReleaseEpisode)
    assert rel.start == pytest.approx(5 + 1 / 1.5, abs=0.15)
    assert rel.end == pytest.approx(95 + 1 / 3, abs=0.15)
    assert rel.min_force < 100.0 < rel.mean_force


def test_lift_longer_than_gap_splits_a_release() -> None:
    pts = [(0, 0), (5, 0), (6, 150), (75, 150), (75.2, 0), (78.2, 0), (78.4, 150)]
    pts += [(150, 150), (151, 0), (155, 0)]
    a = analyze(*_trace(pts), PipelineConfig(release_threshold=100.0))
    rels = _kinds(a, ReleaseEpisode)
    assert len(rels) == 2
    assert rels[0].end == pytest.approx(75.1, abs=0.2)
    assert rels[1].start == pytest.approx(78.3, abs=0.2)
    assert len(_kinds(a, ContactEpisode)) == 2


def test_gap_option_changes_the_bridge() -> None:
    pts = [(0, 0), (5, 0), (6, 150), (75, 150), (75.2, 0), (78.2, 0), (78.4, 150), (150, 150)]
    a = analyze(*_trace(pts), PipelineConfig(release_threshold=100.0, gap=4.0))
    assert len(_kinds(a, ReleaseEpisode)) == 1


def test_hold_shorter_than_hold_time_is_not_a_release() -> None:
    t, f = _trace(_lie(5, 50, 150))
    assert not _kinds(analyze(t, f, PipelineConfig(release_threshold=100.0)), ReleaseEpisode)
    (rel,) = _kinds(analyze(t, f, PipelineConfig(release_threshold=100.0, hold=30)), ReleaseEpisode)
    assert rel.duration == pytest.approx(49 + 1 / 3 - (5 + 2 / 3), abs=0.2)


def test_data_gap_longer_than_gap_splits_and_short_one_does_not() -> None:
    t, f = _trace(_lie(5, 160, 150))
    cfg = PipelineConfig(release_threshold=100.0)
    short = (t > 60) & (t < 60.4)
    assert len(_kinds(analyze(t[~short], f[~short], cfg), ReleaseEpisode)) == 1
    long = (t > 80) & (t < 84)
    assert len(_kinds(analyze(t[~long], f[~long], cfg), ReleaseEpisode)) == 2


@pytest.mark.parametrize("rate", [50.0, 1000.0])
def test_release_reached_fires_within_half_a_second(rate: float) -> None:
    global RATE
    old, RATE = RATE, rate
    try:
        t, f = _trace(_lie(5, 90, 150, ramp=2.0))
    finally:
        RATE = old
    a = analyze(t, f, PipelineConfig(release_threshold=100.0, hold=60))
    (onset,) = [o for o in a.onsets if o.kind == "release"]
    true_start = 5 + 2 * 100 / 150
    latency = onset.detected_at - (true_start + 60)
    assert 0.0 <= latency <= 0.5
    assert onset.start == pytest.approx(true_start, abs=0.1)


def test_overpressure_needs_more_than_a_second() -> None:
    pts = [(0, 0), (2, 0), (3, 150), (20, 150), (20.1, 260), (21.6, 260), (21.7, 150)]
    pts += [(40, 150), (40.1, 260), (40.6, 260), (40.7, 150), (60, 150), (61, 0)]
    a = analyze(*_trace(pts), PipelineConfig(release_threshold=100.0, max_force=220.0))
    (over,) = _kinds(a, OverpressureEpisode)
    assert over.start == pytest.approx(20.05, abs=0.15)
    assert over.duration == pytest.approx(1.55, abs=0.2)
    assert over.peak_force > 240


def _rocking_trace(
    freq: float, cycles: int, level: float = 150.0, swing: float = 0.3, seed: int = 0
):
    t, f = _trace(_lie(2, 60, level), seed=seed)
    r0 = 20.0
    inside = (t >= r0) & (t < r0 + cycles / freq)
    f[inside] += 0.5 * swing * level * np.sin(2 * np.pi * freq * (t[inside] - r0))
    breath = 0.05 * level * 0.5 * np.sin(2 * np.pi * 0.25 * t)
    return t, f + np.where((t > 3) & (t < 59), breath, 0.0), r0


@pytest.mark.parametrize(("freq", "cycles"), [(0.5, 5), (1.0, 6), (2.0, 8), (0.4, 4), (2.8, 9)])
def test_rocking_found_with_frequency_and_cycles(freq: float, cycles: int) -> None:
    t, f, r0 = _rocking_trace(freq, cycles)
    a = analyze(t, f, PipelineConfig(release_threshold=100.0))
    (rock,) = _kinds(a, RockingEpisode)
    assert rock.frequency == pytest.approx(freq, rel=0.04)
    assert rock.cycles == cycles
    assert rock.start == pytest.approx(r0, abs=0.3 / freq)
    assert rock.peak_to_peak == pytest.approx(0.3 * 150, rel=0.2)
    (onset,) = [o for o in a.onsets if o.kind == "rocking"]
    # The definition needs 3 cycles; the onset follows the third within half a cycle.
    assert onset.detected_at - r0 <= 3 / freq + 0.5 / freq + 0.3


@pytest.mark.parametrize("seed", range(6))
def test_breathing_alone_is_not_rocking(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t, f = _trace(_lie(2, 200, rng.uniform(60, 250)), seed=seed, noise=1.0)
    rate, depth = rng.uniform(0.15, 0.33), rng.uniform(0.03, 0.08)
    f *= 1 + depth * np.sin(2 * np.pi * rate * t)
    a = analyze(t, f, PipelineConfig(release_threshold=50.0))
    assert not _kinds(a, RockingEpisode)


def test_small_swing_is_not_rocking() -> None:
    # 10 % of 200 N = 20 N p-p: above 8 N but below 15 % of the mean force.
    t, f, _ = _rocking_trace(1.0, 8, level=200.0, swing=0.10)
    assert not _kinds(analyze(t, f, PipelineConfig(release_threshold=100.0)), RockingEpisode)


def test_two_cycles_are_not_rocking() -> None:
    t, f, _ = _rocking_trace(1.0, 2)
    assert not _kinds(analyze(t, f, PipelineConfig(release_threshold=100.0)), RockingEpisode)


def test_contacts_split_a_session() -> None:
    pts = _lie(2, 30, 80) + _lie(40, 70, 120)[0:] + [(75, 0)]
    a = analyze(*_trace(pts), PipelineConfig(release_threshold=100.0))
    contacts = _kinds(a, ContactEpisode)
    assert len(contacts) == 2
    assert contacts[1].mean_force == pytest.approx(118, rel=0.05)


def test_breathing_boundaries_stay_on_the_live_short_path() -> None:
    """Breathing cuts a cycle every 3-6 s, too long to count: live chunks handle those
    boundaries in plain Python (no vector call) and still match the one-piece run."""
    from knotsense.dsp.pipeline import Pipeline, PipelineOutput

    t, f, _ = _rocking_trace(1.0, 6)
    cfg = PipelineConfig(release_threshold=100.0)
    whole = analyze(t, f, cfg).signals
    pipe = Pipeline(cfg)
    vector_calls: list[float] = []
    vector = pipe.rocking.process
    pipe.rocking.process = lambda tt, *a: vector_calls.append(tt[0]) or vector(tt, *a)  # type: ignore[method-assign]
    parts = [pipe.process(t[a : a + 10], f[a : a + 10]) for a in range(0, t.size, 10)]
    live = PipelineOutput.concat([*parts, pipe.finish()])
    assert live.events == whole.events
    assert np.array_equal(live.osc, whole.osc)
    breathing_only = [x for x in vector_calls if 30 < x < 58]  # after the rocking bout
    assert breathing_only == []
    assert any(e.kind == "rocking" for e in live.events)


@pytest.mark.parametrize("hole_s", [0.12, 0.3, 0.45])
def test_short_data_hole_inside_rocking_does_not_split_it(hole_s: float) -> None:
    """A hole up to ``max_gap`` is interpolated; the cycle it flattens is bridged (not
    counted), so one rocking episode stays one. A longer hole breaks the run."""
    global RATE
    old, RATE = RATE, 500.0
    try:
        t, f, r0 = _rocking_trace(2.5, 25)
    finally:
        RATE = old
    cut = (t > 25.0) & (t < 25.0 + hole_s)
    a = analyze(t[~cut], f[~cut], PipelineConfig(release_threshold=100.0))
    (rock,) = _kinds(a, RockingEpisode)
    assert rock.start == pytest.approx(r0, abs=0.5)  # within a cycle (0.4 s)
    assert rock.end == pytest.approx(r0 + 10, abs=0.5)
    assert rock.cycles >= 25 - 3
    long = (t > 25.0) & (t < 25.8)
    assert (
        len(
            _kinds(
                analyze(t[~long], f[~long], PipelineConfig(release_threshold=100.0)), RockingEpisode
            )
        )
        == 2
    )
