"""Commands (host -> device) and responses (device -> host).

Every command carries a request id chosen by the host; the device answers
each with exactly one :class:`Response` carrying the same id, the opcode and
a status code, then (on OK) a result whose layout depends on the opcode.

Command payload (frame type 0x10)::

    0   u16  request_id
    2   u8   opcode        Opcode
    3   ..   arguments     layout per opcode (below)

Response payload (frame type 0x11)::

    0   u16  request_id    copied from the command (0xFFFF: command unreadable)
    2   u8   opcode        copied from the command (0xFF: command unreadable)
    3   u8   status        StatusCode
    4   ..   result        layout per opcode, present when status is OK
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any, ClassVar, Generic, Self, TypeVar, cast

from knotsense.errors import MessageError
from knotsense.protocol.messages import (
    DeviceInfo,
    Encoding,
    Message,
    MessageType,
    Status,
    StreamConfig,
    _enum,
    _need,
)


class BadCommandArguments(MessageError):
    """A command whose header reads but whose arguments do not.

    Carries the request id and opcode so a device can answer MALFORMED to the
    right request (docs/protocol.md 10.3, unknown and malformed commands).
    """

    def __init__(self, message: str, request_id: int, opcode: int) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.opcode = opcode


UNREADABLE_REQUEST_ID = 0xFFFF
UNREADABLE_OPCODE = 0xFF
CALIBRATION_CAPACITY = 4096
"""Bytes of NVM a device must reserve for the calibration record blob."""
MAX_PING_DATA = 64


class Opcode(IntEnum):
    """Command opcodes."""

    PING = 0x01
    GET_INFO = 0x02
    START_STREAM = 0x03
    STOP_STREAM = 0x04
    SET_STREAM_CONFIG = 0x05
    GET_STREAM_CONFIG = 0x06
    TARE = 0x07
    READ_CALIBRATION = 0x08
    WRITE_CALIBRATION = 0x09
    COMMIT_CALIBRATION = 0x0A
    READ_THRESHOLDS = 0x0B
    WRITE_THRESHOLDS = 0x0C
    REBOOT = 0x0D
    GET_STATUS = 0x0E


class StatusCode(IntEnum):
    """Response status codes."""

    OK = 0
    UNKNOWN_COMMAND = 1
    BAD_ARGUMENT = 2
    INVALID_STATE = 3
    UNSUPPORTED = 4
    NVM_ERROR = 5
    CHECKSUM_MISMATCH = 6
    INTERNAL_ERROR = 7
    MALFORMED = 8


class ThresholdFlags(IntFlag):
    """``flags`` of a :class:`Thresholds` record."""

    NONE = 0
    RELEASE_ENABLED = 0x01
    OVERPRESSURE_ENABLED = 0x02


@dataclass(frozen=True, slots=True)
class ChannelWeight:
    """How one channel enters the device's load index: ``(raw - zero) * weight_q16``."""

    zero: int
    weight_q16: int


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The on-device detector's configuration, in raw (device) units.

    The device computes, for every sample, the load index in 64-bit integer
    arithmetic: ``L = sum((raw_i - zero_i) * weight_q16_i) >> 16`` (an
    arithmetic shift). The host chooses weights so L reads in millinewtons.

    Layout (C = channel count)::

        0   u8   flags             ThresholdFlags
        1   u8   channel_count C
        2   u16  debounce_ms       a condition must last this long to fire
        4   u16  hold_s            RELEASE_HOLD_REACHED after this long (0 = never)
        6   i32  release_on        L >= release_on starts release-level pressure
        10  i32  release_off       L < release_off ends it (hysteresis)
        14  i32  overpressure_on   L > overpressure_on is overpressure
        18  C x {i32 zero, i32 weight_q16}
    """

    HEAD: ClassVar[struct.Struct] = struct.Struct("<BBHHiii")

    flags: ThresholdFlags | int
    debounce_ms: int
    hold_s: int
    release_on: int
    release_off: int
    overpressure_on: int
    channels: tuple[ChannelWeight, ...]

    def encode(self) -> bytes:
        out = bytearray(
            self.HEAD.pack(
                int(self.flags),
                len(self.channels),
                self.debounce_ms,
                self.hold_s,
                self.release_on,
                self.release_off,
                self.overpressure_on,
            )
        )
        for ch in self.channels:
            out += struct.pack("<ii", ch.zero, ch.weight_q16)
        return bytes(out)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        _need(payload, cls.HEAD.size, "Thresholds")
        flags, n, debounce, hold, on, off, over = cls.HEAD.unpack_from(payload)
        _need(payload, cls.HEAD.size + 8 * n, "Thresholds")
        channels = tuple(
            ChannelWeight(*struct.unpack_from("<ii", payload, cls.HEAD.size + 8 * i))
            for i in range(n)
        )
        return cls(ThresholdFlags(flags), debounce, hold, on, off, over, channels)

    def load_index(self, raw: tuple[int, ...] | list[int]) -> int:
        """The load index of one sample, exactly as the firmware computes it."""
        total = sum(
            (int(r) - ch.zero) * ch.weight_q16 for r, ch in zip(raw, self.channels, strict=True)
        )
        # The firmware sums in int64 and wraps; so does this (Python ints do not).
        total = (total + (1 << 63)) % (1 << 64) - (1 << 63)
        return total >> 16


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TareResult:
    """Result of TARE: the new zero of each tared channel."""

    channel_mask: int
    zeros: tuple[int, ...]

    def encode(self) -> bytes:
        return bytes([self.channel_mask]) + struct.pack(f"<{len(self.zeros)}i", *self.zeros)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        _need(payload, 1, "TareResult")
        mask = payload[0]
        n = mask.bit_count()
        _need(payload, 1 + 4 * n, "TareResult")
        return cls(mask, struct.unpack_from(f"<{n}i", payload, 1))


@dataclass(frozen=True, slots=True)
class CalibrationChunk:
    """Result of READ_CALIBRATION.

    Layout: u32 calibration_id, u16 total_length, u16 offset, then the data.
    """

    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<IHH")
    calibration_id: int
    total_length: int
    offset: int
    data: bytes

    def encode(self) -> bytes:
        return self.LAYOUT.pack(self.calibration_id, self.total_length, self.offset) + self.data

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        _need(payload, cls.LAYOUT.size, "CalibrationChunk")
        cal_id, total, offset = cls.LAYOUT.unpack_from(payload)
        return cls(cal_id, total, offset, payload[cls.LAYOUT.size :])


@dataclass(frozen=True, slots=True)
class PingResult:
    """Result of PING: the echoed data."""

    data: bytes

    def encode(self) -> bytes:
        return self.data

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        return cls(payload)


@dataclass(frozen=True, slots=True)
class EmptyResult:
    """The result of commands that return nothing."""

    def encode(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        return cls()


# --- command bodies -----------------------------------------------------------------------


R = TypeVar("R")
"""The result type of a command (DeviceInfo for GetInfo, StreamConfig for StartStream ...)."""


class CommandBody(Generic[R]):
    """Arguments of one command; subclasses set ``OPCODE`` and ``RESULT``.

    A body is generic in its result: ``GetInfo`` is a ``CommandBody[DeviceInfo]``
    and its ``RESULT`` is ``DeviceInfo``, so :meth:`parse_result` (and
    ``AsyncDevice.call``) give a typed result.
    """

    OPCODE: ClassVar[int]
    RESULT: ClassVar[type[Any]]
    """The class whose ``decode`` reads the result; the same as the type argument R."""

    def parse_result(self, response: Response) -> R:
        """This command's result from its *response* (see :meth:`Response.parse_result`).

        Raises:
            MessageError: not OK, or a malformed result.
        """
        # RESULT is R (tests/protocol/test_messages.py checks every body), so the
        # union that Response.parse_result returns narrows to R here, once.
        return cast(R, response.parse_result())

    def encode_args(self) -> bytes:
        return b""

    @classmethod
    def decode_args(cls, args: bytes) -> Self:
        return cls()


@dataclass(frozen=True, slots=True)
class Ping(CommandBody[PingResult]):
    """Echo test; ``data`` (at most 64 bytes) comes back as the result."""

    OPCODE: ClassVar[int] = Opcode.PING
    RESULT: ClassVar[type[Any]] = PingResult
    data: bytes = b""

    def encode_args(self) -> bytes:
        return self.data

    @classmethod
    def decode_args(cls, args: bytes) -> Self:
        if len(args) > MAX_PING_DATA:
            raise MessageError(f"Ping: {len(args)} bytes of data, at most {MAX_PING_DATA}")
        return cls(args)


@dataclass(frozen=True, slots=True)
class GetInfo(CommandBody[DeviceInfo]):
    """Result: a DeviceInfo payload."""

    OPCODE: ClassVar[int] = Opcode.GET_INFO
    RESULT: ClassVar[type[Any]] = DeviceInfo


@dataclass(frozen=True, slots=True)
class StartStream(CommandBody[StreamConfig]):
    """Start streaming with the current configuration. Result: StreamConfig."""

    OPCODE: ClassVar[int] = Opcode.START_STREAM
    RESULT: ClassVar[type[Any]] = StreamConfig


@dataclass(frozen=True, slots=True)
class StopStream(CommandBody[EmptyResult]):
    """Stop streaming. Result: empty."""

    OPCODE: ClassVar[int] = Opcode.STOP_STREAM
    RESULT: ClassVar[type[Any]] = EmptyResult


@dataclass(frozen=True, slots=True)
class SetStreamConfig(CommandBody[StreamConfig]):
    """Choose rate, channels and encoding. Result: the StreamConfig now in force.

    Arguments::

        0   u16  rate_hz        one of DeviceInfo.sample_rates
        2   u8   channel_mask   non-zero, only existing channels
        3   u8   encoding       2 int16, 3 int24, 4 int32
    """

    OPCODE: ClassVar[int] = Opcode.SET_STREAM_CONFIG
    RESULT: ClassVar[type[Any]] = StreamConfig
    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<HBB")
    rate_hz: int
    channel_mask: int
    encoding: Encoding | int = Encoding.INT16

    def encode_args(self) -> bytes:
        return self.LAYOUT.pack(self.rate_hz, self.channel_mask, int(self.encoding))

    @classmethod
    def decode_args(cls, args: bytes) -> Self:
        _need(args, cls.LAYOUT.size, "SetStreamConfig")
        rate, mask, enc = cls.LAYOUT.unpack_from(args)
        return cls(rate, mask, _enum(Encoding, enc))


@dataclass(frozen=True, slots=True)
class GetStreamConfig(CommandBody[StreamConfig]):
    """Result: StreamConfig."""

    OPCODE: ClassVar[int] = Opcode.GET_STREAM_CONFIG
    RESULT: ClassVar[type[Any]] = StreamConfig


@dataclass(frozen=True, slots=True)
class Tare(CommandBody[TareResult]):
    """Average the unloaded channels and store them as the detector's zeros.

    Streamed samples stay raw; the result tells the host the new zeros.

    Arguments::

        0   u8   channel_mask   0 = all channels
        1   u16  n_samples      samples to average (0 = device default, 16)

    Result: u8 channel_mask, then one i32 zero per channel in the mask.
    """

    OPCODE: ClassVar[int] = Opcode.TARE
    RESULT: ClassVar[type[Any]] = TareResult
    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<BH")
    channel_mask: int = 0
    n_samples: int = 0

    def encode_args(self) -> bytes:
        return self.LAYOUT.pack(self.channel_mask, self.n_samples)

    @classmethod
    def decode_args(cls, args: bytes) -> Self:
        _need(args, cls.LAYOUT.size, "Tare")
        return cls(*cls.LAYOUT.unpack_from(args))


@dataclass(frozen=True, slots=True)
class ReadCalibration(CommandBody[CalibrationChunk]):
    """Read part of the calibration record blob.

    Arguments: u16 offset, u8 max_length. Result: :class:`CalibrationChunk`.
    """

    OPCODE: ClassVar[int] = Opcode.READ_CALIBRATION
    RESULT: ClassVar[type[Any]] = CalibrationChunk
    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<HB")
    offset: int
    max_length: int

    def encode_args(self) -> bytes:
        return self.LAYOUT.pack(self.offset, self.max_length)

    @classmethod
    def decode_args(cls, args: bytes) -> Self:
        _need(args, cls.LAYOUT.size, "ReadCalibration")
        return cls(*cls.LAYOUT.unpack_from(args))


@dataclass(frozen=True, slots=True)
class WriteCalibration(CommandBody[EmptyResult]):
    """Stage part of a new calibration record blob (nothing is stored until commit).

    Arguments: u16 offset, u16 total_length, then the data bytes. Result: empty.
    """

    OPCODE: ClassVar[int] = Opcode.WRITE_CALIBRATION
    RESULT: ClassVar[type[Any]] = EmptyResult
    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<HH")
    offset: int
    total_length: int
    data: bytes

    def encode_args(self) -> bytes:
        return self.LAYOUT.pack(self.offset, self.total_length) + self.data

    @classmethod
    def decode_args(cls, args: bytes) -> Self:
        _need(args, cls.LAYOUT.size, "WriteCalibration")
        offset, total = cls.LAYOUT.unpack_from(args)
        return cls(offset, total, args[cls.LAYOUT.size :])


@dataclass(frozen=True, slots=True)
class CommitCalibration(CommandBody[EmptyResult]):
    """Check the staged blob and store it in NVM with a new calibration id.

    Arguments: u32 calibration_id, u16 total_length, u16 crc (CRC-16/IBM-3740
    of the whole blob). CHECKSUM_MISMATCH when the staged bytes disagree.
    """

    OPCODE: ClassVar[int] = Opcode.COMMIT_CALIBRATION
    RESULT: ClassVar[type[Any]] = EmptyResult
    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<IHH")
    calibration_id: int
    total_length: int
    crc: int

    def encode_args(self) -> bytes:
        return self.LAYOUT.pack(self.calibration_id, self.total_length, self.crc)

    @classmethod
    def decode_args(cls, args: bytes) -> Self:
        _need(args, cls.LAYOUT.size, "CommitCalibration")
        return cls(*cls.LAYOUT.unpack_from(args))


@dataclass(frozen=True, slots=True)
class ReadThresholds(CommandBody[Thresholds]):
    """Result: the :class:`Thresholds` record in force."""

    OPCODE: ClassVar[int] = Opcode.READ_THRESHOLDS
    RESULT: ClassVar[type[Any]] = Thresholds


@dataclass(frozen=True, slots=True)
class WriteThresholds(CommandBody[Thresholds]):
    """Store a :class:`Thresholds` record in NVM. Result: the record as stored."""

    OPCODE: ClassVar[int] = Opcode.WRITE_THRESHOLDS
    RESULT: ClassVar[type[Any]] = Thresholds
    thresholds: Thresholds

    def encode_args(self) -> bytes:
        return self.thresholds.encode()

    @classmethod
    def decode_args(cls, args: bytes) -> Self:
        return cls(Thresholds.decode(args))


@dataclass(frozen=True, slots=True)
class Reboot(CommandBody[EmptyResult]):
    """Answer OK, then restart: sequence numbers and the device clock start over."""

    OPCODE: ClassVar[int] = Opcode.REBOOT
    RESULT: ClassVar[type[Any]] = EmptyResult


@dataclass(frozen=True, slots=True)
class GetStatus(CommandBody[Status]):
    """Result: a Status payload."""

    OPCODE: ClassVar[int] = Opcode.GET_STATUS
    RESULT: ClassVar[type[Any]] = Status


@dataclass(frozen=True, slots=True)
class UnknownCommand(CommandBody[Any]):
    """A command whose opcode this version does not know (raw arguments kept)."""

    opcode: int
    args: bytes = b""

    def encode_args(self) -> bytes:
        return self.args

    @property
    def OPCODE(self) -> int:  # type: ignore[override]
        return self.opcode


COMMAND_BODIES: dict[int, type[CommandBody[Any]]] = {
    cls.OPCODE: cls
    for cls in (
        Ping,
        GetInfo,
        StartStream,
        StopStream,
        SetStreamConfig,
        GetStreamConfig,
        Tare,
        ReadCalibration,
        WriteCalibration,
        CommitCalibration,
        ReadThresholds,
        WriteThresholds,
        Reboot,
        GetStatus,
    )
}


ResultType = (
    DeviceInfo
    | StreamConfig
    | Status
    | Thresholds
    | TareResult
    | CalibrationChunk
    | PingResult
    | EmptyResult
)

RESULT_TYPES: dict[int, type[Any]] = {cls.OPCODE: cls.RESULT for cls in COMMAND_BODIES.values()}
"""Opcode -> result class, from the command bodies' ``RESULT``."""


@dataclass(frozen=True, slots=True)
class Command(Message):
    """A command frame: request id plus a typed body."""

    TYPE: ClassVar[int] = MessageType.COMMAND
    request_id: int
    body: CommandBody[Any]

    @property
    def opcode(self) -> int:
        return int(self.body.OPCODE)

    def encode(self) -> bytes:
        return struct.pack("<HB", self.request_id, self.opcode) + self.body.encode_args()

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        _need(payload, 3, "Command")
        request_id, opcode = struct.unpack_from("<HB", payload)
        args = payload[3:]
        body_cls = COMMAND_BODIES.get(opcode)
        if body_cls is None:
            return cls(request_id, UnknownCommand(opcode, args))
        try:
            return cls(request_id, body_cls.decode_args(args))
        except MessageError as exc:
            raise BadCommandArguments(str(exc), request_id, opcode) from None


@dataclass(frozen=True, slots=True)
class Response(Message):
    """A device's answer to one command."""

    TYPE: ClassVar[int] = MessageType.RESPONSE
    request_id: int
    opcode: int
    status: StatusCode | int
    result: bytes = b""

    @classmethod
    def ok(cls, command: Command, result: object = None) -> Response:
        """The OK answer to *command*, with a result record (or raw bytes)."""
        data = (
            b""
            if result is None
            else (
                result if isinstance(result, bytes) else result.encode()  # type: ignore[attr-defined]
            )
        )
        return cls(command.request_id, command.opcode, StatusCode.OK, data)

    @classmethod
    def error(cls, command: Command | None, status: StatusCode) -> Response:
        """An error answer; ``command=None`` when the command could not be read."""
        if command is None:
            return cls(UNREADABLE_REQUEST_ID, UNREADABLE_OPCODE, status)
        return cls(command.request_id, command.opcode, status)

    def parse_result(self) -> ResultType:
        """Decode ``result`` by opcode.

        Raises:
            MessageError: unknown opcode, not OK, or a malformed result.
        """
        if self.status != StatusCode.OK:
            raise MessageError(f"response has status {self.status!r}, no result")
        result_cls = RESULT_TYPES.get(self.opcode)
        if result_cls is None:
            raise MessageError(f"no result layout for opcode {self.opcode:#04x}")
        return result_cls.decode(self.result)  # type: ignore[no-any-return]

    def encode(self) -> bytes:
        return struct.pack("<HBB", self.request_id, self.opcode, int(self.status)) + self.result

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        _need(payload, 4, "Response")
        request_id, opcode, status = struct.unpack_from("<HBB", payload)
        return cls(request_id, opcode, _enum(StatusCode, status), payload[4:])
