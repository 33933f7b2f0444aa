"""Calibration models: apply/inverse round trips, JSON records, channel application."""

from __future__ import annotations

import json

import numpy as np
import pytest

from knotsense.dsp.calibration_models import (
    Calibration,
    CalibrationModel,
    LinearModel,
    MonotoneModel,
    PolynomialModel,
    fit_model,
    model_from_dict,
)
from knotsense.errors import CalibrationError

FSR_RAW = (100.0, 400.0, 900.0, 1600.0, 2500.0, 3600.0)
FSR_N = tuple(20.0 * (r / 1000.0) ** 1.4 for r in FSR_RAW)

MODELS = [
    LinearModel(0.05, -3.0),
    PolynomialModel((-2.0, 0.04, 2e-6, -1e-10), (0.0, 4000.0)),
    MonotoneModel(FSR_RAW, FSR_N),
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.kind)
def test_inverse_round_trips(model: CalibrationModel) -> None:
    raw = np.linspace(150.0, 3500.0, 57)
    assert np.allclose(model.inverse(model.apply(raw)), raw, rtol=1e-7, atol=1e-6)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.kind)
def test_dict_round_trip_is_json_safe(model: CalibrationModel) -> None:
    data = json.loads(json.dumps(model.to_dict()))
    again = model_from_dict(data)
    assert again == model
    assert type(model).from_dict(data) == model
    raw = np.array([200.0, 1000.0, 3000.0])
    assert np.array_equal(again.apply(raw), model.apply(raw))


def test_monotone_model_passes_knots_and_never_overshoots() -> None:
    m = MonotoneModel(FSR_RAW, FSR_N)
    assert np.allclose(m.apply(np.array(FSR_RAW)), FSR_N)
    dense = m.apply(np.linspace(FSR_RAW[0], FSR_RAW[-1], 2001))
    assert np.all(np.diff(dense) > 0)


def test_calibration_applies_per_channel_and_round_trips() -> None:
    cal = Calibration((LinearModel(0.1, 0.0), MonotoneModel(FSR_RAW, FSR_N)))
    raw = np.array([[100.0, 400.0], [200.0, 900.0]])
    out = cal.apply(raw)
    assert np.allclose(out[:, 0], [10.0, 20.0])
    assert np.allclose(out[:, 1], [FSR_N[1], FSR_N[2]])
    assert np.allclose(cal.inverse(out), raw)
    assert Calibration.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal
    assert not cal.is_linear and Calibration.identity(3).is_linear


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "spline"},
        {"kind": "linear", "gain": 0.0},
        {"kind": "polynomial", "coefficients": [1, 2, 3, 4, 5]},
        {"kind": "monotone", "raw_knots": [1, 2], "force_knots": [2, 1]},
        {"kind": "linear", "slope": 1},
    ],
)
def test_bad_records_raise_calibration_error(bad: dict) -> None:
    with pytest.raises(CalibrationError):
        model_from_dict(bad)


def test_wrong_channel_count_is_an_error() -> None:
    with pytest.raises(CalibrationError):
        Calibration.identity(2).apply(np.zeros((3, 4)))


def test_fit_helper_recovers_models() -> None:
    raw = np.linspace(0, 4000, 40)
    lin = fit_model(raw, 0.02 * raw + 1.5)
    assert isinstance(lin, LinearModel) and lin.gain == pytest.approx(0.02)
    poly = fit_model(raw, 1 + 0.01 * raw + 3e-6 * raw**2, kind="polynomial", degree=2)
    assert np.allclose(poly.apply(raw), 1 + 0.01 * raw + 3e-6 * raw**2)
    mono = fit_model(np.array(FSR_RAW), np.array(FSR_N), kind="monotone")
    assert np.allclose(mono.apply(np.array(FSR_RAW)), FSR_N, atol=1e-6)
