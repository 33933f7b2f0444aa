"""What a recording or a CSV table holds, for ``knotsense info FILE``.

The recording is decoded with :func:`knotsense.host.session.load_session`, the
same reader ``export`` and ``analyze`` use, so ``info`` shows what they will
see: the device and firmware that made it, the calibration it carries, its
duration and rate, channels, gaps, device events and host marks.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

LISTED = 10
"""Gaps, events and marks listed one per line in the text view (all are in ``--json``)."""


def _name(value: Any) -> Any:
    return getattr(value, "name", value)


def _device(info: Any) -> dict[str, Any] | None:
    """The recorded DeviceInfo as JSON (or the metadata dict it could not be rebuilt from)."""
    from knotsense.host.recording import jsonable

    if info is None:
        return None
    if isinstance(info, dict):
        return jsonable(info)
    return {
        "model": info.model,
        "serial_number": info.serial_number,
        "firmware": info.firmware,
        "hw_revision": info.hw_revision,
        "protocol": f"{info.protocol_major}.{info.protocol_minor}",
        "adc_bits": info.adc_bits,
        "units": _name(info.units),
        "sample_rates": list(info.sample_rates),
        "calibration_id": info.calibration_id,
    }


def _calibration(session: Any) -> dict[str, Any]:
    """Where the forces come from: the record in the metadata, its models, or why none."""
    record = session.metadata.get("calibration")
    info = session.device_info
    device_id = getattr(info, "calibration_id", None)
    out: dict[str, Any] = {
        "in_recording": record is not None,
        "applied": session.calibration is not None,
        "error": session.calibration_error,
        "device_calibration_id": device_id or None,
        "models": [],
    }
    if session.calibration is not None:
        out["models"] = [m.kind for m in session.calibration.models]
    if isinstance(record, dict) and record.get("format") == "knotsense-calibration":
        device = record.get("device") if isinstance(record.get("device"), dict) else {}
        out.update(
            serial=device.get("serial"),
            sensor=device.get("sensor"),
            date=record.get("date"),
            verdict=record.get("verdict"),
            checksum=record.get("checksum"),
        )
    return out


def _stream_rate(session: Any) -> float | None:
    configs = [m.message for m in session.stream_configs]
    if configs:
        return float(configs[-1].rate_hz)
    config = session.metadata.get("stream_config")
    rate = config.get("rate_hz") if isinstance(config, dict) else None
    return float(rate) if isinstance(rate, int | float) else None


def _channels(session: Any) -> list[dict[str, Any]]:
    infos = getattr(session.device_info, "channels", ())
    out = []
    for name, cid in zip(session.channel_names, session.channel_ids, strict=True):
        ch: dict[str, Any] = {"name": name, "device_channel": cid}
        if cid < len(infos):
            ch.update(kind=_name(infos[cid].kind), x_mm=infos[cid].x_mm, y_mm=infos[cid].y_mm)
        out.append(ch)
    return out


def _event(item: Any) -> dict[str, Any]:
    msg = item.message
    return {
        "t_s": round(item.t_s, 6),
        "code": str(_name(msg.code)),
        "arg": msg.arg,
        "value": msg.value,
    }


def _median_rate(t: Any) -> float | None:
    """Samples per second between neighbours (the median step: gaps do not pull it down)."""
    steps = np.diff(t)
    median = float(np.median(steps)) if steps.size else 0.0
    return round(1.0 / median, 3) if median > 0 else None


def recording_info(path: Path, *, salvage: bool = False) -> dict[str, Any]:
    """A JSON-safe account of the recording at *path* (raises SessionFileError if unreadable)."""
    from knotsense.host.recording import jsonable
    from knotsense.host.session import load_session

    session = load_session(path, salvage=salvage)
    summary = session.summary()
    meta = session.metadata
    return {
        "kind": "recording",
        "path": str(path),
        "format": meta.get("format"),
        "framing": session.framing,
        "start_time": meta.get("start_time"),
        "device_url": meta.get("device_url"),
        "recorded_with": meta.get("knotsense"),
        "device": _device(session.device_info),
        "calibration": _calibration(session),
        "duration_s": summary["duration_s"],
        "samples": session.n_samples,
        "sample_rate_hz": _median_rate(session.t),
        "stream_rate_hz": _stream_rate(session),
        "channels": _channels(session),
        "gaps": [
            {
                "start_s": round(g.start_s, 6),
                "end_s": round(g.end_s, 6),
                "samples_lost": g.samples_lost,
                "reason": g.reason,
            }
            for g in session.gaps
        ],
        "samples_lost": session.samples_lost,
        "events": [_event(e) for e in session.events],
        "marks": [{"t_s": round(m.t_s, 6), "kind": m.kind, "info": m.info} for m in session.marks],
        "statuses": len(session.statuses),
        "logs": len(session.logs),
        "link": session.decoder_stats,
        "drift_ppm": summary["drift_ppm"],
        "damage": jsonable(session.damage.as_dict()),
    }


def table_info(path: Path) -> dict[str, Any]:
    """A JSON-safe account of a CSV table (``t``, forces, ``raw*``), as analyze reads it."""
    from knotsense.host.tables import load_csv

    table = load_csv(path)
    t = table.t
    duration = float(t[-1] - t[0])
    steps = np.diff(t)
    rate = _median_rate(t)
    jumps = int(np.count_nonzero(steps * rate > 1.5)) if rate else 0
    return {
        "kind": "table",
        "path": str(path),
        "rows": int(t.size),
        "duration_s": round(duration, 6),
        "sample_rate_hz": rate,
        "force_columns": list(table.names),
        "raw_columns": list(table.raw_names),
        "missing_values": int(np.count_nonzero(np.isnan(table.forces)))
        + (int(np.count_nonzero(np.isnan(table.raw))) if table.raw is not None else 0),
        "time_jumps": jumps,
    }


# --- text ---------------------------------------------------------------------------


def _listed(lines: list[str], items: list[str], what: str) -> None:
    lines.extend(f"    {item}" for item in items[:LISTED])
    if len(items) > LISTED:
        lines.append(f"    ... {len(items) - LISTED} more {what} (all of them with --json)")


def _calibration_text(cal: dict[str, Any]) -> str:
    device_id = cal["device_calibration_id"]
    on_device = f"; device id {device_id:#010x}" if device_id else ""
    if not cal["in_recording"]:
        return f"none in the recording (raw counts only){on_device}"
    if cal["error"]:
        return f"in the recording but not usable: {cal['error']}{on_device}"
    kinds = ", ".join(f"{k} x{n}" for k, n in Counter(cal["models"]).items())
    text = f"applied: {len(cal['models'])} channel(s), {kinds}"
    if cal.get("serial") is not None:
        text += f"; record for {cal['serial']} ({cal['sensor']}), {cal['verdict']}, {cal['date']}"
    return text + on_device


def recording_text(d: dict[str, Any]) -> str:
    """The account of :func:`recording_info` as a person reads it."""
    dev = d["device"]
    damage = d["damage"]
    state = "closed cleanly" if damage.get("clean_close") else "not closed cleanly"
    if damage.get("torn_tail_offset") is not None:
        state += f", torn tail of {damage['torn_tail_bytes']} bytes ignored"
    if damage.get("skipped"):
        state += f", salvage skipped {damage['skipped_bytes']} corrupt bytes"
    lines = [
        f"recording    {d['path']} ({d['format'] or 'knotsense-recording'}, "
        f"{d['framing']} framing, {state})",
        f"started      {d['start_time'] or 'unknown'} from {d['device_url'] or 'unknown device'}",
    ]
    if dev is None:
        lines.append("device       unknown (no device info in the recording)")
    elif "serial_number" in dev and "firmware" in dev:
        lines.append(f"device       {dev['model'] or 'KnotSense'} serial {dev['serial_number']}")
        lines.append(
            f"firmware     {dev['firmware']}  hardware rev {dev['hw_revision']}  "
            f"protocol {dev['protocol']}"
        )
    else:
        lines.append(f"device       {dev}")
    lines.append(f"calibration  {_calibration_text(d['calibration'])}")
    lines.append(f"duration     {d['duration_s']:.1f} s, {d['samples']} samples")
    configured = d["stream_rate_hz"]
    rate = f"{configured:g} Hz configured, " if configured is not None else ""
    measured = d["sample_rate_hz"]
    lines.append(
        f"rate         {rate}"
        + (f"{measured:g} Hz measured" if measured else "not measurable (one sample)")
    )
    chans = ", ".join(
        f"{c['name']} {c.get('kind', '?')} @({c['x_mm']:g},{c['y_mm']:g}) mm"
        if "x_mm" in c
        else c["name"]
        for c in d["channels"]
    )
    lines.append(f"channels     {len(d['channels'])}: {chans or 'none'}")
    lines.append(f"gaps         {len(d['gaps'])} ({d['samples_lost']} sample(s) lost)")
    _listed(
        lines,
        [
            f"{g['start_s']:9.3f} - {g['end_s']:9.3f} s  {g['reason']:<11} "
            f"{g['samples_lost']} sample(s)"
            for g in d["gaps"]
        ],
        "gaps",
    )
    counts = Counter(e["code"] for e in d["events"])
    by_code = ", ".join(f"{code} x{n}" for code, n in counts.items())
    lines.append(f"events       {len(d['events'])}" + (f": {by_code}" if by_code else ""))
    _listed(lines, [f"{e['t_s']:9.3f} s  {e['code']}" for e in d["events"]], "events")
    lines.append(f"marks        {len(d['marks'])}")
    _listed(lines, [f"{m['t_s']:9.3f} s  {m['kind']}" for m in d["marks"]], "marks")
    link = d["link"]
    lines.append(
        f"link         {link.get('frames', 0)} frames, {link.get('crc_errors', 0)} crc errors, "
        f"{link.get('frames_lost', 0)} frames lost"
    )
    return "\n".join(lines)


def table_text(d: dict[str, Any]) -> str:
    """The account of :func:`table_info` as a person reads it."""
    rate = f"~{d['sample_rate_hz']:g} Hz" if d["sample_rate_hz"] else "one row"
    return "\n".join(
        [
            f"table        {d['path']} (CSV, no session metadata)",
            f"duration     {d['duration_s']:.1f} s, {d['rows']} rows at {rate}, "
            f"{d['time_jumps']} jump(s) in t",
            f"forces       {', '.join(d['force_columns']) or 'none'}",
            f"raw          {', '.join(d['raw_columns']) or 'none'}",
            f"missing      {d['missing_values']} value(s)",
        ]
    )
