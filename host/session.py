"""A recording decoded: samples on one timeline, gaps, events, status, for export and analysis.

:func:`load_session` runs a recording's RX records through the same protocol
decoder a live device uses (StreamDecoder for byte-stream links, PacketDecoder
for packet links), one record at a time so every frame carries the host time
at which it was received, and builds a :class:`Session`:

* **device time**: each block's u32 microsecond stamp is unwrapped. Wraps are
  counted with help from the host receive times (so even a link outage longer
  than half the 71.6-minute wrap period is unwrapped right). A device reboot
  (a BOOT event, or a device clock that disagrees with the host clock by more
  than :data:`REBOOT_TOLERANCE_S`) starts a new *epoch*; ``device_time_us``
  stays monotonic across epochs (the new epoch continues after the old one by
  the host-measured time between them) and ``epoch`` says which boot a sample
  belongs to.
* **host timeline**: per epoch, device time is mapped to host time with
  :class:`~knotsense.host.clock.ClockMapper` (a line through the lower envelope
  of ``host_rx - device_t``; receive latency is only ever positive), so crystal
  drift of tens of ppm does not accumulate. ``t`` is seconds from the session
  start (metadata ``start_unix``).
* **gaps**: every discontinuity in ``sample_index`` (or device time) becomes a
  :class:`Gap` with a reason -- never silently bridged.
* **forces**: raw counts times the calibration in the metadata (or mN / 1000
  when the device reports millinewtons).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from knotsense.errors import CalibrationError, MessageError
from knotsense.host.clock import ClockMapper
from knotsense.host.recording import (
    LINK_MARKS,
    Damage,
    MarkRecord,
    MetaRecord,
    RxRecord,
    SessionReader,
)
from knotsense.protocol import (
    BlockFlags,
    ChannelInfo,
    DecodedFrame,
    DeviceEvent,
    DeviceInfo,
    EventCode,
    LogText,
    Opcode,
    PacketDecoder,
    Response,
    SampleBlock,
    SampleUnit,
    SensorKind,
    Status,
    StatusCode,
    StreamConfig,
    StreamDecoder,
)

__all__ = [
    "REBOOT_TOLERANCE_S",
    "Gap",
    "Mark",
    "Session",
    "TimedMessage",
    "calibration_from_metadata",
    "device_info_from_dict",
    "load_session",
]

WRAP = 1 << 32
HALF_WRAP = 1 << 31
REBOOT_TOLERANCE_S = 5.0
"""Device time running ahead of host time by more than this (plus 0.1 %) means a reboot."""

GapReason = Literal["link", "overflow", "frames_lost", "reboot", "stopped"]


@dataclass(frozen=True, slots=True)
class Gap:
    """Samples missing between two received ones.

    Attributes:
        start_s: where the first missing sample would have been (s from session start).
        end_s: time of the first sample after the gap.
        samples_lost: how many samples are missing (from ``sample_index`` when it
            is trustworthy, else estimated from the times).
        reason: ``reboot`` (device restarted), ``link`` (the host marked a link
            loss/reconnect), ``overflow`` (the device's buffer overflowed,
            OVERFLOW_BEFORE), ``frames_lost`` (frames missing on the link), or
            ``stopped`` (the stream was stopped and restarted).
    """

    start_s: float
    end_s: float
    samples_lost: int
    reason: GapReason

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


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


# --- metadata helpers -------------------------------------------------------------


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

    The one place that knows the calibration record's layout in a recording.
    The record is knotsense.calibration's (``"format": "knotsense-calibration"``,
    docs/bench-guide.md): its ``channels`` hold one ``{"model": {...}}`` per
    device channel, and its ``checksum`` (sha256 of the canonical JSON of the
    rest) is checked here, as is the device serial when the metadata names one.
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

    if isinstance(record, Mapping) and record.get("format") == "knotsense-calibration":
        import hashlib
        import json

        if record.get("schema_version") != 1:
            raise CalibrationError(
                f"calibration record schema {record.get('schema_version')!r} is not supported"
            )
        body = {k: v for k, v in record.items() if k != "checksum"}
        try:
            digest = hashlib.sha256(
                json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
            ).hexdigest()
        except (TypeError, ValueError) as exc:
            raise CalibrationError(f"calibration record is not serialisable: {exc}") from None
        if record.get("checksum") != "sha256:" + digest:
            raise CalibrationError("calibration record checksum mismatch (corrupted or edited)")
        device = record.get("device") if isinstance(record.get("device"), Mapping) else {}
        info = metadata.get("device_info") or metadata.get("info")
        serial = info.get("serial_number") if isinstance(info, Mapping) else None
        if serial and device.get("serial") and device.get("serial") != serial:
            raise CalibrationError(
                f"calibration record is for device {device.get('serial')}, not {serial}"
            )
        channels = record.get("channels")
        if not isinstance(channels, list) or not all(
            isinstance(c, Mapping) and isinstance(c.get("model"), Mapping) for c in channels
        ):
            raise CalibrationError("calibration record has no per-channel models")
        record = {"channels": [c["model"] for c in channels]}
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
    calibration = Calibration.from_dict(record)
    if calibration.channels == len(channel_ids):
        return calibration
    if calibration.channels == device_channels and max(channel_ids, default=0) < device_channels:
        return Calibration(tuple(calibration.models[i] for i in channel_ids))
    raise CalibrationError(
        f"calibration has {calibration.channels} channels; the session streams "
        f"{len(channel_ids)} (device has {device_channels})"
    )


# --- decoding -------------------------------------------------------------------


class _Blocks:
    """Sample blocks as decoded, column-wise, grouped by sample layout."""

    def __init__(self) -> None:
        self.frame: list[int] = []
        self.host: list[float] = []
        self.t_first: list[int] = []
        self.index: list[int] = []
        self.period: list[int] = []
        self.n: list[int] = []
        self.flags: list[int] = []
        self.sat: list[int] = []
        self.fault: list[int] = []
        self.mask: list[int] = []
        # (n, mask) -> [block ids], [sample arrays (b, n, c)]
        self.groups: dict[tuple[int, int], tuple[list[int], list[np.ndarray]]] = {}

    def add_block(self, frame: int, host: float, block: SampleBlock) -> None:
        bid = len(self.frame)
        self.frame.append(frame)
        self.host.append(host)
        self.t_first.append(block.t_first_us)
        self.index.append(block.sample_index)
        self.period.append(block.period_ns)
        n = block.n_samples
        self.n.append(n)
        self.flags.append(int(block.flags))
        self.sat.append(block.saturated_mask)
        self.fault.append(block.fault_mask)
        self.mask.append(block.channel_mask)
        ids, arrays = self.groups.setdefault((n, block.channel_mask), ([], []))
        ids.append(bid)
        arrays.append(block.samples[None])

    def add_columns(self, base: int, host: float, cols: Any) -> None:
        count = int(cols.position.size)
        first = len(self.frame)
        self.frame.extend((cols.position + base).tolist())
        self.host.extend([host] * count)
        self.t_first.extend(cols.t_first_us.tolist())
        self.index.extend(cols.sample_index.tolist())
        self.period.extend(cols.period_ns.tolist())
        n = int(cols.samples.shape[1])
        self.n.extend([n] * count)
        self.flags.extend(cols.flags.tolist())
        self.sat.extend(cols.saturated_mask.tolist())
        self.fault.extend(cols.fault_mask.tolist())
        self.mask.extend([cols.channel_mask] * count)
        ids, arrays = self.groups.setdefault((n, cols.channel_mask), ([], []))
        ids.extend(range(first, first + count))
        arrays.append(cols.samples)


@dataclass
class _Collected:
    blocks: _Blocks = field(default_factory=_Blocks)
    lost_at: list[int] = field(default_factory=list)  # frame index of frames with lost_before
    lost_n: list[int] = field(default_factory=list)
    boots: list[int] = field(default_factory=list)  # frame indices of BOOT events
    links: list[int] = field(default_factory=list)  # frame count at each link mark
    events: list[tuple[int, float, Any]] = field(default_factory=list)
    statuses: list[tuple[int, float, Any]] = field(default_factory=list)
    logs: list[tuple[int, float, Any]] = field(default_factory=list)
    configs: list[tuple[int, float, Any]] = field(default_factory=list)
    marks: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    device_info: DeviceInfo | None = None
    stats: dict[str, int] = field(default_factory=dict)
    frames: int = 0


_CONFIG_OPCODES = frozenset(
    {Opcode.START_STREAM, Opcode.STOP_STREAM, Opcode.SET_STREAM_CONFIG, Opcode.GET_STREAM_CONFIG}
)


def _take_frame(c: _Collected, index: int, host: float, frame: DecodedFrame) -> None:
    if frame.lost_before:
        c.lost_at.append(index)
        c.lost_n.append(frame.lost_before)
    msg = frame.message
    if isinstance(msg, SampleBlock):
        c.blocks.add_block(index, host, msg)
    elif isinstance(msg, DeviceEvent):
        c.events.append((index, host, msg))
        if msg.code == EventCode.BOOT:
            c.boots.append(index)
    elif isinstance(msg, Status):
        c.statuses.append((index, host, msg))
    elif isinstance(msg, LogText):
        c.logs.append((index, host, msg))
    elif isinstance(msg, StreamConfig):
        c.configs.append((index, host, msg))
    elif isinstance(msg, DeviceInfo):
        c.device_info = msg
    elif isinstance(msg, Response) and msg.status == StatusCode.OK:
        try:
            if msg.opcode == Opcode.GET_INFO:
                result = msg.parse_result()
                if isinstance(result, DeviceInfo):
                    c.device_info = result
            elif msg.opcode in _CONFIG_OPCODES:
                result = msg.parse_result()
                if isinstance(result, StreamConfig):
                    c.configs.append((index, host, result))
        except MessageError:
            pass


def _add_stats(total: dict[str, int], stats: Any) -> None:
    for key, value in stats.as_dict().items():
        total[key] = total.get(key, 0) + value


def _decode(reader: SessionReader) -> _Collected:
    c = _Collected()
    packet = reader.framing == "packet"
    decoder: StreamDecoder | PacketDecoder = PacketDecoder() if packet else StreamDecoder()
    for record in reader:
        if isinstance(record, RxRecord):
            host = record.host_time
            if packet:
                for frame in decoder.feed(record.data):
                    _take_frame(c, c.frames, host, frame)
                    c.frames += 1
                continue
            assert isinstance(decoder, StreamDecoder)
            batch = decoder.feed_batch(record.data)
            if not batch.count:
                continue
            for pos, frame in batch.other:
                _take_frame(c, c.frames + pos, host, frame)
            for cols in batch.sample_columns:
                c.blocks.add_columns(c.frames, host, cols)
                lost = np.flatnonzero(cols.lost_before)
                if lost.size:
                    c.lost_at.extend((cols.position[lost] + c.frames).tolist())
                    c.lost_n.extend(cols.lost_before[lost].tolist())
            c.frames += batch.count
        elif isinstance(record, MarkRecord):
            c.marks.append((record.host_time, record.kind, record.info))
            if record.kind in LINK_MARKS:
                # A new link: partial input and sequence history do not carry over.
                c.links.append(c.frames)
                _add_stats(c.stats, decoder.stats)
                decoder = PacketDecoder() if packet else StreamDecoder()
        elif isinstance(record, MetaRecord):
            pass  # merged by the reader
    _add_stats(c.stats, decoder.stats)
    return c


# --- timeline -------------------------------------------------------------------


def _between(points: list[int], lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per pair, whether any of sorted *points* p satisfies lo < p <= hi."""
    if not points:
        return np.zeros(lo.shape, dtype=bool)
    arr = np.asarray(points, dtype=np.int64)
    return np.searchsorted(arr, hi, side="right") > np.searchsorted(arr, lo, side="right")


def load_session(path: str | os.PathLike[str], salvage: bool = False) -> Session:
    """Decode a recording into a :class:`Session`.

    Raises:
        SessionFileError: the file is missing, not a recording, or (without
            *salvage*) corrupt inside; see :class:`SessionReader`.
    """
    reader = SessionReader(path, salvage=salvage)
    c = _decode(reader)
    start = reader.start_time
    meta = reader.metadata
    b = c.blocks
    nb = len(b.frame)

    device_info = c.device_info or device_info_from_dict(meta.get("device_info"))
    order = np.argsort(np.asarray(b.frame, dtype=np.int64), kind="stable")
    frame = np.asarray(b.frame, dtype=np.int64)[order]
    host = np.asarray(b.host, dtype=np.float64)[order]
    t_raw = np.asarray(b.t_first, dtype=np.int64)[order]
    sidx = np.asarray(b.index, dtype=np.int64)[order]
    period_ns = np.asarray(b.period, dtype=np.int64)[order]
    n = np.asarray(b.n, dtype=np.int64)[order]
    flags = np.asarray(b.flags, dtype=np.int64)[order]
    masks = np.asarray(b.mask, dtype=np.int64)[order]

    # Epochs and unwrapping (host-assisted: the number of wraps between two
    # blocks is the one that agrees with the host's elapsed time).
    d_mod = (t_raw[1:] - t_raw[:-1]) % WRAP
    host_us = np.diff(host) * 1e6
    wraps = np.maximum(0, np.rint((host_us - d_mod) / WRAP)).astype(np.int64)
    elapsed = d_mod + wraps * WRAP
    tolerance = REBOOT_TOLERANCE_S * 1e6 + 1e-3 * np.abs(host_us)
    reboot = (elapsed > host_us + tolerance) | _between(c.boots, frame[:-1], frame[1:])
    steps = np.where(reboot, 0, elapsed)
    epoch_b = np.concatenate(([0], np.cumsum(reboot))).astype(np.int32)
    # Device time per block, restarting at each epoch from its raw stamp.
    t_dev = np.empty(nb, dtype=np.int64)
    if nb:
        starts = np.concatenate(([0], np.flatnonzero(reboot) + 1))
        cum = np.concatenate(([0], np.cumsum(steps)))
        t_dev[:] = (
            cum
            - np.repeat(cum[starts], np.diff(np.append(starts, nb)))
            + np.repeat(t_raw[starts], np.diff(np.append(starts, nb)))
        )
    else:
        starts = np.zeros(0, dtype=np.int64)

    # Host mapping per epoch, from each block's last-sample time (a block is sent
    # after its last sample is taken).
    last_us = t_dev + ((n - 1).clip(0) * period_ns) // 1000
    mappers: list[_EpochClock] = []
    bounds = np.append(starts, nb)
    for e in range(starts.size):
        sl = slice(int(bounds[e]), int(bounds[e + 1]))
        ref = int(t_dev[sl][0])
        mappers.append(_fit_clock((last_us[sl] - ref) / 1e6, host[sl] - start))

    # Samples.
    total = int(n.sum())
    block_first = np.concatenate(([0], np.cumsum(n)[:-1])) if nb else np.zeros(0, np.int64)
    union = int(np.bitwise_or.reduce(masks)) if nb else 0
    channel_ids = tuple(i for i in range(8) if union >> i & 1)
    col_of = {ch: k for k, ch in enumerate(channel_ids)}
    raw = np.zeros((total, len(channel_ids)), dtype=np.int32)
    present = None
    if nb and (masks != union).any():
        present = np.zeros((total, len(channel_ids)), dtype=bool)
    rank = np.empty(nb, dtype=np.int64)
    rank[order] = np.arange(nb)
    for (bn, mask), (ids, arrays) in b.groups.items():
        if bn == 0:
            continue
        data = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
        first = block_first[rank[np.asarray(ids, dtype=np.int64)]]
        rows = (first[:, None] + np.arange(bn)).ravel()
        cols = [col_of[ch] for ch in range(8) if mask >> ch & 1]
        raw[rows[:, None], cols] = data.reshape(-1, len(cols))
        if present is not None:
            present[rows[:, None], cols] = True

    sample_block = np.repeat(np.arange(nb), n)
    k_in_block = np.arange(total) - block_first[sample_block] if nb else np.zeros(0, np.int64)
    dev_us = t_dev[sample_block] + (k_in_block * period_ns[sample_block]) // 1000
    epoch = epoch_b[sample_block]
    t = np.empty(total, dtype=np.float64)
    block_t0 = np.empty(nb, dtype=np.float64)
    block_t_last = np.empty(nb, dtype=np.float64)
    for e, mapper in enumerate(mappers):
        ref = int(t_dev[int(bounds[e])])
        sel = epoch == e
        t[sel] = mapper.map((dev_us[sel] - ref) / 1e6)
        bsl = slice(int(bounds[e]), int(bounds[e + 1]))
        block_t0[bsl] = mapper.map((t_dev[bsl] - ref) / 1e6)
        block_t_last[bsl] = mapper.map((last_us[bsl] - ref) / 1e6)
    # Across a reboot the fits are independent: never let an epoch start before the
    # previous one ended, and continue device_time_us from it.
    shifts = [0.0] * len(mappers)
    for e in range(1, len(mappers)):
        z, zend = int(bounds[e]), int(bounds[e + 1])
        period_s = max(float(period_ns[z]), 1.0) * 1e-9
        shift = max(0.0, block_t_last[z - 1] + period_s - block_t0[z])
        shifts[e] = shift
        sel = epoch == e
        t[sel] += shift
        block_t0[z:zend] += shift
        block_t_last[z:zend] += shift
        offset = round((block_t0[z] - block_t_last[z - 1]) * 1e6) + int(last_us[z - 1])
        move = offset - int(t_dev[z])
        dev_us[sel] += move
        t_dev[z:zend] += move
        last_us[z:zend] += move

    gaps = _gaps(c, frame, sidx, n, period_ns, flags, reboot, block_t0, block_t_last)

    # Non-sample messages on the timeline.
    def timed(items: list[tuple[int, float, Any]]) -> tuple[TimedMessage, ...]:
        out = []
        for f, h, msg in items:
            t_us = getattr(msg, "t_us", None)
            when = h - start
            if t_us is not None and nb:
                # The block received just before (or, after a BOOT, just after) it.
                j = int(np.searchsorted(frame, f, side="right")) - 1
                if j < 0 or (j + 1 < nb and _between(c.boots, frame[j : j + 1], np.array([f]))[0]):
                    j = min(j + 1, nb - 1)
                delta = (t_us - int(t_raw[j])) % WRAP
                delta = delta - WRAP if delta >= HALF_WRAP else delta
                e = int(epoch_b[j])
                ref = int(t_dev[int(bounds[e])])
                when = float(mappers[e].map((int(t_dev[j]) + delta - ref) / 1e6)) + shifts[e]
            out.append(TimedMessage(when, h - start, msg))
        return tuple(out)

    calibration = None
    calibration_error = None
    forces = None
    device_channels = device_info.channel_count if isinstance(device_info, DeviceInfo) else None
    try:
        calibration = calibration_from_metadata(meta, channel_ids, device_channels)
    except CalibrationError as exc:
        calibration_error = str(exc)
    if calibration is not None and channel_ids:
        forces = calibration.apply(raw)
    elif (
        calibration_error is None
        and isinstance(device_info, DeviceInfo)
        and device_info.units == SampleUnit.MILLINEWTON
    ):
        forces = raw * 1e-3
    if forces is not None and present is not None:
        forces = np.where(present, forces, np.nan)

    return Session(
        path=Path(path),
        metadata=meta,
        framing=reader.framing,
        start_unix=start,
        device_info=device_info,
        channel_ids=channel_ids,
        channel_names=tuple(f"ch{i}" for i in channel_ids),
        t=t,
        device_time_us=dev_us,
        host_rx_s=host[sample_block] - start,
        epoch=epoch,
        raw=raw,
        present=present,
        forces=forces,
        calibration=calibration,
        calibration_error=calibration_error,
        saturated_mask=np.asarray(b.sat, dtype=np.uint8)[order][sample_block],
        fault_mask=np.asarray(b.fault, dtype=np.uint8)[order][sample_block],
        gaps=gaps,
        events=timed(c.events),
        statuses=timed(c.statuses),
        logs=timed(c.logs),
        stream_configs=timed(c.configs),
        marks=tuple(Mark(h - start, k, i) for h, k, i in c.marks),
        decoder_stats=c.stats,
        drift_ppm=tuple(m.drift_ppm for m in mappers),
        damage=reader.damage,
    )


class _EpochClock:
    """One epoch's ClockMapper, lowered so that no frame maps after its receive time."""

    def __init__(self, mapper: ClockMapper, correction: float) -> None:
        self.mapper = mapper
        self.correction = correction

    def map(self, device_s: np.ndarray | float) -> np.ndarray | float:
        return self.mapper.map(device_s) + self.correction

    @property
    def drift_ppm(self) -> float:
        return self.mapper.drift_ppm


def _fit_clock(device_s: np.ndarray, host_s: np.ndarray) -> _EpochClock:
    """Device-to-host mapping for one epoch's (device time, receive time) pairs.

    The envelope window grows with the session (about 300 windows, 0.5-30 s)
    and is at least four times the typical spacing of receive times, so even a
    bursty link puts a promptly received frame in most windows. Observations
    are reduced to their lower envelope per quarter window first (vectorised);
    the ClockMapper only sees those minima, which does not change its fit.
    Finally the line is lowered, if needed, below every observation: a frame
    cannot be received before its last sample was taken.
    """
    span = float(device_s[-1] - device_s[0]) if device_s.size else 0.0
    distinct = np.diff(np.unique(host_s))
    burst = float(np.median(distinct)) if distinct.size else 0.0
    window = min(30.0, max(0.5, span / 300, 4 * burst))
    mapper = ClockMapper(window_s=window)
    if device_s.size == 0:
        return _EpochClock(mapper, 0.0)
    offset = host_s - device_s
    bins = np.floor((device_s - device_s[0]) / (window / 4)).astype(np.int64)
    starts = np.flatnonzero(np.concatenate(([True], bins[1:] != bins[:-1])))
    group = np.repeat(np.arange(starts.size), np.diff(np.append(starts, bins.size)))
    lowest = np.minimum.reduceat(offset, starts)
    at = np.flatnonzero(offset == lowest[group])
    first = at[np.concatenate(([True], group[at][1:] != group[at][:-1]))]
    mapper.add(device_s[first], host_s[first])
    correction = min(0.0, float(np.min(host_s - mapper.map(device_s))))
    return _EpochClock(mapper, correction)


def _gaps(
    c: _Collected,
    frame: np.ndarray,
    sidx: np.ndarray,
    n: np.ndarray,
    period_ns: np.ndarray,
    flags: np.ndarray,
    reboot: np.ndarray,
    t0: np.ndarray,
    t_last: np.ndarray,
) -> tuple[Gap, ...]:
    """A Gap at every discontinuity between consecutive blocks."""
    if frame.size < 2:
        return ()
    expected = (sidx[:-1] + n[:-1]) % WRAP
    jump = (sidx[1:] - expected) % WRAP
    overflow = (flags[1:] & int(BlockFlags.OVERFLOW_BEFORE)) != 0
    link = _between(c.links, frame[:-1], frame[1:])
    lost_frames = np.zeros(frame.size - 1, dtype=np.int64)
    if c.lost_at:
        at = np.asarray(c.lost_at, dtype=np.int64)
        cum = np.concatenate(([0], np.cumsum(c.lost_n)))
        srt = np.argsort(at, kind="stable")
        at, cum = at[srt], np.concatenate(([0], np.cumsum(np.asarray(c.lost_n)[srt])))
        lost_frames = (
            cum[np.searchsorted(at, frame[1:], side="right")]
            - cum[np.searchsorted(at, frame[:-1], side="right")]
        )
    period_s = np.maximum(period_ns[1:], 1) * 1e-9
    dt = t0[1:] - t_last[:-1]
    by_time = np.maximum(0, np.rint(dt / period_s) - 1).astype(np.int64)
    late = dt > 1.5 * period_s
    broken = (jump != 0) | overflow | reboot | late
    # sample_index is trusted for the count when it agrees with the clock.
    trusted = (
        ~reboot & (jump < HALF_WRAP) & (np.abs(jump - by_time) <= np.maximum(2, by_time // 100))
    )
    out = []
    for i in np.flatnonzero(broken).tolist():
        reason: GapReason
        if reboot[i]:
            reason = "reboot"
        elif link[i]:
            reason = "link"
        elif overflow[i]:
            reason = "overflow"
        elif lost_frames[i] or (jump[i] != 0 and trusted[i]):
            reason = "frames_lost"
        else:
            reason = "stopped"
        lost = int(jump[i]) if trusted[i] else int(by_time[i])
        start_s = float(t_last[i] + period_s[i])
        end_s = float(t0[i + 1])
        out.append(Gap(min(start_s, end_s), end_s, lost, reason))
    return tuple(out)
