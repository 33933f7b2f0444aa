"""Silicone and sensor figures: static curve, nonlinearity, hysteresis, creep, drift, units."""

from __future__ import annotations

import numpy as np

from knotsense.firmware_sim.physics import load_shares, make_unit, sensor_positions
from knotsense.firmware_sim.render import render
from knotsense.firmware_sim.scenario import ScenarioBuilder


def _steps(forces, dwell: float, sensor: str, ramp: float = 1.0, **kw):
    # drift_scale=0: no temperature coefficients, so skin warming does not blur the figures.
    settings = {"silicone": "soft", "drift_scale": 0.0, **kw}
    b = ScenarioBuilder("steps", sensor=sensor, channels=1, **settings).idle(2)
    for f in forces:
        b.step(dwell, force=f, ramp_s=ramp)
    return b.build()


def _plateaus(r, starts, dwell: float, tail: float):
    """Mean raw counts over the last *tail* seconds of each step."""
    out = []
    for s in starts:
        m = (r.t >= s + dwell - tail) & (r.t < s + dwell)
        out.append(r.raw[m, 0].mean())
    return np.array(out)


def test_units_differ_by_serial_and_repeat() -> None:
    a, b = make_unit("KS-000001", "load_cell", 4), make_unit("KS-000002", "load_cell", 4)
    again = make_unit("KS-000001", "load_cell", 4)
    assert not np.allclose(a.gain, b.gain) and not np.allclose(a.offset, b.offset)
    assert a.crystal_ppm != b.crystal_ppm and np.array_equal(a.gain, again.gain)
    assert np.all(np.abs(a.gain / 25_000 - 1) < 0.1) and np.all(
        (a.noise_rms >= 20) & (a.noise_rms <= 40)
    )
    f = make_unit("KS-000001", "fsr", 4)
    assert np.all(np.abs(f.gain / 0.2 - 1) <= 0.18) and np.all(
        (f.hysteresis > 0.07) & (f.hysteresis < 0.14)
    )


def test_load_sharing_balances_moments() -> None:
    pos = sensor_positions(4)
    cx, cy = np.array([0.0, 5.0, -3.0]), np.array([0.0, 2.0, 4.0])
    w = load_shares(pos, cx, cy)
    assert np.allclose(w.sum(axis=1), 1) and np.allclose(w[0], 0.25)
    assert np.allclose(w @ pos, np.column_stack((cx, cy)))


def test_load_cell_static_curve_noise_and_nonlinearity() -> None:
    forces = [0, 50, 100, 150, 200, 250, 300]
    dwell = 12.0
    r = render(_steps(forces, dwell, "load_cell"), seed=1, rate_hz=80, serial_number="KS-LC1")
    u = r.unit
    starts = 2 + dwell * np.arange(len(forces))
    levels = _plateaus(r, starts, dwell, 6.0)
    expected = np.array([u.static_counts(np.array([f]), creep=0.0)[0] for f in forces])
    fs_counts = u.gain[0] * u.full_scale_n
    assert np.abs(levels - expected).max() < 0.0005 * fs_counts
    # Nonlinearity: deviation from the end-point line, as a fraction of full scale.
    line = levels[0] + (levels[-1] - levels[0]) * np.array(forces) / forces[-1]
    nl = np.abs(levels - line).max() / (levels[-1] - levels[0])
    assert 0.7 * abs(u.nonlinearity[0]) < nl < 1.3 * abs(u.nonlinearity[0]) + 2e-4
    quiet = r.raw[(r.t > 0.2) & (r.t < 1.8), 0]
    assert 0.8 * u.noise_rms[0] < quiet.std() < 1.2 * u.noise_rms[0]


def test_load_cell_creep() -> None:
    sc = _steps([200], 1800.0, "load_cell")
    r = render(sc, seed=2, rate_hz=10, serial_number="KS-LC2")
    u = r.unit
    at = lambda t: r.raw[(r.t > t - 5) & (r.t <= t), 0].mean()  # noqa: E731
    creep = (at(1800) - at(32)) / (u.gain[0] * 200)
    expected = u.creep[0] * (np.exp(-30 / 600) - np.exp(-1798 / 600))
    assert abs(creep - expected) < 0.25 * expected


def _fsr_force(u, counts):
    """Invert the FSR divider and power law (rising branch) to force on the element."""
    g = (counts - u.offset[0]) / (u.adc_max - counts)
    return u.fsr_threshold_n + (np.maximum(g, 0) / u.gain[0]) ** (1 / u.fsr_exponent[0])


def test_fsr_hysteresis_and_drift() -> None:
    peak = 200.0
    forces = [50, 100, 150, 200, 150, 100, 50]
    dwell = 3.0
    r = render(_steps(forces, dwell, "fsr", ramp=0.5), seed=3, rate_hz=100, serial_number="KS-F1")
    u = r.unit
    starts = 2 + dwell * np.arange(len(forces))
    el = _fsr_force(u, _plateaus(r, starts, dwell, 1.0)) / u.fsr_spread
    # Divide out the drift under load at each reading time (contact from ~2.2 s).
    t_read = starts + dwell - 0.5
    drift = 1 + u.drift_per_decade[0] * np.log10(1 + (t_read - 2.2))
    el = el / drift
    assert np.allclose(el[:4], forces[:4], rtol=0.03)
    # Falling branch reads high by h * peak * 4r(1-r): at r = 0.5, h * peak.
    h_measured = (el[5] - el[1]) / peak
    assert abs(h_measured - u.hysteresis[0]) < 0.25 * u.hysteresis[0]


def test_fsr_drift_under_load() -> None:
    sc = _steps([150], 200.0, "fsr", drift_scale=1.0)
    r = render(sc, seed=4, rate_hz=50, serial_number="KS-F2")
    u = r.unit
    at = lambda t: _fsr_force(u, r.raw[(r.t > t - 2) & (r.t <= t), 0].mean())  # noqa: E731
    ratio = at(200.0) / at(12.0)
    d = u.drift_per_decade[0]
    # Skin warming (8 degC, 400 s) lowers the sensitivity meanwhile: take it out.
    warm = 8.0 * (np.exp(-10 / 400) - np.exp(-198 / 400))
    expected = (1 + d * np.log10(1 + 197)) / (1 + d * np.log10(1 + 9)) * (1 + u.span_tc[0] * warm)
    assert abs(ratio - expected) < 0.3 * (expected - 1)
    assert 0.02 < d < 0.05  # "< 5 % per decade"


def test_render_gives_true_force_for_a_reference_gauge() -> None:
    r = render("calibration_bench", seed=0, rate_hz=10, duration_s=120)
    assert r.raw.dtype == np.int64 and r.force.shape == (1200, 4)
    assert np.allclose(r.force.sum(axis=1), r.total)
    assert abs(r.total[(r.t > 15) & (r.t < 24)].mean() - 250) < 1e-6


def test_silicone_in_series_keeps_the_total() -> None:
    """Body -> silicone -> sensors in series: however slow the silicone, the sensors carry
    the applied total; relaxation only moves load between channels when the sharing changes."""
    for silicone in ("soft", "dense", "hard"):
        one = _steps([0, 25, 250], 20.0, "load_cell", silicone=silicone)
        r = render(one, seed=1, rate_hz=80, serial_number="KS-LC1")
        u = r.unit
        for start, f in ((24.0, 25.0), (44.0, 250.0)):  # 2 s after each step arrives
            got = r.raw[(r.t > start) & (r.t < start + 1), 0].mean()
            assert abs(got - u.static_counts(np.array([f]), creep=0.0)[0]) < 0.001 * u.gain[0] * f
    sc = (
        ScenarioBuilder("shift", sensor="load_cell", channels=4, silicone="hard", drift_scale=0.0)
        .idle(1)
        .step(20, 200, ramp_s=1)
        .step(40, 200, ramp_s=0.5, cop_mm=(8.0, 0.0))
        .build()
    )
    r = render(sc, seed=2, rate_hz=80, serial_number="KS-LC3")
    u = r.unit
    f = (r.raw - u.offset) / u.gain
    moved = (r.t > 22.0) & (r.t < 23.0)
    assert abs(f[moved].sum(axis=1).mean() - 200.0) < 1.0  # the total holds through the shift
    late = (r.t > 58.0) & (r.t < 60.0)
    # Channel 3 (x = +18 mm) takes more after the shift: it overshoots, then relaxes.
    assert f[moved, 3].mean() > f[late, 3].mean() + 5.0
    assert abs(f[late, 3].mean() - r.force[late, 3].mean()) < 0.02 * r.force[late, 3].mean()


def test_unloading_wipes_the_hysteresis_memory() -> None:
    """Preloaded to 250 N, unloaded, then loaded from rest to 25 N: the rising branch."""
    fresh = render(_steps([25], 20.0, "fsr"), seed=3, rate_hz=100, serial_number="KS-F1")
    after = render(_steps([250, 0, 25], 20.0, "fsr"), seed=3, rate_hz=100, serial_number="KS-F1")
    a = fresh.raw[(fresh.t > 12) & (fresh.t < 14), 0].mean()
    b = after.raw[(after.t > 52) & (after.t < 54), 0].mean()
    u = fresh.unit
    assert abs(_fsr_force(u, b) - _fsr_force(u, a)) < 0.01 * 25 * u.fsr_spread
