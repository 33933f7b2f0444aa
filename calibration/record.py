"""The calibration record: one JSON format for the file, the device's NVM and the host.

Layout (schema version 1)::

    {
      "format": "knotsense-calibration",
      "schema_version": 1,
      "device": {"serial": "KS-000003", "model": "...", "firmware": "1.4.2",
                 "hw_revision": 3, "sensor": "load_cell", "channels": 4, "adc_bits": 24},
      "date": "2025-01-31T12:00:00Z",
      "bench": {"plan": "calibration_bench", "reference": {"kind": "gauge", ...},
                "full_scale_n": 250.0, "points": 39},
      "channels": [                      # one per device channel, in order
        {"model": {"kind": "linear", "gain": ..., "offset": ...},   # a dsp model dict
         "full_scale_n": 62.5, "residual_std_n": 0.05, "uncertainty_pct_fs": 0.2,
         "scores": {"linear": 0.6, ...}, "figures": {"repeatability": {"pct_reading": ..,
         "pct_fs": ..}, ...}, "verdict": "pass", "failures": []}
      ],
      "limits": {"repeatability_pct_fs": 1.0, ...},
      "verdict": "pass",
      "points": [...],                   # the bench points (file only, not on the device)
      "checksum": "sha256:..."           # of the canonical JSON of everything else
    }

The canonical JSON is ``json.dumps(record_without_checksum, sort_keys=True,
separators=(",", ":"))``. The device stores :func:`device_blob` -- the record
without ``points``, with its own checksum -- because its NVM holds 4096 bytes.
:func:`load_record` checks all of it and refuses a record made for another
device unless forced.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from knotsense.calibration.bench import BenchData
from knotsense.calibration.fitting import FitResult
from knotsense.dsp.calibration_models import Calibration, model_from_dict
from knotsense.errors import CalibrationError

FORMAT = "knotsense-calibration"
SCHEMA_VERSION = 1
DEVICE_CAPACITY = 4096


def canonical(record: dict[str, Any]) -> bytes:
    body = {k: v for k, v in record.items() if k != "checksum"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def checksum(record: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical(record)).hexdigest()


def seal(record: dict[str, Any]) -> dict[str, Any]:
    """The record with its checksum (re)computed."""
    out = {k: v for k, v in record.items() if k != "checksum"}
    out["checksum"] = checksum(out)
    return out


def device_dict(info: Any) -> dict[str, Any]:
    """The ``device`` block from a DeviceInfo."""
    kind = info.channels[0].kind if info.channels else 0
    sensor = getattr(kind, "name", str(kind)).lower()
    return {
        "serial": info.serial_number,
        "model": info.model,
        "firmware": info.firmware
        if isinstance(info.firmware, str)
        else ".".join(str(v) for v in info.firmware),
        "hw_revision": int(info.hw_revision),
        "sensor": sensor,
        "channels": info.channel_count,
        "adc_bits": int(info.adc_bits),
    }


def build_record(
    fit: FitResult,
    data: BenchData,
    device: dict[str, Any],
    *,
    date: str | None = None,
    bench: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A sealed record from a fit, its bench data and the ``device`` block."""
    if len(fit.channels) != int(device.get("channels", len(fit.channels))):
        raise CalibrationError(
            f"fit has {len(fit.channels)} channels, the device {device.get('channels')}"
        )
    channels = [
        {
            "model": c.model.to_dict(),
            "full_scale_n": round(c.full_scale_n, 4),
            "residual_std_n": round(c.residual_std_n, 5),
            "uncertainty_pct_fs": round(c.uncertainty_pct_fs, 4),
            "scores": c.scores,
            "branch_bias_pct": c.branch_bias_pct,
            "figures": c.figures,
            "verdict": "pass" if c.passed else "fail",
            "failures": list(c.failures),
        }
        for c in fit.channels
    ]
    record = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "device": device,
        "date": date or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "bench": {
            "plan": data.plan.get("name", ""),
            "full_scale_n": data.plan.get("full_scale_n"),
            "reference": data.reference,
            "points": len(data.points),
            "positions_mm": [list(p) for p in data.positions_mm],
            **(bench or {}),
        },
        "channels": channels,
        "limits": fit.limits,
        "verdict": "pass" if fit.passed else "fail",
        "points": [p.to_dict() for p in data.points],
    }
    return seal(record)


def device_blob(record: dict[str, Any]) -> bytes:
    """The bytes stored in the device's NVM: the record without its bench points."""
    small = seal({k: v for k, v in record.items() if k != "points"})
    blob = json.dumps(small, separators=(",", ":"), allow_nan=False).encode()
    if len(blob) > DEVICE_CAPACITY:
        raise CalibrationError(
            f"the calibration record is {len(blob)} bytes; the device holds {DEVICE_CAPACITY}"
        )
    return blob


def calibration_id(record: dict[str, Any]) -> int:
    """A non-zero 32-bit id for the device, from the record's checksum."""
    value = int(record["checksum"].split(":", 1)[1][:8], 16)
    return value or 1


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, indent=1, allow_nan=False) + "\n"


def save_record(record: dict[str, Any], path: str | Path) -> None:
    try:
        Path(path).write_text(dumps(record), encoding="utf-8")
    except OSError as exc:
        raise CalibrationError(f"cannot write {path}: {exc.strerror or exc}") from None


def parse_record(
    data: bytes | str | dict[str, Any],
    *,
    serial: str | None = None,
    force: bool = False,
    where: str = "calibration record",
) -> dict[str, Any]:
    """Check a record (bytes, text or dict) completely; returns it as a dict.

    Raises:
        CalibrationError: not JSON, wrong format or version, a missing or bad
            field, a checksum mismatch (corrupted or edited), or a record for
            another device (``serial`` differs) unless *force*.
    """
    if isinstance(data, bytes | str):
        try:
            record = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CalibrationError(f"{where}: not JSON ({exc})") from None
    else:
        record = data
    if not isinstance(record, dict):
        raise CalibrationError(f"{where}: a calibration record is a JSON object")
    if record.get("format") != FORMAT:
        raise CalibrationError(f"{where}: not a knotsense calibration record")
    version = record.get("schema_version")
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise CalibrationError(f"{where}: unsupported schema version {version!r}")
    for key, kind in (
        ("device", dict),
        ("date", str),
        ("bench", dict),
        ("channels", list),
        ("verdict", str),
        ("checksum", str),
    ):
        if not isinstance(record.get(key), kind):
            raise CalibrationError(f"{where}: missing or bad {key!r}")
    try:
        expected = checksum(record)
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"{where}: not serialisable ({exc})") from None
    if record["checksum"] != expected:
        raise CalibrationError(
            f"{where}: checksum mismatch (the record is corrupted or was edited)"
        )
    device = record["device"]
    if not isinstance(device.get("serial"), str) or not isinstance(device.get("channels"), int):
        raise CalibrationError(f"{where}: device block needs serial and channels")
    if len(record["channels"]) != device["channels"]:
        raise CalibrationError(
            f"{where}: {len(record['channels'])} channel entries for a "
            f"{device['channels']}-channel device"
        )
    for i, ch in enumerate(record["channels"]):
        if not isinstance(ch, dict) or not isinstance(ch.get("model"), dict):
            raise CalibrationError(f"{where}: channel {i} has no model")
        try:
            model_from_dict(ch["model"])
        except CalibrationError as exc:
            raise CalibrationError(f"{where}: channel {i}: {exc}") from None
    if record["verdict"] not in ("pass", "fail"):
        raise CalibrationError(f"{where}: verdict must be pass or fail")
    if serial is not None and device["serial"] != serial and not force:
        raise CalibrationError(
            f"{where} is for device {device['serial']}, not {serial} "
            "(use --force to apply it anyway)"
        )
    return record


def load_record(
    path: str | Path, *, serial: str | None = None, force: bool = False
) -> dict[str, Any]:
    """Read and check a record file (see :func:`parse_record`)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise CalibrationError(f"{p}: cannot read: {exc.strerror or exc}") from None
    return parse_record(raw, serial=serial, force=force, where=p.name)


def calibration_of(record: dict[str, Any]) -> Calibration:
    """The dsp Calibration (one model per device channel) of a checked record."""
    return Calibration(tuple(model_from_dict(ch["model"]) for ch in record["channels"]))


async def write_to_device(device: Any, record: dict[str, Any], *, force: bool = False) -> int:
    """Write the record into the device's NVM and verify by reading it back.

    Returns the calibration id. Refuses a record for another device unless *force*.
    """
    info = await device.get_info()
    parse_record(record, serial=info.serial_number, force=force)
    if len(record["channels"]) != info.channel_count:
        raise CalibrationError(
            f"record has {len(record['channels'])} channels, the device {info.channel_count}"
        )
    blob = device_blob(record)
    cal_id = calibration_id(record)
    await device.write_calibration(blob, cal_id)  # write, commit, read back, compare
    stored_id, stored = await device.read_calibration()
    parse_record(stored, serial=info.serial_number, force=force, where="record read back")
    if stored_id != cal_id:
        raise CalibrationError("the device reports another calibration id after writing")
    return cal_id
