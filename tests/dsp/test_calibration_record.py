"""The calibration record's one codec: round trips, malformed records, the model registry."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest

from knotsense.dsp import calibration_models as models
from knotsense.dsp import calibration_record as codec
from knotsense.dsp.calibration_models import LinearModel, MonotoneModel
from knotsense.errors import CalibrationError
from knotsense.protocol.commands import CALIBRATION_CAPACITY


def _record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "format": codec.FORMAT,
        "schema_version": codec.SCHEMA_VERSION,
        "device": {"serial": "KS-000007", "channels": 2, "sensor": "fsr"},
        "date": "2026-01-02T03:04:05Z",
        "bench": {"plan": "unit-test", "points": 2},
        "channels": [
            {"model": LinearModel(0.02, -1.0).to_dict(), "verdict": "pass"},
            {"model": MonotoneModel((10.0, 20.0, 40.0), (1.0, 3.0, 9.0)).to_dict()},
        ],
        "limits": {},
        "verdict": "pass",
        "points": [{"force_n": 1.0}, {"force_n": 2.0}],
    }
    record.update(changes)
    return codec.seal(record)


def test_file_text_and_device_blob_round_trip() -> None:
    record = _record()
    assert codec.parse_record(codec.dumps(record), serial="KS-000007") == record
    assert codec.parse_record(codec.dumps(record).encode()) == record
    stored = codec.parse_record(codec.device_blob(record))
    assert "points" not in stored and stored["channels"] == record["channels"]
    cal = codec.calibration_of(stored)
    raw = np.array([[100.0, 20.0]])
    assert np.allclose(cal.apply(raw), [[1.0, 3.0]])
    assert codec.DEVICE_CAPACITY == CALIBRATION_CAPACITY


def test_seal_is_the_checksum_of_the_canonical_json() -> None:
    record = _record()
    body = {k: v for k, v in record.items() if k != "checksum"}
    assert (
        codec.canonical(record) == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    )
    assert codec.seal(body) == record and codec.seal(record) == record


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "is a JSON object"),
        ({"format": "other"}, "not a knotsense calibration record"),
        (_record(schema_version=2), "unsupported schema version 2"),
        (_record(date=5), "missing or bad 'date'"),
        ({**_record(), "verdict": "fail"}, "checksum mismatch"),
        (_record(channels=[{"model": {"kind": "linear", "gain": 1.0}}]), "1 channel entries"),
        (
            _record(channels=[{"model": {"kind": "spline"}}, {"model": {"kind": "linear"}}]),
            "channel 0: unknown calibration model",
        ),
        (_record(verdict="maybe"), "verdict must be pass or fail"),
    ],
)
def test_a_malformed_record_is_one_line_error(data: Any, message: str) -> None:
    with pytest.raises(CalibrationError, match=message) as info:
        codec.parse_record(data, where="cal.json")
    text = str(info.value)
    assert text.startswith("cal.json") and "\n" not in text


def test_a_record_for_another_device_needs_force() -> None:
    record = _record()
    with pytest.raises(CalibrationError, match="for device KS-000007, not KS-1; retry") as info:
        codec.parse_record(record, serial="KS-1", force_hint="; retry")
    assert "\n" not in str(info.value)
    assert codec.parse_record(record, serial="KS-1", force=True) == record


@dataclass(frozen=True)
class _SquareRoot(models.CalibrationModel):
    """A stand-in for a future model kind: ``force = k * sqrt(raw)``."""

    k: float = 1.0
    kind: ClassVar[str] = "test_sqrt"

    def apply(self, raw: Any) -> Any:
        return self.k * np.sqrt(np.asarray(raw, dtype=np.float64))

    def inverse(self, force: Any) -> Any:
        return (np.asarray(force, dtype=np.float64) / self.k) ** 2

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "k": self.k}


def test_a_registered_model_kind_is_read_by_the_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "MODEL_KINDS", dict(models.MODEL_KINDS))
    record = _record(channels=[{"model": _SquareRoot(2.0).to_dict()}] * 2)
    with pytest.raises(CalibrationError, match="unknown calibration model"):
        codec.parse_record(record)
    models.register_model(_SquareRoot)
    cal = codec.calibration_of(codec.parse_record(record))
    assert np.allclose(cal.apply(np.array([[4.0, 9.0]])), [[4.0, 6.0]])

    @dataclass(frozen=True)
    class Clash(_SquareRoot):
        pass

    with pytest.raises(ValueError, match="already _SquareRoot"):
        models.register_model(Clash)
