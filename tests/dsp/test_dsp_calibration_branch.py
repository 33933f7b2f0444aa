"""The two-branch calibration model: causal branch choice, creep, chunk invariance, one number."""

from __future__ import annotations

import numpy as np
import pytest

from knotsense.dsp.calibration_branch import BranchModel, BranchStream
from knotsense.dsp.calibration_models import Calibration, model_from_dict
from knotsense.dsp.pipeline import Pipeline, PipelineConfig
from knotsense.errors import CalibrationError


def fsr_model(**kw) -> BranchModel:
    """An FSR-like model in the conductance domain: F = exp(1 + x), x = ln g."""
    base = dict(
        domain="conductance",
        rest=8.0,
        span=3000.0,
        x_center=0.0,
        x_scale=1.0,
        x_range=(-3.0, 2.0),
        load=(1.0, 1.0),
        unload=(-0.1,),
        creep=-0.03,
        creep_tau_s=1.0,
        deadband=0.01,
        switch=0.05,
        contact=60.0,
        top=4095.0,
    )
    base.update(kw)
    return BranchModel(**base)


def lc_model() -> BranchModel:
    return BranchModel(
        "linear",
        rest=1000.0,
        span=-200000.0,  # counts fall with the load: the sense is taken from the span
        x_center=-99000.0,
        x_scale=60000.0,
        x_range=(-1.7, 1.7),
        load=(50.0, -30.0, 0.1),
        unload=(-0.05, 0.01),
        creep=-0.1,
        creep_tau_s=600.0,
        creep_law="follow",
        contact=4000.0,
    )


def session(rate: float = 100.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Readings of a load going up, easing off, resting, with noise and a breathing ripple."""
    rng = np.random.default_rng(seed)
    levels = [(5, 8.0), (20, 2500.0), (20, 1500.0), (5, 8.0), (30, 1200.0), (10, 2900.0)]
    raw = np.concatenate([np.full(int(d * rate), v) for d, v in levels])
    t = np.arange(raw.size) / rate
    raw = raw + (raw > 100) * 8 * np.sin(2 * np.pi * 0.25 * t) + rng.normal(0, 1.5, raw.size)
    return t, raw


def test_unloading_branch_is_chosen_from_the_direction_of_the_reading() -> None:
    m = fsr_model(creep=0.0)
    t, raw = session()
    f = BranchStream(m).process(t, raw)
    loading = m.force(raw)  # the loading branch, no history
    # Rising to 2500 counts: the loading branch. Eased off to 1500: the unloading one,
    # which reads the same counts as a lower force (exp(-0.1) of it).
    up = slice(15 * 100, 24 * 100)
    down = slice(35 * 100, 44 * 100)
    assert np.allclose(f[up], loading[up], rtol=1e-3)
    assert np.allclose(f[down] / loading[down], np.exp(-0.1), rtol=2e-3)
    # At rest the memory is wiped: a new contact reads on the loading branch again.
    again = slice(52 * 100, 74 * 100)
    assert np.allclose(f[again], loading[again], rtol=2e-3)


def test_creep_compensation_grows_with_time_under_load() -> None:
    m = fsr_model(unload=())
    t = np.arange(0, 300, 0.1)
    raw = np.where(t > 1, 2000.0, 8.0)
    f = BranchStream(m).process(t, raw)
    static = m.force(raw)
    ratio = f[t > 2] / static[t > 2]
    assert np.all(np.diff(ratio) <= 0)  # the same reading, ever less force as time passes
    assert ratio[-1] == pytest.approx(np.exp(-0.03 * np.log10(1 + 298.8)), rel=1e-4)


@pytest.mark.parametrize("model", [fsr_model(), lc_model()], ids=["fsr", "load_cell"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_any_chunking_gives_identical_output(model: BranchModel, seed: int) -> None:
    t, raw = session(seed=seed)
    if model.domain == "linear":
        raw = model.rest + model.span * raw / 3000.0
    raw[777] = np.nan  # a missing sample reads NaN and leaves the state alone
    whole = BranchStream(model).process(t, raw)
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, t.size), 40, replace=False))
    s = BranchStream(model)
    parts = [s.process(a, b) for a, b in zip(np.split(t, cuts), np.split(raw, cuts), strict=True)]
    assert np.array_equal(whole, np.concatenate(parts), equal_nan=True)
    assert np.isnan(whole[777]) and np.isfinite(np.delete(whole, 777)).all()
    s.reset()
    assert np.array_equal(s.process(t, raw), whole, equal_nan=True)


def test_round_trip_and_refusals() -> None:
    for m in (fsr_model(), lc_model()):
        assert model_from_dict(m.to_dict()) == m
    with pytest.raises(CalibrationError, match="domain"):
        fsr_model(domain="cubic")
    with pytest.raises(CalibrationError, match="conductance"):
        fsr_model(top=0.0)
    with pytest.raises(CalibrationError, match="bad branch"):
        model_from_dict({**fsr_model().to_dict(), "load": "x"})
    m = fsr_model()
    assert m.apply(m.inverse(np.array([5.0, 12.0]))) == pytest.approx([5.0, 12.0], rel=1e-6)


def test_apply_stream_and_pipeline_give_the_same_numbers() -> None:
    """Calibration.apply(raw, t), a chunked stream and the live pipeline: bit-identical."""
    cal = Calibration((fsr_model(), fsr_model(unload=(-0.12, 0.01), creep=0.0)))
    t, r0 = session(seed=3)
    _, r1 = session(seed=4)
    raw = np.column_stack((r0, r1))
    assert cal.stateful
    whole = cal.apply(raw, t=t)
    stream = cal.stream()
    chunks = [stream.process(t[a : a + 333], raw[a : a + 333]) for a in range(0, t.size, 333)]
    assert np.array_equal(whole, np.concatenate(chunks))
    assert not np.array_equal(whole, cal.apply(raw))  # without times: loading branch only

    def run(config: PipelineConfig, x: np.ndarray) -> list:
        p = Pipeline(config)
        return [p.process(t[a : a + 250], x[a : a + 250]) for a in range(0, t.size, 250)]

    live = run(PipelineConfig(calibration=cal), raw)
    ref = run(PipelineConfig(calibration=None), whole)
    for a, b in zip(live, ref, strict=True):
        assert np.array_equal(a.t, b.t)
        assert np.array_equal(a.total, b.total, equal_nan=True)
        assert np.array_equal(a.channels, b.channels, equal_nan=True)
