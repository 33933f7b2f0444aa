"""What a recording's metadata says about the device: its info and its calibration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from knotsense.errors import CalibrationError
from knotsense.protocol import ChannelInfo, DeviceInfo, SampleUnit, SensorKind

__all__ = ["calibration_from_metadata", "device_info_from_dict"]


def device_info_from_dict(data: Any) -> DeviceInfo | dict[str, Any] | None:
    """Rebuild a DeviceInfo from its JSON form (``jsonable(DeviceInfo)``); the dict if not."""
    if data is None or isinstance(data, DeviceInfo):
        return data
    if not isinstance(data, Mapping):
        return None
    try:
        channels = tuple(
            ChannelInfo(_enum_or_int(SensorKind, c["kind"]), float(c["x_mm"]), float(c["y_mm"]))
            for c in data["channels"]
        )
        return DeviceInfo(
            protocol_major=int(data["protocol_major"]),
            protocol_minor=int(data["protocol_minor"]),
            firmware_version=tuple(int(v) for v in data["firmware_version"]),  # type: ignore[arg-type]
            hw_revision=int(data["hw_revision"]),
            adc_bits=int(data["adc_bits"]),
            units=_enum_or_int(SampleUnit, data["units"]),
            calibration_id=int(data["calibration_id"]),
            sample_rates=tuple(int(r) for r in data["sample_rates"]),
            channels=channels,
            serial_number=str(data["serial_number"]),
            model=str(data.get("model", "")),
        )
    except (KeyError, TypeError, ValueError):
        return dict(data)


def _enum_or_int(cls: Any, value: Any) -> Any:
    try:
        return cls(int(value))
    except ValueError:
        return int(value)


def calibration_from_metadata(
    metadata: Mapping[str, Any], channel_ids: Sequence[int], device_channels: int | None
) -> Any:
    """The dsp Calibration for the streamed channels, from the metadata's ``calibration``.

    A calibration record (``"format": "knotsense-calibration"``,
    docs/bench-guide.md) is checked completely by
    :func:`knotsense.dsp.calibration_record.parse_record` (checksum, fields,
    models, and the device serial when the metadata names one).
    Also accepted, for older files: ``Calibration.to_dict()`` output
    (``{"channels": [model, ...]}``) or a dict wrapping one under
    ``"calibration"`` or ``"models"``. Models are per device channel (picked by
    ``channel_ids``) or per streamed channel.

    Returns None when there is no calibration. Raises CalibrationError when one
    is there but unusable.
    """
    record = metadata.get("calibration")
    if record is None:
        return None
    from knotsense.dsp.calibration_models import Calibration
    from knotsense.dsp.calibration_record import calibration_of, is_record, parse_record

    if is_record(record):
        info = metadata.get("device_info") or metadata.get("info")
        serial = info.get("serial_number") if isinstance(info, Mapping) else None
        calibration = calibration_of(parse_record(record, serial=serial or None))
        return _for_streamed(calibration, channel_ids, device_channels)
    if isinstance(record, Mapping) and "channels" not in record:
        for key in ("calibration", "models"):
            inner = record.get(key)
            if isinstance(inner, Mapping):
                record = inner
                break
            if isinstance(inner, list):
                record = {"channels": inner}
                break
    if not isinstance(record, Mapping):
        raise CalibrationError("calibration in the metadata is not a record")
    return _for_streamed(Calibration.from_dict(record), channel_ids, device_channels)


def _for_streamed(calibration: Any, channel_ids: Sequence[int], device_channels: int | None) -> Any:
    """The models of the streamed channels: all of them, or picked by device channel."""
    from knotsense.dsp.calibration_models import Calibration

    if calibration.channels == len(channel_ids):
        return calibration
    if calibration.channels == device_channels and max(channel_ids, default=0) < device_channels:
        return Calibration(tuple(calibration.models[i] for i in channel_ids))
    raise CalibrationError(
        f"calibration has {calibration.channels} channels; the session streams "
        f"{len(channel_ids)} (device has {device_channels})"
    )
