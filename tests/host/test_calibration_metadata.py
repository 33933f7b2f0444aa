"""The host applies calibration records through the one codec (knotsense.dsp.calibration_record)."""

from __future__ import annotations

from pathlib import Path

import pytest

from knotsense.dsp import calibration_record as codec
from knotsense.dsp.calibration_models import Calibration, LinearModel
from knotsense.errors import CalibrationError
from knotsense.host.record import load_calibration_record
from knotsense.host.session import calibration_from_metadata


def _record(serial: str = "KS-000009") -> dict:
    gains = (0.01, 0.02, 0.03)
    return codec.seal(
        {
            "format": codec.FORMAT,
            "schema_version": 1,
            "device": {"serial": serial, "channels": 3},
            "date": "2026-01-01T00:00:00Z",
            "bench": {},
            "channels": [{"model": LinearModel(g).to_dict()} for g in gains],
            "verdict": "pass",
        }
    )


def test_a_record_applies_to_the_streamed_channels() -> None:
    meta = {"calibration": _record(), "device_info": {"serial_number": "KS-000009"}}
    cal = calibration_from_metadata(meta, [0, 2], 3)
    assert cal == Calibration((LinearModel(0.01), LinearModel(0.03)))


def test_a_record_for_another_device_or_edited_is_refused() -> None:
    meta = {"calibration": _record(), "device_info": {"serial_number": "KS-1"}}
    with pytest.raises(CalibrationError, match=r"for device KS-000009, not KS-1$"):
        calibration_from_metadata(meta, [0, 1, 2], 3)
    edited = dict(_record(), verdict="fail")
    with pytest.raises(CalibrationError, match="checksum mismatch"):
        calibration_from_metadata({"calibration": edited}, [0, 1, 2], 3)


def test_record_files_are_checked_when_loaded(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(codec.dumps(_record()))
    assert load_calibration_record(good) == _record()
    bad = tmp_path / "bad.json"
    bad.write_text(codec.dumps(_record()).replace("0.02", "0.025"))
    with pytest.raises(CalibrationError, match=r"bad\.json: checksum mismatch") as info:
        load_calibration_record(bad)
    assert "\n" not in str(info.value)
    legacy = tmp_path / "legacy.json"  # Calibration.to_dict(): read by calibration_from_metadata
    legacy.write_text('{"kind": "calibration", "channels": [{"kind": "linear", "gain": 2.0}]}')
    assert calibration_from_metadata(
        {"calibration": load_calibration_record(legacy)}, [0], 1
    ) == Calibration((LinearModel(2.0),))
