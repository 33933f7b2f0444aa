"""One session analysed: a ``sessions`` row and its ``events`` rows, plain Python values.

This is the unit of work of a batch (it runs on a Dask worker) and what
``knotsense analyze --json`` prints for the same file, so both agree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knotsense.errors import SessionFileError
from knotsense.host.analysis_options import AnalysisOptions
from knotsense.study.sources import session_id

__all__ = ["SessionResult", "analyse_source", "load_and_analyse"]

# Figures an event may carry; everything else an event says goes to `detail` (JSON).
EVENT_FIGURES = {
    "mean_force": "mean_force_n",
    "peak_force": "peak_force_n",
    "frequency": "frequency_hz",
    "cycles": "cycles",
    "peak_to_peak": "peak_to_peak_n",
}


@dataclass(frozen=True)
class SessionResult:
    """What a batch stores for one session.

    Attributes:
        session_id: content id of the file (:func:`~knotsense.study.sources.session_id`).
        session: the ``sessions`` row (docs/study.md lists the columns and units).
        events: the ``events`` rows, by start.
        analysis: ``analyze --json``'s object for the file.
    """

    session_id: str
    session: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    analysis: dict[str, Any] = field(default_factory=dict)


def device_fields(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Device and calibration identity of a session, from its metadata (sessions columns)."""
    info = meta.get("device_info")
    info = info if isinstance(info, Mapping) else {}
    firmware = info.get("firmware_version")
    if isinstance(firmware, list | tuple):
        firmware = ".".join(str(v) for v in firmware)
    cal = meta.get("calibration")
    cal = cal if isinstance(cal, Mapping) else {}
    cal_device = cal.get("device") if isinstance(cal.get("device"), Mapping) else {}
    return {
        "device_serial": str(info.get("serial_number") or cal_device.get("serial") or "unknown"),
        "device_model": info.get("model") or cal_device.get("model") or None,
        "firmware": firmware or None,
        "sensor": cal_device.get("sensor") or None,
        "calibration_checksum": cal.get("checksum") or None,
        "calibration_date": cal.get("date") or None,
        "calibration_verdict": cal.get("verdict") or None,
    }


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _event_row(sid: str, serial: str, event: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "session_id": sid,
        "device_serial": serial,
        "kind": event["kind"],
        "start_s": float(event["start"]),
        "end_s": float(event["end"]),
        "duration_s": float(event["duration"]),
        "detected_at_s": float(event["detected_at"]),
    }
    for key, column in EVENT_FIGURES.items():
        value = event.get(key)
        row[column] = None if value is None else _finite(value)
    extra = {
        k: v
        for k, v in event.items()
        if k not in EVENT_FIGURES and k not in {"kind", "start", "end", "duration", "detected_at"}
    }
    row["detail"] = json.dumps(extra, sort_keys=True) if extra else None
    return row


def load_and_analyse(
    path: str | Path, options: AnalysisOptions | None = None
) -> tuple[Any, Any, Any]:
    """Load a session file and run the pipeline over it: ``(table, config, Analysis)``.

    Raises:
        KnotsenseError: the file cannot be read or analysed (a one-line reason).
    """
    from knotsense.dsp.pipeline import analyze
    from knotsense.host.tables import load_force_table

    path = Path(path)
    table = load_force_table(path)
    if table.forces.shape[1] == 0:
        raise SessionFileError(f"{path}: uncalibrated recording (counts only): nothing in N")
    config = (options or AnalysisOptions()).config(dict(table.meta), source=str(path))
    return table, config, analyze(table.t, table.forces, config)


def analyse_source(path: str | Path, options: AnalysisOptions | None = None) -> SessionResult:
    """Load *path* (any session file type), analyse it and build its rows.

    Raises:
        KnotsenseError: the file cannot be read or analysed (a one-line reason).
    """
    path = Path(path)
    table, config, analysis = load_and_analyse(path, options)
    meta = dict(table.meta)
    result = analysis.to_dict()
    sid = session_id(path)
    device = device_fields(meta)
    s = result["summary"]
    rel, rock, over, q = s["releases"], s["rocking"], s["overpressure"], s["signal_quality"]
    circling = s.get("circling")
    row: dict[str, Any] = {
        "session_id": sid,
        "source": str(path),
        "file_type": path.suffix.lstrip(".").lower(),
        **device,
        "start_time": meta.get("start_time"),
        "channels": int(table.forces.shape[1]),
        "duration_s": float(s["duration_s"]),
        "samples": int(q["samples"]),
        "sample_rate_hz": float(q["sample_rate_hz"]),
        "release_threshold_n": float(config.release_threshold),
        "hold_s": float(config.hold),
        "gap_s": float(config.gap),
        "max_force_n": config.max_force,
        "contacts": int(s["contacts"]["count"]),
        "contact_time_s": float(s["contacts"]["time_s"]),
        "releases": int(rel["count"]),
        "release_hold_times_s": [float(v) for v in rel["hold_times_s"]],
        "release_time_s": float(sum(rel["hold_times_s"])),
        "longest_release_s": float(rel["longest_s"]),
        "mean_release_force_n": rel["mean_force_n"],
        "time_in_band_s": float(s["time_in_release_band_s"]),
        "rocking_episodes": int(rock["count"]),
        "rocking_time_s": float(rock["time_s"]),
        "circling_episodes": None if not isinstance(circling, Mapping) else circling.get("count"),
        "overpressure_episodes": int(over["count"]),
        "overpressure_time_s": float(over["time_s"]),
        "gaps": int(q["gaps"]),
        "gap_time_s": float(q["gap_time_s"]),
        "spikes_removed": int(q["spikes_removed"]),
        "nan_samples": int(q["nan_samples"]),
        "saturated_samples": int(q["saturated_samples"]),
    }
    events = [_event_row(sid, row["device_serial"], e) for e in result["events"]]
    return SessionResult(sid, row, events, result)
