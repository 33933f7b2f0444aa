"""Making calibration records from a bench fit, and moving them to files and devices.

The record format itself (layout, checksum, parser, writer) lives in
:mod:`knotsense.dsp.calibration_record`, where the host can use it too; this
module builds records from a :class:`~knotsense.calibration.fitting.FitResult`,
reads and writes record files, and writes a record into a device's NVM.
:func:`load_record` checks all of it and refuses a record made for another
device unless forced.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from knotsense.calibration.bench import BenchData
from knotsense.calibration.fitting import FitResult
from knotsense.dsp import calibration_record as _codec
from knotsense.dsp.calibration_record import (
    DEVICE_CAPACITY,
    FORMAT,
    SCHEMA_VERSION,
    calibration_of,
    canonical,
    checksum,
    device_blob,
    dumps,
    seal,
)
from knotsense.errors import CalibrationError

__all__ = [
    "DEVICE_CAPACITY",
    "FORMAT",
    "SCHEMA_VERSION",
    "build_record",
    "calibration_id",
    "calibration_of",
    "canonical",
    "checksum",
    "device_blob",
    "device_dict",
    "dumps",
    "load_record",
    "parse_record",
    "save_record",
    "seal",
    "write_to_device",
]

FORCE_HINT = " (use --force to apply it anyway)"


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
            "model_selection": c.selection,
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


def calibration_id(record: dict[str, Any]) -> int:
    """A non-zero 32-bit id for the device, from the record's checksum."""
    value = int(record["checksum"].split(":", 1)[1][:8], 16)
    return value or 1


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
    """Check a record completely (:func:`knotsense.dsp.calibration_record.parse_record`).

    A record for another device names ``--force``, the CLI's way to apply it anyway.
    """
    return _codec.parse_record(data, serial=serial, force=force, where=where, force_hint=FORCE_HINT)


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
