"""Decoding a recording's records into sample blocks and timed messages.

The RX records go through the same protocol decoder a live device uses
(StreamDecoder for byte-stream links, PacketDecoder for packet links), one
record at a time, so every frame carries the host time at which it was
received. A link MARK restarts the decoder: partial input does not carry over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from knotsense.errors import MessageError
from knotsense.host.recording import LINK_MARKS, MarkRecord, MetaRecord, RxRecord, SessionReader
from knotsense.protocol import (
    DecodedFrame,
    DeviceEvent,
    DeviceInfo,
    EventCode,
    LogText,
    Opcode,
    PacketDecoder,
    Response,
    SampleBlock,
    Status,
    StatusCode,
    StreamConfig,
    StreamDecoder,
)

__all__ = ["Blocks", "Collected", "decode_records"]


class Blocks:
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
class Collected:
    blocks: Blocks = field(default_factory=Blocks)
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


def _take_frame(c: Collected, index: int, host: float, frame: DecodedFrame) -> None:
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


def decode_records(reader: SessionReader) -> Collected:
    c = Collected()
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
