"""Live Lab Streaming Layer outlets: the Force stream and its event Markers, while recording.

LabRecorder (or any LSL inlet) sees two streams per device (their layout is
:mod:`knotsense.host.lab`'s, the same as in an exported XDF file):

* ``Force``: ``double64``, one channel per streamed sensor plus ``total``,
  newtons when calibrated, else counts; pushed in chunks of about
  ``chunk_s`` of data, each sample with its own timestamp.
* ``Markers``: JSON strings, each stamped when its event happened.

Clocks. A sample's timestamp is its host time on the recording's timeline
(the device clock mapped through :class:`~knotsense.host.clock.ClockMapper`,
with its drift correction and its gaps), moved onto LSL's clock by one
offset, ``local_clock() - host_clock()``, taken when the outlets open. So an
inlet sees the recording's timeline: ``timestamp - session_start_stream`` (in
the Force stream's ``desc/knotsense``) is the recording's ``t``. Against a
simulator running faster than real time the host clock is the simulator's,
and the timestamps run ahead of ``local_clock()`` just as the data does.

pylsl (the ``lsl`` extra) is imported only when outlets are opened.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from knotsense.errors import ConfigurationError
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

__all__ = ["LslOptions", "LslStreams", "import_pylsl"]


@dataclass(frozen=True)
class LslOptions:
    """How to publish: stream name and source id (default from the device serial), chunking.

    Attributes:
        name: Force stream name (the Markers stream adds " markers").
        source_id: Force stream source id, unique per device (Markers adds ":markers");
            LabRecorder uses it to pick a stream up again after a restart.
        chunk_s: data time gathered before a chunk is pushed (latency vs. overhead).
        max_buffered_s: how much data the outlet keeps for a slow inlet.
        wait_s: before streaming, wait up to this long for an inlet (LabRecorder)
            to connect to both outlets, so the recording has the session's start.
        linger_s: at the end, keep the outlets open up to this long while an
            inlet is still connected, so data still in flight reaches it (a
            simulator can run far ahead of the network). An inlet that has all
            the ``samples`` the ``session_end`` marker announces may disconnect
            to end the wait early.
    """

    name: str = ""
    source_id: str = ""
    chunk_s: float = 0.05
    max_buffered_s: int = 360
    wait_s: float = 0.0
    linger_s: float = 1.0

    def __post_init__(self) -> None:
        if not self.chunk_s >= 0:
            raise ConfigurationError(f"LSL chunk_s must be >= 0, got {self.chunk_s!r}")
        for name in ("wait_s", "linger_s"):
            value = getattr(self, name)
            if not value >= 0:
                raise ConfigurationError(f"LSL {name} must be >= 0, got {value!r}")
        if self.max_buffered_s < 1:
            raise ConfigurationError("LSL max_buffered_s must be >= 1")


def import_pylsl() -> Any:
    """pylsl, or a one-line ConfigurationError that says how to get it."""
    try:
        import pylsl
    except (ImportError, RuntimeError, OSError) as exc:
        raise ConfigurationError(
            f"LSL needs pylsl (and its liblsl): pip install 'knotsense[lsl]' ({exc})"
        ) from None
    return pylsl


def _fill(node: Any, element: ET.Element) -> None:
    """Copy an ElementTree description into a pylsl XMLElement."""
    for child in element:
        if len(child):
            _fill(node.append_child(child.tag), child)
        else:
            node.append_child_value(child.tag, child.text or "")


class LslStreams:
    """The two outlets of one session; see the module docstring for the clocks.

    Args:
        layout: the Force stream's layout; its ``session_start_unix`` is the
            recording's origin (``session_start_stream`` is filled in here).
        host_clock: the host clock the samples' host times are on (the
            transport's ``clock``).
        calibration: a dsp Calibration to turn counts into newtons (None: counts).
        hold_s: the release hold, to stamp ``release_reached``.
        options: names and chunking.
    """

    def __init__(
        self,
        layout: ForceLayout,
        host_clock: Callable[[], float],
        *,
        calibration: Any = None,
        hold_s: float = 60.0,
        options: LslOptions | None = None,
    ) -> None:
        pylsl = import_pylsl()
        self.options = options or LslOptions()
        self.offset = float(pylsl.local_clock()) - float(host_clock())
        """LSL seconds minus host seconds (fixed for the session)."""
        from dataclasses import replace

        self.layout = replace(
            layout,
            name=self.options.name or layout.name,
            source_id=self.options.source_id or layout.source_id,
            session_start_stream=layout.session_start_unix + self.offset,
        )
        self.calibration = calibration
        self.hold_s = hold_s
        lay = self.layout
        info = pylsl.StreamInfo(
            lay.stream_name,
            FORCE_TYPE,
            lay.channel_count,
            float(lay.rate_hz),
            "double64",
            lay.stream_source_id,
        )
        _fill(info.desc(), lay.force_desc())
        markers = pylsl.StreamInfo(
            lay.marker_name, MARKER_TYPE, 1, 0.0, "string", lay.marker_source_id
        )
        _fill(markers.desc(), lay.marker_desc())
        try:
            self._force = pylsl.StreamOutlet(info, 0, self.options.max_buffered_s)
            self._markers = pylsl.StreamOutlet(markers, 0, self.options.max_buffered_s)
        except (RuntimeError, OSError) as exc:
            raise ConfigurationError(f"cannot open LSL outlets: {exc}") from None
        self._period = 1.0 / lay.rate_hz if lay.rate_hz > 0 else 0.0
        self._stamps: list[np.ndarray] = []
        self._values: list[np.ndarray] = []
        self._buffered_from: float | None = None
        self._last: float | None = None
        self.samples_pushed = 0
        self.markers_pushed = 0
        self.closed = False

    @classmethod
    def for_session(
        cls,
        info: Any,
        stream_config: Any,
        pipeline_config: Any,
        *,
        start_unix: float,
        host_clock: Callable[[], float],
        metadata: dict[str, Any] | None = None,
        options: LslOptions | None = None,
    ) -> LslStreams:
        """Outlets for a live session, from DeviceInfo, StreamConfig and the PipelineConfig."""
        channel_ids = tuple(
            i for i in range(info.channel_count) if stream_config.channel_mask >> i & 1
        )
        positions = [(c.x_mm, c.y_mm) for c in info.channels]
        layout = ForceLayout(
            channel_ids=channel_ids,
            calibrated=pipeline_config.calibration is not None,
            rate_hz=float(stream_config.rate_hz),
            positions_mm=layout_channels(channel_ids, positions)
            if any(x or y for x, y in positions)
            else None,
            serial=info.serial_number,
            model=info.model,
            session_start_unix=start_unix,
            metadata=dict(metadata or {}),
        )
        return cls(
            layout,
            host_clock,
            calibration=pipeline_config.calibration,
            hold_s=pipeline_config.hold,
            options=options,
        )

    # --- samples ---------------------------------------------------------------

    def push_samples(self, host_s: np.ndarray, raw: np.ndarray) -> None:
        """Queue one block: per-sample host times (s) and raw counts ``(n, sensors)``."""
        t = np.asarray(host_s, dtype=np.float64)
        if t.size == 0 or self.closed:
            return
        if self._last is not None and t[0] <= self._last:
            # The live clock fit moved back a little: keep the stream increasing.
            t = t + (self._last - t[0] + (self._period or 1e-6))
        self._last = float(t[-1])
        x = np.asarray(raw)
        values = self.calibration.apply(x) if self.calibration is not None else x.astype(float)
        self._stamps.append(t + self.offset)
        self._values.append(np.column_stack([values, values.sum(axis=1)]))
        if self._buffered_from is None:
            self._buffered_from = float(t[0])
        if float(t[-1]) - self._buffered_from >= self.options.chunk_s:
            self.flush()

    def flush(self) -> None:
        """Push what is queued as one chunk."""
        if not self._stamps or self.closed:
            return
        stamps = np.concatenate(self._stamps)
        values = np.concatenate(self._values)
        self._stamps, self._values, self._buffered_from = [], [], None
        self._force.push_chunk(values, stamps.tolist())
        self.samples_pushed += int(stamps.size)

    # --- markers ---------------------------------------------------------------

    def push_marker(self, marker: Marker) -> None:
        """Push one marker; its ``t`` is s from session start."""
        if self.closed:
            return
        self._markers.push_sample([marker.text], self.layout.session_start_stream + marker.t)
        self.markers_pushed += 1

    def push_events(self, events: Iterable[Any], data_origin: float) -> None:
        """Markers for pipeline events whose data time 0 is host time *data_origin*."""
        shift = data_origin - self.layout.session_start_unix
        for marker in event_markers(events, self.hold_s, shift):
            self.push_marker(marker)

    def push_link(self, kind: str, at: float, detail: str = "") -> None:
        """``link_lost`` / ``link_restored`` at host time *at*."""
        self.flush()
        self.push_marker(link_marker(kind, at - self.layout.session_start_unix, detail))

    def push_gap(self, start_s: float, end_s: float, samples_lost: int, reason: str) -> None:
        """A gap between host times *start_s* and *end_s*."""
        self.flush()
        origin = self.layout.session_start_unix
        self.push_marker(gap_marker(start_s - origin, end_s - origin, samples_lost, reason))

    def have_consumers(self) -> bool:
        """True when an inlet (e.g. LabRecorder) is connected to both outlets."""
        return bool(self._force.have_consumers() and self._markers.have_consumers())

    def wait_for_consumers(self, timeout: float) -> bool:
        """Block up to *timeout* s until both outlets have an inlet; True if they do."""
        deadline = time.monotonic() + timeout
        for outlet in (self._force, self._markers):
            left = max(0.0, deadline - time.monotonic())
            if not outlet.wait_for_consumers(left):
                return False
        return True

    def close(self) -> None:
        """Push what is left, a ``session_end`` marker, linger, and close both outlets.

        Idempotent. ``session_end`` (at the last sample) says how many samples
        the Force outlet pushed, so an inlet can tell that it has them all.
        """
        if self.closed:
            return
        self.flush()
        end = self._last if self._last is not None else self.layout.session_start_unix
        t = end - self.layout.session_start_unix
        self.push_marker(
            Marker(t, {"event": "session_end", "t": round(t, 6), "samples": self.samples_pushed})
        )
        deadline = time.monotonic() + self.options.linger_s
        while time.monotonic() < deadline and (
            self._force.have_consumers() or self._markers.have_consumers()
        ):
            time.sleep(0.02)
        self.closed = True
        del self._force, self._markers
