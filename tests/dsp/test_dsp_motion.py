"""Motion direction (issue 14): rocking axis and extent, and the circling detector.

The CoP paths here are drawn directly (lines, circles, ellipses, noise) so
each rule of dsp/motion.py is checked on its own; the pipeline tests feed
channel forces whose centre of pressure makes those paths.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from support.motion import RING, motion_session

from knotsense.dsp.detectors import Episode, Onset, RockingEpisode
from knotsense.dsp.motion import (
    CirclingDetector,
    CirclingEpisode,
    CopHistory,
    MotionTracker,
    axis_error,
    path_axis,
)
from knotsense.dsp.pipeline import PipelineConfig, analyze
from knotsense.errors import ConfigurationError

RATE = 25.0


def _circle(
    turns: float,
    rate: float,
    radius: float = 4.0,
    direction: int = 1,
    lead: float = 5.0,
    noise: float = 0.15,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """CoP bins: still for *lead* s, *turns* turns round (2, -1), still again."""
    rng = np.random.default_rng(seed)
    dur = turns / rate
    t = np.arange(0.0, lead + dur + lead, 1 / RATE) + 0.5 / RATE
    tau = np.clip(t - lead, 0.0, dur)
    ang = direction * 2 * np.pi * rate * tau
    ramp = 0.25 / rate  # the radius grows and shrinks over a quarter turn
    r = radius * np.clip(np.minimum(tau, dur - tau) / ramp, 0.0, 1.0)
    cop = np.column_stack((2 + r * np.cos(ang), -1 + r * np.sin(ang)))
    cop += rng.normal(0.0, noise, cop.shape)
    return t, cop, (lead, lead + dur)


def _events(det: CirclingDetector, t: np.ndarray, cop: np.ndarray, chunks=None) -> list:
    det.reset()
    if chunks is None:
        return det.process(t, cop) + det.finish()
    out, a = [], 0
    for n in chunks:
        out += det.process(t[a : a + n], cop[a : a + n])
        a += n
    return out + det.process(t[a:], cop[a:]) + det.finish()


def _episodes(events: list) -> list[CirclingEpisode]:
    return [e for e in events if isinstance(e, CirclingEpisode)]


# --- axis ---------------------------------------------------------------------------------


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0, 135.0, 179.0])
def test_axis_of_a_line_with_noise_and_drift(angle: float) -> None:
    rng = np.random.default_rng(int(angle))
    t = np.arange(0, 20, 1 / RATE)
    s = 6.0 * np.sin(2 * np.pi * 0.7 * t)  # 12 mm peak to peak
    a = math.radians(angle)
    cop = np.column_stack((s * math.cos(a), s * math.sin(a)))
    cop += rng.normal(0, 0.2, cop.shape) + np.outer(t / 20, [3.0, -2.0])  # noise, posture drift
    ax = path_axis(cop)
    assert ax is not None
    assert axis_error(ax.angle, angle) < 1.5
    assert 0 <= ax.angle < 180
    assert ax.extent == pytest.approx(12.0, rel=0.06)
    assert ax.linearity > 0.9


def test_axis_needs_points_and_a_path() -> None:
    assert path_axis(np.full((50, 2), np.nan)) is None
    assert path_axis(np.zeros((3, 2))) is None
    assert path_axis(np.ones((40, 2))) is None  # no motion: no direction
    with pytest.raises(ConfigurationError):
        path_axis(np.zeros((10, 3)))
    assert axis_error(0.0, 179.0) == pytest.approx(1.0)
    assert axis_error(10.0, 100.0) == pytest.approx(90.0)


def test_history_window_and_trim() -> None:
    h = CopHistory(keep=10.0)
    for k in range(30):  # 30 s in one-second parts
        t = k + np.arange(0, 1, 0.04)
        h.process(t, np.column_stack((t, -t)))
        h.trim()
    w = h.window(25.0, 27.0)
    assert w[0, 0] == pytest.approx(25.0) and w[-1, 0] <= 27.0
    assert h.window(0.0, 5.0).size == 0  # older than keep: gone
    with pytest.raises(ConfigurationError):
        CopHistory(0)


# --- circling -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("turns", "rate", "direction"),
    [(3.0, 0.5, 1), (2.5, 0.25, -1), (6.0, 1.8, 1), (4.0, 1.0, -1), (2.2, 0.22, 1)],
)
def test_circling_found_with_turns_direction_and_radius(
    turns: float, rate: float, direction: int
) -> None:
    t, cop, (a, b) = _circle(turns, rate, radius=4.0, direction=direction)
    det = CirclingDetector(RATE)
    events = _events(det, t, cop)
    eps = _episodes(events)
    assert len(eps) == 1, eps
    e = eps[0]
    assert e.direction == ("ccw" if direction > 0 else "cw")
    assert e.turns == pytest.approx(turns, abs=0.45)
    assert e.radius == pytest.approx(4.0, rel=0.12)
    assert e.rate == pytest.approx(rate, rel=0.2)
    assert abs(e.start - a) < 0.25 / rate + 0.3 and abs(e.end - b) < 0.25 / rate + 0.3
    onsets = [o for o in events if isinstance(o, Onset)]
    assert len(onsets) == 1 and onsets[0].kind == "circling" and onsets[0].start == e.start
    assert onsets[0].detected_at >= e.start + 2 / rate * 0.9  # two turns seen first
    assert json.loads(json.dumps(e.to_dict()))["kind"] == "circling"


@pytest.mark.parametrize(
    ("turns", "rate", "why"),
    [
        (1.6, 0.5, "fewer than two turns"),
        (4.0, 0.1, "too slow"),
        (12.0, 3.5, "too fast"),
    ],
)
def test_not_circling(turns: float, rate: float, why: str) -> None:
    t, cop, _ = _circle(turns, rate)
    assert not _episodes(_events(CirclingDetector(RATE), t, cop)), why


def test_rocking_lines_ellipses_and_noise_are_not_circling() -> None:
    rng = np.random.default_rng(7)
    t = np.arange(0, 60, 1 / RATE)
    det = CirclingDetector(RATE)
    for minor in (0.0, 0.1, 0.25):  # a rocking line, and thin ellipses
        s = 2 * np.pi * 0.8 * t
        cop = np.column_stack((6 * np.sin(s), 6 * minor * np.cos(s)))
        cop += rng.normal(0, 0.2, cop.shape)
        assert not _episodes(_events(det, t, cop)), minor
    still = rng.normal(0, 0.4, (t.size, 2))  # CoP noise of a still body
    assert not _episodes(_events(det, t, still))
    tt, tiny, _ = _circle(5, 0.5, radius=0.5, noise=0.05)  # below min_radius
    assert not _episodes(_events(det, tt, tiny))


def test_reversal_and_hole_end_a_circling() -> None:
    t, cop, _ = _circle(3.0, 0.5, lead=3.0)
    t2, cop2, _ = _circle(3.0, 0.5, direction=-1, lead=0.1)
    both_t = np.concatenate((t, t2 + t[-1] + 1 / RATE))
    both = np.concatenate((cop, cop2 + (cop[-1] - cop2[0])))
    eps = _episodes(_events(CirclingDetector(RATE), both_t, both))
    assert [e.direction for e in eps] == ["ccw", "cw"]
    t, cop, (a, _) = _circle(6.0, 0.5)
    hole = (t > a + 5.0) & (t < a + 6.0)  # a 1 s hole in the bins after 2.5 turns
    eps = _episodes(_events(CirclingDetector(RATE), t[~hole], cop[~hole]))
    assert len(eps) == 2 and eps[0].end <= a + 5.0 + 0.05 and eps[1].start >= a + 6.0 - 0.05
    nan = cop.copy()
    nan[hole] = np.nan  # nobody on the knob: NaN CoP does the same
    assert len(_episodes(_events(CirclingDetector(RATE), t, nan))) == 2


def test_circling_is_chunk_invariant() -> None:
    t, cop, _ = _circle(5.0, 0.7, seed=3)
    t2, cop2, _ = _circle(3.0, 0.3, direction=-1, seed=4)
    tt = np.concatenate((t, t2 + t[-1] + 1 / RATE))
    cc = np.concatenate((cop, cop2))
    det = CirclingDetector(RATE)
    whole = _events(det, tt, cc)
    assert len(_episodes(whole)) == 2
    rng = np.random.default_rng(11)
    for _ in range(5):
        chunks = rng.integers(1, 40, 400).tolist()
        assert _events(det, tt, cc, chunks) == whole
    assert _events(det, tt, cc, [1] * (tt.size - 1)) == whole


def test_circling_options_are_checked() -> None:
    with pytest.raises(ConfigurationError):
        CirclingDetector(RATE, min_rate=2.0, max_rate=1.0)
    with pytest.raises(ConfigurationError):
        CirclingDetector(RATE, roundness=1.5)
    with pytest.raises(ConfigurationError):
        CirclingDetector(RATE, min_radius=0)
    with pytest.raises(ConfigurationError):
        MotionTracker(RATE, axis_window=400, keep=300)
    with pytest.raises(ConfigurationError):
        PipelineConfig(circling_min_radius=-1.0)


# --- in the pipeline ------------------------------------------------------------------------


def _session(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return motion_session(seed)


def test_pipeline_reports_rocking_axis_and_circling() -> None:
    t, x = _session()
    a = analyze(t, x, PipelineConfig(release_threshold=150, positions=RING))
    rock = [e for e in a.episodes if isinstance(e, RockingEpisode)]
    circ = [e for e in a.episodes if isinstance(e, CirclingEpisode)]
    assert len(rock) == 1 and len(circ) == 1
    assert rock[0].axis is not None and axis_error(rock[0].axis, 60.0) < 3.0
    assert rock[0].extent == pytest.approx(10.0, rel=0.15)
    assert circ[0].direction == "ccw" and circ[0].turns == pytest.approx(6.0, abs=0.5)
    assert circ[0].radius == pytest.approx(4.0, rel=0.15)
    assert any(o.kind == "circling" for o in a.onsets)
    d = a.to_dict()
    kinds = [e["kind"] for e in d["events"]]
    assert "circling" in kinds
    rock_d = next(e for e in d["events"] if e["kind"] == "rocking")
    assert rock_d["axis"] == pytest.approx(rock[0].axis, abs=1e-3)
    s = d["summary"]
    assert s["circling"]["count"] == 1 and s["circling"]["directions"] == ["ccw"]
    assert s["rocking"]["axes_deg"][0] == pytest.approx(rock[0].axis, abs=0.1)
    json.dumps(d)


def test_pipeline_without_positions_or_motion_has_no_motion() -> None:
    t, x = _session()
    for cfg in (
        PipelineConfig(release_threshold=150),
        PipelineConfig(release_threshold=150, positions=RING, motion=False),
    ):
        a = analyze(t, x, cfg)
        assert not [e for e in a.episodes if e.kind == "circling"]
        assert all(e.axis is None for e in a.episodes if isinstance(e, RockingEpisode))
        assert a.to_dict()["summary"]["circling"]["count"] == 0


def test_pipeline_motion_is_chunk_invariant() -> None:
    t, x = _session(seed=2)
    cfg = PipelineConfig(release_threshold=150, positions=RING)
    whole = analyze(t, x, cfg)
    assert any(isinstance(e, CirclingEpisode) for e in whole.episodes)
    rng = np.random.default_rng(5)
    for chunk in (1, 7, 64, int(rng.integers(100, 3000))):
        part = analyze(t, x, cfg, chunk=chunk)
        assert part.episodes == whole.episodes, chunk
        assert part.onsets == whole.onsets, chunk
    live = analyze(t, x, PipelineConfig(release_threshold=150, positions=RING, block=0.2), chunk=3)
    assert [e for e in live.episodes if isinstance(e, Episode)] == list(whole.episodes)
