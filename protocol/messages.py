"""Messages of protocol v1: one frozen dataclass per payload layout.

Every message knows its frame ``TYPE`` and encodes to / decodes from a payload.
Decoders read the fields they know and ignore trailing bytes, so a newer
device may append fields (a minor version bump) without breaking an older
host. Commands and responses live in :mod:`knotsense.protocol.commands`.

Message types::

    0x01 DeviceInfo     device -> host  who the device is
    0x02 StreamConfig   device -> host  how samples are streamed
    0x03 SampleBlock    device -> host  N samples x C channels
    0x04 DeviceEvent    device -> host  threshold crossings, button, boot ...
    0x05 Status         device -> host  battery, temperature, error counters
    0x06 LogText        device -> host  a line of firmware log
    0x10 Command        host -> device  see commands.py
    0x11 Response       device -> host  see commands.py
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import Any, ClassVar, Self

import numpy as np

from knotsense.errors import MessageError


class MessageType(IntEnum):
    """Frame ``type`` byte values."""

    DEVICE_INFO = 0x01
    STREAM_CONFIG = 0x02
    SAMPLE_BLOCK = 0x03
    DEVICE_EVENT = 0x04
    STATUS = 0x05
    LOG_TEXT = 0x06
    COMMAND = 0x10
    RESPONSE = 0x11


class SensorKind(IntEnum):
    """What sits under a channel."""

    UNKNOWN = 0
    LOAD_CELL = 1
    FSR = 2
    BAROMETRIC = 3
    CAPACITIVE = 4


class SampleUnit(IntEnum):
    """The unit of sample values on the wire."""

    COUNTS = 0
    MILLINEWTON = 1


class Encoding(IntEnum):
    """Sample encoding; the value is the number of bytes per sample (signed, LE)."""

    INT16 = 2
    INT24 = 3
    INT32 = 4


class BlockFlags(IntFlag):
    """Per-block flags of a :class:`SampleBlock`."""

    NONE = 0
    OVERFLOW_BEFORE = 0x01
    """The device dropped samples before this block (its buffer overflowed)."""


BLOCK_FLAGS = tuple(BlockFlags(v) for v in range(256))
"""BlockFlags for every byte value, built once: IntFlag construction is slow."""
ENCODINGS = {e.value: e for e in Encoding}


class EventCode(IntEnum):
    """``code`` of a :class:`DeviceEvent`."""

    RELEASE_ENTER = 1
    RELEASE_EXIT = 2
    RELEASE_HOLD_REACHED = 3
    OVERPRESSURE_ENTER = 4
    OVERPRESSURE_EXIT = 5
    BUTTON_PRESS = 6
    BUTTON_RELEASE = 7
    BOOT = 8
    BUFFER_OVERFLOW = 9
    SENSOR_FAULT = 10


class ResetReason(IntEnum):
    """Why the device last started (``arg`` of a BOOT event, field of Status)."""

    POWER_ON = 0
    SOFTWARE = 1
    WATCHDOG = 2
    BROWNOUT = 3
    PIN = 4


class StatusFlags(IntFlag):
    """``flags`` of a :class:`Status`."""

    NONE = 0
    STREAMING = 0x01
    CHARGING = 0x02
    USB_POWER = 0x04
    CALIBRATED = 0x08


def _need(payload: bytes, size: int, what: str) -> None:
    if len(payload) < size:
        raise MessageError(f"{what}: payload of {len(payload)} bytes, need at least {size}")


def _read_str(payload: bytes, offset: int, what: str) -> tuple[str, int]:
    """Read a u8-length-prefixed UTF-8 string at *offset*; returns (text, next offset)."""
    _need(payload, offset + 1, what)
    n = payload[offset]
    _need(payload, offset + 1 + n, what)
    try:
        return payload[offset + 1 : offset + 1 + n].decode("utf-8"), offset + 1 + n
    except UnicodeDecodeError:
        raise MessageError(f"{what}: string is not UTF-8") from None


def _write_str(text: str, what: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 255:
        raise MessageError(f"{what}: string longer than 255 bytes")
    return bytes([len(raw)]) + raw


class Message:
    """Base of every message: a frame ``TYPE`` and a payload codec."""

    TYPE: ClassVar[int]

    def encode(self) -> bytes:
        """The payload bytes of this message."""
        raise NotImplementedError

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        """Parse a payload; raises :class:`MessageError` when it is malformed."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """One channel of a :class:`DeviceInfo`: sensor kind and position (mm)."""

    kind: SensorKind | int
    x_mm: float
    y_mm: float


@dataclass(frozen=True, slots=True)
class DeviceInfo(Message):
    """Who the device is; sent at boot and in answer to GET_INFO.

    Payload (C = channel count, R = rate count)::

        0    u8    protocol_major
        1    u8    protocol_minor
        2    u8    fw_major
        3    u8    fw_minor
        4    u16   fw_patch
        6    u8    hw_revision
        7    u8    adc_bits
        8    u8    units               SampleUnit: 0 counts, 1 mN
        9    u8    channel_count C     1..8
        10   u32   calibration_id      0 = none
        14   u8    rate_count R
        15   R x u16                   supported sample rates, Hz
        ..   C x {u8 kind, i16 x, i16 y}   SensorKind; position in 0.1 mm
        ..   u8 n + n bytes            serial number, UTF-8
        ..   u8 n + n bytes            model name, UTF-8
    """

    TYPE: ClassVar[int] = MessageType.DEVICE_INFO
    protocol_major: int
    protocol_minor: int
    firmware_version: tuple[int, int, int]
    hw_revision: int
    adc_bits: int
    units: SampleUnit | int
    calibration_id: int
    sample_rates: tuple[int, ...]
    channels: tuple[ChannelInfo, ...]
    serial_number: str
    model: str = ""

    @property
    def channel_count(self) -> int:
        return len(self.channels)

    @property
    def firmware(self) -> str:
        return ".".join(str(v) for v in self.firmware_version)

    def encode(self) -> bytes:
        major, minor, patch = self.firmware_version
        out = bytearray(
            struct.pack("<BBBBH", self.protocol_major, self.protocol_minor, major, minor, patch)
        )
        out += struct.pack(
            "<BBBBIB",
            self.hw_revision,
            self.adc_bits,
            int(self.units),
            len(self.channels),
            self.calibration_id,
            len(self.sample_rates),
        )
        out += struct.pack(f"<{len(self.sample_rates)}H", *self.sample_rates)
        for ch in self.channels:
            out += struct.pack("<Bhh", int(ch.kind), round(ch.x_mm * 10), round(ch.y_mm * 10))
        out += _write_str(self.serial_number, "DeviceInfo.serial_number")
        out += _write_str(self.model, "DeviceInfo.model")
        return bytes(out)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        what = "DeviceInfo"
        _need(payload, 15, what)
        pmaj, pmin, fmaj, fmin, fpatch = struct.unpack_from("<BBBBH", payload, 0)
        hw, adc_bits, units, n_ch, cal_id, n_rates = struct.unpack_from("<BBBBIB", payload, 6)
        offset = 15
        _need(payload, offset + 2 * n_rates + 5 * n_ch, what)
        rates = struct.unpack_from(f"<{n_rates}H", payload, offset)
        offset += 2 * n_rates
        channels = []
        for _ in range(n_ch):
            kind, x, y = struct.unpack_from("<Bhh", payload, offset)
            channels.append(ChannelInfo(_enum(SensorKind, kind), x / 10, y / 10))
            offset += 5
        serial, offset = _read_str(payload, offset, what)
        model = ""
        if offset < len(payload):
            model, offset = _read_str(payload, offset, what)
        return cls(
            pmaj,
            pmin,
            (fmaj, fmin, fpatch),
            hw,
            adc_bits,
            _enum(SampleUnit, units),
            cal_id,
            tuple(rates),
            tuple(channels),
            serial,
            model,
        )


def _enum(enum_cls: type[IntEnum], value: int) -> IntEnum | int:
    """*value* as a member of *enum_cls* when known, else the plain int (forward compatible)."""
    try:
        return enum_cls(value)
    except ValueError:
        return value


@dataclass(frozen=True, slots=True)
class StreamConfig(Message):
    """How samples are streamed; sent when streaming starts and answered to stream commands.

    Payload::

        0   u16  rate_hz
        2   u8   channel_mask        bit i set = channel i streamed
        3   u8   encoding            2 int16, 3 int24, 4 int32
        4   u32  period_ns           nominal sample period
        8   u8   samples_per_block   chosen for the link's frame size
        9   u8   streaming           1 while streaming
        10  u16  max_frame_size      frame size limit the device uses on this link
    """

    TYPE: ClassVar[int] = MessageType.STREAM_CONFIG
    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<HBBIBBH")

    rate_hz: int
    channel_mask: int
    encoding: Encoding | int
    period_ns: int
    samples_per_block: int
    streaming: bool
    max_frame_size: int

    @property
    def channel_count(self) -> int:
        return self.channel_mask.bit_count()

    def encode(self) -> bytes:
        return self.LAYOUT.pack(
            self.rate_hz,
            self.channel_mask,
            int(self.encoding),
            self.period_ns,
            self.samples_per_block,
            int(self.streaming),
            self.max_frame_size,
        )

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        _need(payload, cls.LAYOUT.size, "StreamConfig")
        rate, mask, enc, period, spb, streaming, mfs = cls.LAYOUT.unpack_from(payload)
        return cls(rate, mask, _enum(Encoding, enc), period, spb, bool(streaming), mfs)


_SAMPLE_DTYPES: dict[Encoding, np.dtype[Any]] = {
    Encoding.INT16: np.dtype("<i2"),
    Encoding.INT32: np.dtype("<i4"),
}


def decode_samples(
    data: bytes | np.ndarray, encoding: int, n_samples: int, n_channels: int
) -> np.ndarray:
    """Sample bytes (sample-major, LE, signed) to an int32 array (n_samples, n_channels).

    *data* may also be a uint8 array of shape (blocks, bytes): the result is then
    (blocks, n_samples, n_channels), which is how the stream decoder converts
    many blocks of one layout at once.
    """
    raw = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
    lead = raw.shape[:-1]
    if encoding == Encoding.INT24:
        b = raw.reshape(*lead, -1, 3).astype(np.int32)
        values = b[..., 0] | (b[..., 1] << 8) | (b[..., 2] << 16)
        values = (values ^ 0x800000) - 0x800000
        return values.reshape(*lead, n_samples, n_channels)
    dtype = _SAMPLE_DTYPES[Encoding(encoding)]
    rows = np.ascontiguousarray(raw).view(dtype)
    return rows.reshape(*lead, n_samples, n_channels).astype(np.int32)


def encode_samples(samples: np.ndarray, encoding: int) -> bytes:
    """Inverse of :func:`decode_samples`; values must fit the encoding."""
    arr = np.asarray(samples, dtype=np.int64)
    bits = 8 * int(encoding)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise MessageError(f"sample value out of range for int{bits}")
    if encoding == Encoding.INT24:
        u = (arr.astype(np.int32) & 0xFFFFFF).astype("<u4").view(np.uint8).reshape(-1, 4)
        return u[:, :3].tobytes()
    return arr.astype(_SAMPLE_DTYPES[Encoding(encoding)]).tobytes()


@dataclass(frozen=True, eq=False)
class SampleBlock(Message):
    """N consecutive samples of the streamed channels.

    Payload (C = popcount(channel_mask), E = encoding bytes)::

        0   u32  t_first_us       device clock of the first sample, wraps at 2^32
        4   u32  sample_index     index of the first sample since stream start, wraps
        8   u32  period_ns        sample period
        12  u8   channel_mask
        13  u8   encoding         2 int16, 3 int24, 4 int32
        14  u8   flags            BlockFlags (bit 0: samples lost before this block)
        15  u8   saturated_mask   channels that hit the ADC limit in this block
        16  u8   fault_mask       channels whose sensor reported a fault
        17  u8   n_samples N
        18  N x C x E             samples, sample-major: s0c0 s0c1 .. s1c0 ..

    ``samples`` is an int32 array of shape (N, C), in channel order.
    """

    TYPE: ClassVar[int] = MessageType.SAMPLE_BLOCK
    HEAD: ClassVar[struct.Struct] = struct.Struct("<IIIBBBBBB")
    HEAD_SIZE: ClassVar[int] = 18

    t_first_us: int
    sample_index: int
    period_ns: int
    channel_mask: int
    encoding: Encoding | int
    samples: np.ndarray = field(repr=False)
    flags: BlockFlags | int = BlockFlags.NONE
    saturated_mask: int = 0
    fault_mask: int = 0

    @property
    def n_samples(self) -> int:
        return int(self.samples.shape[0])

    @property
    def channel_count(self) -> int:
        return self.channel_mask.bit_count()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SampleBlock):
            return NotImplemented
        return (
            (
                self.t_first_us,
                self.sample_index,
                self.period_ns,
                self.channel_mask,
                int(self.encoding),
                int(self.flags),
                self.saturated_mask,
                self.fault_mask,
            )
            == (
                other.t_first_us,
                other.sample_index,
                other.period_ns,
                other.channel_mask,
                int(other.encoding),
                int(other.flags),
                other.saturated_mask,
                other.fault_mask,
            )
            and self.samples.shape == other.samples.shape
            and bool(np.array_equal(self.samples, other.samples))
        )

    __hash__ = None  # type: ignore[assignment]

    def encode(self) -> bytes:
        n, c = self.samples.shape
        if c != self.channel_count:
            raise MessageError(f"SampleBlock: {c} columns but mask has {self.channel_count}")
        head = self.HEAD.pack(
            self.t_first_us & 0xFFFFFFFF,
            self.sample_index & 0xFFFFFFFF,
            self.period_ns,
            self.channel_mask,
            int(self.encoding),
            int(self.flags),
            self.saturated_mask,
            self.fault_mask,
            n,
        )
        return head + encode_samples(self.samples, self.encoding)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        _need(payload, cls.HEAD_SIZE, "SampleBlock")
        t, idx, period, mask, enc, flags, sat, fault, n = cls.HEAD.unpack_from(payload)
        if enc not in (2, 3, 4):
            raise MessageError(f"SampleBlock: unknown encoding {enc}")
        c = mask.bit_count()
        size = n * c * enc
        _need(payload, cls.HEAD_SIZE + size, "SampleBlock")
        samples = decode_samples(payload[cls.HEAD_SIZE : cls.HEAD_SIZE + size], enc, n, c)
        return cls(
            t, idx, period, mask, Encoding(enc), samples, BlockFlags(flags & 0xFF), sat, fault
        )

    @staticmethod
    def max_samples(max_frame_size: int, n_channels: int, encoding: int) -> int:
        """How many samples fit one frame of *max_frame_size* bytes (at most 255)."""
        from knotsense.protocol.frame import FRAME_OVERHEAD

        room = max_frame_size - FRAME_OVERHEAD - SampleBlock.HEAD_SIZE
        return max(0, min(255, room // (n_channels * int(encoding))))


@dataclass(frozen=True, slots=True)
class DeviceEvent(Message):
    """Something the firmware noticed (threshold crossing, button, boot, overflow).

    Payload::

        0   u32  t_us     device clock
        4   u8   code     EventCode
        5   u8   arg      channel, reset reason ... (0xFF = not applicable)
        6   i32  value    load index at a crossing, frames lost at an overflow ...
    """

    TYPE: ClassVar[int] = MessageType.DEVICE_EVENT
    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<IBBi")

    t_us: int
    code: EventCode | int
    arg: int = 0xFF
    value: int = 0

    def encode(self) -> bytes:
        return self.LAYOUT.pack(self.t_us & 0xFFFFFFFF, int(self.code), self.arg, self.value)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        _need(payload, cls.LAYOUT.size, "DeviceEvent")
        t, code, arg, value = cls.LAYOUT.unpack_from(payload)
        return cls(t, _enum(EventCode, code), arg, value)


@dataclass(frozen=True, slots=True)
class Status(Message):
    """Battery, temperature and error counters; periodic and on GET_STATUS.

    Payload::

        0   u32  t_us                 device clock
        4   u32  uptime_s
        8   u16  battery_mv
        10  u8   battery_pct          0xFF = unknown
        11  u8   flags                StatusFlags
        12  i16  temperature_cdeg     0.01 degC
        14  u8   reset_reason         ResetReason
        15  u32  frames_sent
        19  u32  frames_dropped       lost to a full transmit buffer
        23  u32  rx_crc_errors        host frames with a bad CRC
        27  u32  rx_framing_errors    host frames with bad COBS or header
        31  u32  sensor_faults
    """

    TYPE: ClassVar[int] = MessageType.STATUS
    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<IIHBBhBIIIII")

    t_us: int
    uptime_s: int
    battery_mv: int
    battery_pct: int
    flags: StatusFlags | int
    temperature_c: float
    reset_reason: ResetReason | int
    frames_sent: int
    frames_dropped: int
    rx_crc_errors: int
    rx_framing_errors: int
    sensor_faults: int

    def encode(self) -> bytes:
        return self.LAYOUT.pack(
            self.t_us & 0xFFFFFFFF,
            self.uptime_s,
            self.battery_mv,
            self.battery_pct,
            int(self.flags),
            round(self.temperature_c * 100),
            int(self.reset_reason),
            self.frames_sent,
            self.frames_dropped,
            self.rx_crc_errors,
            self.rx_framing_errors,
            self.sensor_faults,
        )

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        _need(payload, cls.LAYOUT.size, "Status")
        (t, up, mv, pct, flags, temp, reason, sent, dropped, crc, framing, faults) = (
            cls.LAYOUT.unpack_from(payload)
        )
        return cls(
            t,
            up,
            mv,
            pct,
            StatusFlags(flags),
            temp / 100,
            _enum(ResetReason, reason),
            sent,
            dropped,
            crc,
            framing,
            faults,
        )


@dataclass(frozen=True, slots=True)
class LogText(Message):
    """A line of firmware log.

    Payload::

        0   u8   level    10 debug, 20 info, 30 warning, 40 error (as Python logging)
        1   ..   text     UTF-8, the rest of the payload
    """

    TYPE: ClassVar[int] = MessageType.LOG_TEXT

    level: int
    text: str

    def encode(self) -> bytes:
        return bytes([self.level]) + self.text.encode("utf-8")

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        _need(payload, 1, "LogText")
        return cls(payload[0], payload[1:].decode("utf-8", errors="replace"))


@dataclass(frozen=True, slots=True)
class UnknownMessage(Message):
    """A frame whose type this version does not know; kept, never fatal."""

    msg_type: int
    payload: bytes

    def encode(self) -> bytes:
        return self.payload

    @property
    def TYPE(self) -> int:  # type: ignore[override]
        return self.msg_type
