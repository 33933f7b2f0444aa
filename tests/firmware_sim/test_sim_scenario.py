"""Scenario files, the builder and the ground truth."""

from __future__ import annotations

import json

import pytest

from knotsense.errors import ConfigurationError
from knotsense.firmware_sim.scenario import (
    ROCK_BAND_HZ,
    ScenarioBuilder,
    list_scenarios,
    load_scenario,
)

REQUIRED = {
    "back_session",
    "calibration_bench",
    "quiet_baseline",
    "heavy_noise",
    "drift",
    "saturation",
    "fast_rocking",
}


def test_required_scenarios_ship() -> None:
    assert set(list_scenarios()) >= REQUIRED


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_scenarios_load_and_truth_is_sane(name: str) -> None:
    sc = load_scenario(name)
    for seed in (0, 1):
        gt = sc.ground_truth(seed=seed)
        json.dumps(gt.to_dict())
        for i in gt.intervals:
            assert 0 <= i.start < i.end <= sc.duration_s + 1e-6
        for i in gt.of_kind("release"):
            assert i.duration >= gt.hold_s and i.figures["mean_n"] >= gt.release_threshold_n
        for i in gt.of_kind("overpressure"):
            assert i.duration > 1.0 and i.figures["max_n"] > gt.max_force_n
        for i in gt.of_kind("rocking"):
            assert ROCK_BAND_HZ[0] <= i.figures["freq_hz"] <= ROCK_BAND_HZ[1]
            assert i.figures["cycles"] >= 3
            assert i.figures["p2p_n"] >= max(8.0, 0.15 * i.figures["mean_n"])
        contacts = gt.of_kind("contact")
        for i in gt.intervals:
            if i.kind != "contact":
                assert any(c.start <= i.start + 0.5 and i.end <= c.end + 0.5 for c in contacts)


def test_back_session_truth() -> None:
    gt = load_scenario("back_session").ground_truth(seed=3)
    assert load_scenario("back_session").duration_s == 600
    assert len(gt.of_kind("release")) == 3  # the 1.2 s lift is bridged, the 3.5 s one is not
    assert len(gt.of_kind("rocking")) == 2 and len(gt.of_kind("overpressure")) == 1
    assert len(gt.of_kind("contact")) >= 3


def test_fast_rocking_edges() -> None:
    gt = load_scenario("fast_rocking").ground_truth()
    rocks = gt.of_kind("rocking")
    assert len(rocks) == 2
    assert abs(rocks[0].figures["freq_hz"] - 0.42) < 0.02
    assert abs(rocks[1].figures["freq_hz"] - 2.6) < 0.1


def test_builder_and_custom_threshold() -> None:
    sc = (
        ScenarioBuilder("b", channels=2, sensor="fsr")
        .idle(2)
        .lie_down(3, force=130)
        .hold(70, settle_s=10)
        .lift(1.0)
        .hold(10)
        .lift_off(2)
        .build()
    )
    assert sc.duration_s == 88 and sc.channels == 2
    assert len(sc.ground_truth().of_kind("release")) == 1
    assert sc.ground_truth(release_threshold_n=200).of_kind("release") == ()
    assert sc.ground_truth(hold_s=90).of_kind("release") == ()


def test_bad_scenarios(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match="unknown scenario"):
        load_scenario("nope")
    bad = tmp_path / "bad.toml"
    for text, match in [
        ("name = [", "malformed"),
        ('name = "x"\n', "segment"),
        ('name = "x"\ncolour = 1\n[[segment]]\nkind = "idle"\nduration = 1\n', "colour"),
        ('name = "x"\n[[segment]]\nkind = "dance"\nduration = 1\n', "dance"),
        ('name = "x"\n[[segment]]\nkind = "idle"\nduration = -1\n', "duration"),
    ]:
        bad.write_text(text)
        with pytest.raises(ConfigurationError, match=match) as info:
            load_scenario(str(bad))
        assert "\n" not in str(info.value)
