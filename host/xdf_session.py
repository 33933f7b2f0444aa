"""A recording as an XDF file, and the knotsense Force stream of any XDF file as a force table.

:func:`export_xdf` writes the two streams of :mod:`knotsense.host.lab` (Force
and Markers) from a decoded :class:`~knotsense.host.session.Session`. The
file has one clock, the recording's: timestamps are ``t`` (s from session
start, the host-mapped timeline with its gaps), so ``session_start_stream`` is
0 and the ClockOffsets are 0. Markers come from the same detectors
``knotsense analyze`` runs, plus the host's link marks and the session's gaps.

:func:`knotsense.host.tables.load_xdf` finds the knotsense Force stream in an XDF file (one
of ours, or one LabRecorder wrote beside EMG, video and other streams) and
puts it back on the session timeline: ``t = timestamp - session_start_stream``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from knotsense.host.lab import (
    FORCE_TYPE,
    MARKER_TYPE,
    ForceLayout,
    Marker,
    event_markers,
    gap_marker,
    layout_channels,
    link_marker,
)
from knotsense.host.recording import LINK_MARKS, MARK_LINK_LOST
from knotsense.host.session import Session
from knotsense.host.xdf import XdfWriter, stream_info_xml
from knotsense.protocol import DeviceInfo

__all__ = ["FORCE_STREAM_ID", "MARKER_STREAM_ID", "export_xdf", "layout_of", "session_markers"]

FORCE_STREAM_ID = 1
MARKER_STREAM_ID = 2
_SAMPLES_PER_CHUNK = 4096


def layout_of(session: Session, session_start_stream: float = 0.0) -> ForceLayout:
    """The Force stream layout of a decoded session."""
    info = session.device_info
    positions = None
    serial = model = ""
    if isinstance(info, DeviceInfo):
        serial, model = info.serial_number, info.model
        pos = [(c.x_mm, c.y_mm) for c in info.channels]
        if any(x or y for x, y in pos) and max(session.channel_ids, default=0) < len(pos):
            positions = layout_channels(session.channel_ids, pos)
    rate = session.summary()["sample_rate_hz"]
    if session.stream_configs:
        rate = float(getattr(session.stream_configs[-1].message, "rate_hz", rate))
    return ForceLayout(
        channel_ids=session.channel_ids,
        calibrated=session.forces is not None,
        rate_hz=float(rate),
        positions_mm=positions,
        serial=serial,
        model=model,
        session_start_unix=session.start_unix,
        session_start_stream=session_start_stream,
        metadata=dict(session.metadata),
    )


def session_markers(session: Session, config: Any = None) -> list[Marker]:
    """Markers of a recording: detector events (when calibrated), link marks and gaps, by time.

    Args:
        config: the dsp PipelineConfig for the detectors (default: DESIGN.md
            defaults, channel positions from the device; release detection
            needs its ``release_threshold``).
    """
    from dataclasses import replace

    from knotsense.dsp.pipeline import PipelineConfig, analyze

    markers: list[Marker] = []
    if session.forces is not None and session.n_samples:
        cfg = config or PipelineConfig()
        layout = layout_of(session)
        if cfg.positions is None and layout.positions_mm is not None:
            cfg = replace(cfg, positions=layout.positions_mm)
        result = analyze(session.t, session.forces, cfg)
        markers += event_markers((*result.onsets, *result.episodes), cfg.hold)
    for mark in session.marks:
        if mark.kind in LINK_MARKS:
            kind = "lost" if mark.kind == MARK_LINK_LOST else "restored"
            markers.append(link_marker(kind, mark.t_s, str(mark.info.get("detail", ""))))
    for gap in session.gaps:
        markers.append(gap_marker(gap.start_s, gap.end_s, gap.samples_lost, gap.reason))
    markers.sort(key=lambda m: m.t)
    return markers


def export_xdf(session: Session, path: str | os.PathLike[str], config: Any = None) -> int:
    """Write *session* as an XDF file (Force + Markers streams); returns the sample count.

    Written atomically (temporary file, then rename), like the CSV export.
    """
    from knotsense.host.export import _atomic

    layout = layout_of(session)
    markers = session_markers(session, config)
    values = session.forces if session.forces is not None else session.raw.astype(np.float64)
    if session.forces is None and session.present is not None:
        values = np.where(session.present, values, np.nan)
    table = np.column_stack([values, values.sum(axis=1)]) if session.n_samples else None
    with _atomic(Path(path), "wb") as (fh, _):
        writer = XdfWriter(fh)
        writer.add_stream(FORCE_STREAM_ID, force_info_xml(layout, session.start_unix))
        writer.add_stream(MARKER_STREAM_ID, marker_info_xml(layout, session.start_unix))
        t = session.t
        if table is not None:
            writer.clock_offset(FORCE_STREAM_ID, float(t[0]), 0.0)
            writer.clock_offset(MARKER_STREAM_ID, float(t[0]), 0.0)
        for a in range(0, session.n_samples, _SAMPLES_PER_CHUNK):
            b = a + _SAMPLES_PER_CHUNK
            writer.samples(FORCE_STREAM_ID, t[a:b], table[a:b])  # type: ignore[index]
        if markers:
            writer.samples(MARKER_STREAM_ID, [m.t for m in markers], [[m.text] for m in markers])
        if table is not None:
            writer.clock_offset(FORCE_STREAM_ID, float(t[-1]), 0.0)
            writer.clock_offset(MARKER_STREAM_ID, float(t[-1]), 0.0)
        writer.close()
    return session.n_samples


def force_info_xml(layout: ForceLayout, created_at: float = 0.0) -> str:
    """The Force stream's StreamHeader ``<info>`` (same fields as the live LSL outlet)."""
    return stream_info_xml(
        name=layout.stream_name,
        type=FORCE_TYPE,
        channel_count=layout.channel_count,
        nominal_srate=layout.rate_hz,
        channel_format="double64",
        source_id=layout.stream_source_id,
        desc=layout.force_desc(),
        created_at=created_at,
    )


def marker_info_xml(layout: ForceLayout, created_at: float = 0.0) -> str:
    """The Markers stream's StreamHeader ``<info>``."""
    return stream_info_xml(
        name=layout.marker_name,
        type=MARKER_TYPE,
        channel_count=1,
        nominal_srate=0.0,
        channel_format="string",
        source_id=layout.marker_source_id,
        desc=layout.marker_desc(),
        created_at=created_at,
    )
