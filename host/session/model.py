"""What a loaded recording holds: :class:`Session` and its timed messages and marks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from knotsense.host.gaps import Gap
from knotsense.host.recording import Damage
from knotsense.protocol import DeviceInfo

__all__ = ["Mark", "Session", "TimedMessage"]


@dataclass(frozen=True, slots=True)
class TimedMessage:
    """A decoded non-sample message with its times.

    Attributes:
        t_s: on the host-mapped timeline (from the message's device time when
            it has one, else the receive time), s from session start.
        host_s: host receive time, s from session start.
        message: the protocol message (DeviceEvent, Status, LogText ...).
    """

    t_s: float
    host_s: float
    message: Any


@dataclass(frozen=True, slots=True)
class Mark:
    """A host MARK record: host time (s from session start), kind and details."""

    t_s: float
    kind: str
    info: dict[str, Any]


@dataclass(frozen=True, eq=False)
class Session:
    """A decoded recording. Per-sample arrays share their first axis (n samples).

    Attributes:
        path: the recording.
        metadata: merged META records.
        framing: "stream" or "packet".
        start_unix: session start (unix s); ``t`` counts from here.
        device_info: DeviceInfo (rebuilt from the metadata or the stream), a dict
            when it cannot be rebuilt, or None.
        channel_ids: device channel numbers of the columns of ``raw``.
        channel_names: ``ch<i>`` per column.
        t: (n,) float64, s from session start, host-mapped timeline, increasing.
        device_time_us: (n,) int64, unwrapped device clock (monotonic over reboots).
        host_rx_s: (n,) float64, receive time of each sample's frame, s from start.
        epoch: (n,) int32, device boot the sample belongs to (0, 1, ...).
        raw: (n, channels) int32 counts as on the wire (0 where ``present`` is False).
        present: (n, channels) bool, or None when every channel is in every sample.
        forces: (n, channels) float64 N, or None without a calibration.
        calibration: the dsp Calibration applied, or None.
        calibration_error: why a calibration in the metadata could not be used.
        saturated_mask, fault_mask: (n,) uint8 per-sample channel masks from the blocks.
        gaps: missing samples, in time order.
        events, statuses, logs: timed DeviceEvents, Status and LogText messages.
        stream_configs: StreamConfigs seen (from messages and command responses).
        marks: host MARK records.
        decoder_stats: DecoderStats counters summed over the session's links.
        drift_ppm: estimated device clock error per epoch.
        damage: what the reader found wrong with the file.
    """

    path: Path
    metadata: dict[str, Any]
    framing: str
    start_unix: float
    device_info: DeviceInfo | dict[str, Any] | None
    channel_ids: tuple[int, ...]
    channel_names: tuple[str, ...]
    t: NDArray[np.float64]
    device_time_us: NDArray[np.int64]
    host_rx_s: NDArray[np.float64]
    epoch: NDArray[np.int32]
    raw: NDArray[np.int32]
    present: NDArray[np.bool_] | None
    forces: NDArray[np.float64] | None
    calibration: Any
    calibration_error: str | None
    saturated_mask: NDArray[np.uint8]
    fault_mask: NDArray[np.uint8]
    gaps: tuple[Gap, ...]
    events: tuple[TimedMessage, ...]
    statuses: tuple[TimedMessage, ...]
    logs: tuple[TimedMessage, ...]
    stream_configs: tuple[TimedMessage, ...]
    marks: tuple[Mark, ...]
    decoder_stats: dict[str, int]
    drift_ppm: tuple[float, ...]
    damage: Damage

    @property
    def n_samples(self) -> int:
        return int(self.t.size)

    @property
    def n_channels(self) -> int:
        return len(self.channel_ids)

    @property
    def duration_s(self) -> float:
        return float(self.t[-1] - self.t[0]) if self.t.size else 0.0

    @property
    def samples_lost(self) -> int:
        return sum(g.samples_lost for g in self.gaps)

    @property
    def calibrated(self) -> bool:
        return self.forces is not None

    def summary(self) -> dict[str, Any]:
        """A JSON-safe overview (sizes, times, gaps, link quality)."""
        rate = (self.n_samples - 1) / self.duration_s if self.duration_s > 0 else 0.0
        return {
            "path": str(self.path),
            "framing": self.framing,
            "start_time": self.metadata.get("start_time"),
            "duration_s": round(self.duration_s, 6),
            "samples": self.n_samples,
            "sample_rate_hz": round(rate, 3),
            "channels": list(self.channel_names),
            "calibrated": self.calibrated,
            "gaps": len(self.gaps),
            "samples_lost": self.samples_lost,
            "gap_reasons": sorted({g.reason for g in self.gaps}),
            "events": len(self.events),
            "drift_ppm": [round(d, 3) for d in self.drift_ppm],
            "decoder": self.decoder_stats,
            "damage": self.damage.as_dict(),
        }
