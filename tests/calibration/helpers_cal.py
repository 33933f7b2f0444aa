"""Shared helpers: calibrate a simulated unit offline (render, no wire) and check its accuracy."""

from __future__ import annotations

import tomllib

import numpy as np

from knotsense.calibration.bench import BenchData, track_arrays
from knotsense.calibration.fitting import FitResult, fit_bench
from knotsense.calibration.plan import plan_scenario_toml, quick_plan, simulator_plan
from knotsense.calibration.record import build_record
from knotsense.dsp.calibration_models import Calibration, model_from_dict
from knotsense.firmware_sim.render import render
from knotsense.firmware_sim.scenario import ScenarioBuilder, scenario_from_dict

RATES = {"load_cell": 80, "fsr": 100}


def bench(
    sensor: str, seed: int, serial: str | None = None, silicone: str | None = None
) -> tuple[BenchData, FitResult, dict]:
    """Calibrate a unit offline: the shipped calibration_bench scenario (dense silicone), or
    with *silicone* the quick plan's own bench scenario pressed through that silicone."""
    serial = serial or f"KS-{seed:06d}"
    plan = simulator_plan()
    scenario: object = "calibration_bench"
    if silicone is not None:
        plan = quick_plan()
        scenario = scenario_from_dict(
            tomllib.loads(plan_scenario_toml(plan, sensor, 4, silicone=silicone))
        )
    r = render(scenario, seed=seed, sensor=sensor, rate_hz=RATES[sensor], serial_number=serial)
    u = r.unit
    data = track_arrays(
        plan,
        r.t,
        r.raw,
        r.total,
        positions_mm=tuple(map(tuple, u.positions_mm)),
        adc_limits=(u.adc_min, u.adc_max),
        sensor=sensor,
    )
    fit = fit_bench(data)
    device = {
        "serial": serial,
        "model": "sim",
        "firmware": "1.4.2",
        "hw_revision": 3,
        "sensor": sensor,
        "channels": u.channels,
        "adc_bits": u.adc_bits,
    }
    return data, fit, build_record(fit, data, device, date="2025-01-01T00:00:00Z")


def accuracy(
    sensor: str, seed: int, record: dict, serial: str, silicone: str = "dense"
) -> tuple[np.ndarray, np.ndarray, object]:
    """Relative errors of the calibrated channels on held loads 10-100 % of the bench range.

    Each load is applied from rest (as a person lies down), held 40 s and read
    10-12 s after the step starts (8 s after it arrives, about the quick plan's
    settle time); then eased off to half the load (the falling branch) and read
    again 10-12 s later.
    """
    fs = 250.0
    b = ScenarioBuilder(
        "verify", sensor=sensor, channels=4, rate_hz=RATES[sensor], silicone=silicone
    ).idle(5)
    levels = [0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 1.0]
    for f in levels:
        b.step(40, f * fs, ramp_s=2).step(40, f * fs / 2, ramp_s=2).step(120, 0, ramp_s=2)
    r = render(b.build(), seed=seed, rate_hz=RATES[sensor], serial_number=serial)
    cal = Calibration(tuple(model_from_dict(c["model"]) for c in record["channels"]))
    forces = cal.apply(r.raw)
    errs_up, errs_down = [], []
    t0 = 5.0
    for _f in levels:
        for k, bucket in ((0, errs_up), (1, errs_down)):
            a = t0 + 40 * k + 10
            sel = (r.t >= a) & (r.t < a + 2)
            true = r.force[sel].mean(axis=0)
            got = forces[sel].mean(axis=0)
            bucket.append((got - true) / true)
        t0 += 200
    return np.array(errs_up), np.array(errs_down), r.unit
