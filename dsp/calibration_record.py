"""The calibration record: one JSON format for the bench file, the device's NVM and the host.

This module is the format's one home: the parser (:func:`parse_record`) and
the writer (:func:`seal`, :func:`dumps`, :func:`device_blob`) that
knotsense.calibration (which makes records), knotsense.host (which applies the
record a recording or a device carries) and the demo all use. It does no I/O,
so it sits in dsp beside the models it names: the host may use it without the
calibration floor, and the calibration floor without redefining it.

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
         "scores": {"linear": 0.6, ...}, "figures": {...}, "verdict": "pass", "failures": []}
      ],
      "limits": {"repeatability_pct_fs": 1.0, ...},
      "verdict": "pass",
      "points": [...],                   # the bench points (file only, not on the device)
      "checksum": "sha256:..."           # of the canonical JSON of everything else
    }

The canonical JSON is ``json.dumps(record_without_checksum, sort_keys=True,
separators=(",", ":"))``. The device stores :func:`device_blob` -- the record
without ``points``, with its own checksum -- because its NVM holds 4096 bytes.

Extending: a channel's ``model`` is read by its ``kind`` through the model
registry (:func:`knotsense.dsp.calibration_models.register_model`), so a new
model kind needs no change here. Extra keys in a channel entry or in the
record are kept and covered by the checksum; readers ignore keys they do not
know, so adding optional keys keeps schema version 1.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from knotsense.dsp.calibration_models import Calibration, model_from_dict
from knotsense.errors import CalibrationError

__all__ = [
    "DEVICE_CAPACITY",
    "FORMAT",
    "SCHEMA_VERSION",
    "calibration_of",
    "canonical",
    "checksum",
    "device_blob",
    "dumps",
    "is_record",
    "parse_record",
    "seal",
]

FORMAT = "knotsense-calibration"
SCHEMA_VERSION = 1
DEVICE_CAPACITY = 4096
"""Bytes of NVM a device reserves for the record blob (protocol.CALIBRATION_CAPACITY)."""

_REQUIRED: tuple[tuple[str, type], ...] = (
    ("device", dict),
    ("date", str),
    ("bench", dict),
    ("channels", list),
    ("verdict", str),
    ("checksum", str),
)


def canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes the checksum covers: sorted compact JSON of all but ``checksum``."""
    body = {k: v for k, v in record.items() if k != "checksum"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def checksum(record: Mapping[str, Any]) -> str:
    """``"sha256:<hex>"`` of :func:`canonical`."""
    return "sha256:" + hashlib.sha256(canonical(record)).hexdigest()


def seal(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record with its checksum (re)computed: the one way a record is finished."""
    out = {k: v for k, v in record.items() if k != "checksum"}
    out["checksum"] = checksum(out)
    return out


def dumps(record: Mapping[str, Any]) -> str:
    """The text of a record file (indented JSON, trailing newline)."""
    return json.dumps(record, indent=1, allow_nan=False) + "\n"


def device_blob(record: Mapping[str, Any]) -> bytes:
    """The bytes stored in the device's NVM: the record without its bench points.

    Raises:
        CalibrationError: the blob does not fit :data:`DEVICE_CAPACITY`.
    """
    small = seal({k: v for k, v in record.items() if k != "points"})
    blob = json.dumps(small, separators=(",", ":"), allow_nan=False).encode()
    if len(blob) > DEVICE_CAPACITY:
        raise CalibrationError(
            f"the calibration record is {len(blob)} bytes; the device holds {DEVICE_CAPACITY}"
        )
    return blob


def is_record(data: Any) -> bool:
    """True when *data* is a dict that says it is a calibration record (checked or not)."""
    return isinstance(data, Mapping) and data.get("format") == FORMAT


def parse_record(
    data: bytes | str | Mapping[str, Any],
    *,
    serial: str | None = None,
    force: bool = False,
    where: str = "calibration record",
    force_hint: str = "",
) -> dict[str, Any]:
    """Check a record (bytes, text or dict) completely; returns it as a dict.

    Args:
        data: the record as stored (file bytes, NVM blob) or already decoded.
        serial: the device it is applied to; a record for another one is refused.
        force: accept a record made for another device.
        where: names the record in error messages (a file name, "record read back").
        force_hint: appended to the wrong-device message (the CLI names its option).

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
        record = dict(data) if isinstance(data, Mapping) else data
    if not isinstance(record, dict):
        raise CalibrationError(f"{where}: a calibration record is a JSON object")
    if record.get("format") != FORMAT:
        raise CalibrationError(f"{where}: not a knotsense calibration record")
    version = record.get("schema_version")
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise CalibrationError(f"{where}: unsupported schema version {version!r}")
    for key, kind in _REQUIRED:
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
            f"{where} is for device {device['serial']}, not {serial}{force_hint}"
        )
    return record


def calibration_of(record: Mapping[str, Any]) -> Calibration:
    """The dsp Calibration (one model per device channel) of a checked record."""
    return Calibration(tuple(model_from_dict(ch["model"]) for ch in record["channels"]))
