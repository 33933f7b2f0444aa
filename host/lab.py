"""What knotsense looks like to a lab: the Force stream's layout and the event markers.

Lab Streaming Layer (LSL) outlets (:mod:`knotsense.host.lsl`) and XDF files
(:mod:`knotsense.host.xdf_session`) carry the same two streams, described here
once so that a live outlet recorded by LabRecorder and an exported recording
look alike to any XDF reader:

* ``Force``: one channel per streamed sensor plus ``total``, in newtons when a
  calibration is known, else raw counts; the stream description follows the
  XDF meta-data conventions (``desc/channels/channel`` with ``label``,
  ``unit``, ``type`` and ``location`` in millimetres, ``desc/acquisition``)
  and adds ``desc/knotsense`` with the session origin, so a reader can put
  the samples back on the recording's timeline (s from session start).
* ``Markers``: one string channel, irregular rate; each sample is a JSON
  object (``{"event": ..., ...}``) stamped at the moment the event happened
  on the data timeline, not when it was detected (see :func:`event_markers`).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from knotsense.dsp.detectors import Episode, Onset

__all__ = [
    "FORCE_TYPE",
    "MARKER_TYPE",
    "ForceLayout",
    "Marker",
    "event_markers",
    "gap_marker",
    "link_marker",
]

FORCE_TYPE = "Force"
MARKER_TYPE = "Markers"
TOTAL_LABEL = "total"
UNIT_NEWTONS = "newtons"
UNIT_COUNTS = "counts"


@dataclass(frozen=True)
class ForceLayout:
    """The Force stream of one session: channels, unit, positions, names and time origin.

    Attributes:
        channel_ids: device channel numbers of the sensor columns.
        calibrated: values in newtons (True) or raw counts (False).
        rate_hz: nominal sample rate (0 when unknown).
        positions_mm: (x, y) per sensor column, or None when the device reports none.
        serial: device serial number ("" when unknown).
        model: device model name.
        name: LSL/XDF stream name of the Force stream (the Markers stream adds " markers").
        source_id: unique id of the Force stream (the Markers stream adds ":markers").
        session_start_unix: session start (unix s), the origin of the recording's ``t``.
        session_start_stream: the same instant on the streams' clock (LSL
            ``local_clock()`` live; 0 in an exported file, whose timestamps
            are ``t`` itself).
        metadata: extra session metadata to store as JSON in ``desc/knotsense``.
    """

    channel_ids: tuple[int, ...]
    calibrated: bool
    rate_hz: float
    positions_mm: tuple[tuple[float, float], ...] | None = None
    serial: str = ""
    model: str = ""
    name: str = ""
    source_id: str = ""
    session_start_unix: float = 0.0
    session_start_stream: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def stream_name(self) -> str:
        return self.name or f"knotsense {self.serial or 'device'}"

    @property
    def stream_source_id(self) -> str:
        return self.source_id or f"knotsense:{self.serial or 'device'}:force"

    @property
    def marker_name(self) -> str:
        return f"{self.stream_name} markers"

    @property
    def marker_source_id(self) -> str:
        return f"{self.stream_source_id}:markers"

    @property
    def unit(self) -> str:
        return UNIT_NEWTONS if self.calibrated else UNIT_COUNTS

    @property
    def labels(self) -> tuple[str, ...]:
        """Sensor labels (``f0..`` in newtons, ``raw0..`` in counts, as the CSV export) + total."""
        prefix = "f" if self.calibrated else "raw"
        return (*(f"{prefix}{i}" for i in range(len(self.channel_ids))), TOTAL_LABEL)

    @property
    def channel_count(self) -> int:
        return len(self.channel_ids) + 1

    def force_desc(self) -> ET.Element:
        """The Force stream's ``<desc>`` element (XDF meta-data conventions + knotsense)."""
        desc = ET.Element("desc")
        channels = ET.SubElement(desc, "channels")
        for k, label in enumerate(self.labels):
            ch = ET.SubElement(channels, "channel")
            _text(ch, "label", label)
            _text(ch, "unit", self.unit)
            _text(ch, "type", FORCE_TYPE)
            if k < len(self.channel_ids):
                _text(ch, "device_channel", str(self.channel_ids[k]))
                if self.positions_mm is not None:
                    loc = ET.SubElement(ch, "location")
                    x, y = self.positions_mm[k]
                    _text(loc, "X", repr(float(x)))
                    _text(loc, "Y", repr(float(y)))
                    _text(loc, "Z", "0.0")
        acq = ET.SubElement(desc, "acquisition")
        _text(acq, "manufacturer", "knotsense")
        _text(acq, "model", self.model)
        _text(acq, "serial_number", self.serial)
        _text(desc, "location_unit", "millimeters")
        ks = ET.SubElement(desc, "knotsense")
        _text(ks, "session_start_unix", repr(float(self.session_start_unix)))
        _text(ks, "session_start_stream", repr(float(self.session_start_stream)))
        _text(ks, "metadata", json.dumps(self.metadata, separators=(",", ":"), allow_nan=False))
        return desc

    def marker_desc(self) -> ET.Element:
        """The Markers stream's ``<desc>``: what its strings are and which Force stream."""
        desc = ET.Element("desc")
        channels = ET.SubElement(desc, "channels")
        ch = ET.SubElement(channels, "channel")
        _text(ch, "label", "event")
        _text(ch, "type", "json")
        ks = ET.SubElement(desc, "knotsense")
        _text(ks, "force_source_id", self.stream_source_id)
        _text(ks, "session_start_stream", repr(float(self.session_start_stream)))
        return desc


def _text(parent: ET.Element, tag: str, value: str) -> ET.Element:
    child = ET.SubElement(parent, tag)
    child.text = value
    return child


@dataclass(frozen=True)
class Marker:
    """One Markers sample: when it happened (s from session start) and its JSON payload."""

    t: float
    payload: dict[str, Any]

    @property
    def text(self) -> str:
        return json.dumps(self.payload, separators=(",", ":"), allow_nan=False)


def event_markers(events: Iterable[Any], hold_s: float, shift: float = 0.0) -> list[Marker]:
    """Markers for detector events, stamped when the event happened.

    Event times are data times *d*; markers (their ``t`` and the times in their
    payload) are on the session timeline, ``d + shift`` s from session start.

    * an onset of kind ``release`` is ``release_reached``, stamped when the running
      hold reached *hold_s* (``start + hold_s``);
    * any other onset is ``<kind>_onset`` (contact, rocking, overpressure, circling
      ...), stamped at its ``start``;
    * a closed episode is ``<kind>_episode`` with its figures (start, end,
      duration, ...), stamped at its ``end``.

    Every payload carries ``detected_at`` too, so the detection latency stays visible.
    """
    out: list[Marker] = []
    for event in events:
        if isinstance(event, Onset):
            if event.kind == "release":
                when = event.start + hold_s
                body = {"event": "release_reached", **event.to_dict(), "hold_s": hold_s}
            else:
                when = event.start
                body = {"event": f"{event.kind}_onset", **event.to_dict()}
        elif isinstance(event, Episode):
            when = event.end
            body = {"event": f"{event.kind}_episode", **event.to_dict()}
            body["detected_at"] = event.detected_at
        else:
            continue
        for key in ("start", "end", "detected_at"):
            if key in body:
                body[key] = round(float(body[key]) + shift, 4)
        out.append(Marker(shift + float(when), body))
    return out


def link_marker(kind: str, t: float, detail: str = "") -> Marker:
    """``link_lost`` / ``link_restored`` (or ``link_<kind>``) at time *t* (s from session start)."""
    name = {"lost": "link_lost", "restored": "link_restored"}.get(kind, f"link_{kind}")
    return Marker(t, {"event": name, "t": round(t, 6), "detail": detail})


def gap_marker(start_s: float, end_s: float, samples_lost: int, reason: str) -> Marker:
    """A ``gap`` (samples that never arrived), at the first missing one (s from session start)."""
    return Marker(
        start_s,
        {
            "event": "gap",
            "t": round(start_s, 6),
            "duration_s": round(end_s - start_s, 6),
            "samples_lost": int(samples_lost),
            "reason": reason,
        },
    )


def layout_channels(
    channel_ids: Sequence[int], positions: Sequence[tuple[float, float]] | None
) -> tuple[tuple[float, float], ...] | None:
    """Positions of *channel_ids* from all device positions (None when none are known)."""
    if positions is None:
        return None
    return tuple((float(positions[i][0]), float(positions[i][1])) for i in channel_ids)
