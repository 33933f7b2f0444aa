"""Simulator scenarios with motion direction (issue 14): rocking along an axis, circling."""

from __future__ import annotations

import numpy as np
import pytest

from knotsense.errors import ConfigurationError
from knotsense.firmware_sim.scenario import ScenarioBuilder, load_scenario


def test_circling_scenario_truth() -> None:
    sc = load_scenario("circling")
    gt = sc.ground_truth(seed=3)
    circ = gt.of_kind("circling")
    # 4.8 turns ccw, 6 cw, 3 cw; the turn and a half is not circling
    assert [c.figures["direction"] for c in circ] == ["ccw", "cw", "cw"]
    assert [round(c.figures["turns"]) for c in circ] == [5, 6, 3]
    rock = gt.of_kind("rocking")
    assert len(rock) == 1 and rock[0].figures["axis_deg"] == 45.0
    assert rock[0].figures["extent_mm"] == 14.0
    # the profile's centre of pressure really goes round, the right way
    prof = sc.profile(3)
    for c in circ:
        t = np.linspace(c.start, c.end, 4000)
        _, x, y = prof.evaluate(t)
        ang = np.unwrap(np.arctan2(y - y.mean(), x - x.mean()))
        turns = (ang[-1] - ang[0]) / (2 * np.pi)
        assert abs(abs(turns) - c.figures["turns"]) < 0.5
        assert (turns > 0) == (c.figures["direction"] == "ccw")
        assert np.hypot(x - x.mean(), y - y.mean()).max() == pytest.approx(
            c.figures["radius_mm"], rel=0.3
        )


def test_rocking_axis_scenario_moves_the_cop_along_the_axis() -> None:
    sc = load_scenario("rocking_axis")
    gt = sc.ground_truth(seed=0)
    rock = gt.of_kind("rocking")
    assert [r.figures["axis_deg"] for r in rock] == [30.0, 120.0, 90.0]
    prof = sc.profile(0)
    for r in rock:
        t = np.linspace(r.start, r.end, 3000)
        _, x, y = prof.evaluate(t)
        c = np.column_stack((x - x.mean(), y - y.mean()))
        major = np.linalg.eigh(c.T @ c)[1][:, 1]
        angle = np.degrees(np.arctan2(major[1], major[0])) % 180
        assert min(abs(angle - r.figures["axis_deg"]), 180 - abs(angle - r.figures["axis_deg"])) < 5
        proj = c @ major
        assert proj.max() - proj.min() == pytest.approx(r.figures["extent_mm"], rel=0.15)
    assert not gt.of_kind("circling")


def test_circle_segment_checks_and_builder() -> None:
    sc = (
        ScenarioBuilder("c", channels=4)
        .lie_down(2, force=100)
        .circle(8, turns_per_s=0.5, radius_mm=5, direction="cw")
        .hold(3)
        .build()
    )
    circ = sc.ground_truth(seed=0).of_kind("circling")
    assert len(circ) == 1 and circ[0].figures["direction"] == "cw"
    for bad in ({"direction": "up"}, {"turns_per_s": 0}, {"radius_mm": -1}):
        with pytest.raises(ConfigurationError, match="circle segment"):
            ScenarioBuilder("c").circle(5, **bad).build()
    slow = ScenarioBuilder("s").lie_down(2, force=100).circle(8, turns_per_s=0.1).build()
    assert not slow.ground_truth().of_kind("circling")  # under 0.2 turns/s
