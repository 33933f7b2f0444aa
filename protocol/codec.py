"""Messages to frames and back: the message registry and a sequence-numbering encoder."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum

from knotsense.errors import MessageError
from knotsense.protocol.commands import Command, Response
from knotsense.protocol.frame import Frame, build_frame, parse_frame, stuff
from knotsense.protocol.messages import (
    DeviceEvent,
    DeviceInfo,
    LogText,
    Message,
    SampleBlock,
    Status,
    StreamConfig,
    UnknownMessage,
)

MESSAGE_TYPES: dict[int, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        DeviceInfo,
        StreamConfig,
        SampleBlock,
        DeviceEvent,
        Status,
        LogText,
        Command,
        Response,
    )
}


class Framing(Enum):
    """How frames travel on a link."""

    STREAM = "stream"
    """COBS-encoded, 0x00-delimited (serial, pty)."""
    PACKET = "packet"
    """One unencoded frame per packet (BLE notification or write)."""


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """A checked, decoded frame.

    Attributes:
        seq: the sender's sequence number.
        message: the decoded message (:class:`UnknownMessage` for unknown types).
        lost_before: frames missing between the previous frame and this one.
    """

    seq: int
    message: Message
    lost_before: int = 0


def decode_message(msg_type: int, payload: bytes) -> Message:
    """Decode a payload by its frame type; unknown types become :class:`UnknownMessage`.

    Raises:
        MessageError: the payload is malformed for its (known) type.
    """
    cls = MESSAGE_TYPES.get(msg_type)
    if cls is None:
        return UnknownMessage(msg_type, bytes(payload))
    return cls.decode(bytes(payload))


def encode_message(message: Message, seq: int, framing: Framing = Framing.PACKET) -> bytes:
    """One message as the bytes a link carries (a frame, COBS-stuffed for STREAM).

    Raises:
        MessageError: a field does not fit its wire type.
        FramingError: the payload is larger than a frame can carry.
    """
    try:
        payload = message.encode()
    except struct.error as exc:
        raise MessageError(f"{type(message).__name__}: a field does not fit: {exc}") from None
    frame = build_frame(message.TYPE, seq, payload)
    return stuff(frame) if framing is Framing.STREAM else frame


def decode_packet(packet: bytes | bytearray | memoryview) -> DecodedFrame:
    """Decode one unencoded frame (a BLE packet).

    Raises:
        FramingError, CrcError, MessageError: see :func:`parse_frame`.
    """
    frame: Frame = parse_frame(packet)
    return DecodedFrame(frame.seq, decode_message(frame.msg_type, frame.payload))


class Encoder:
    """Numbers and frames outgoing messages for one sender on one link.

    Example:
        >>> enc = Encoder(Framing.STREAM)
        >>> wire = enc.encode(LogText(20, "hello"))
    """

    def __init__(self, framing: Framing = Framing.STREAM, first_seq: int = 0) -> None:
        self.framing = framing
        self.seq = first_seq & 0xFFFF

    def encode(self, message: Message) -> bytes:
        """Frame *message* with the next sequence number."""
        data = encode_message(message, self.seq, self.framing)
        self.seq = (self.seq + 1) & 0xFFFF
        return data

    def reset(self, first_seq: int = 0) -> None:
        """Restart numbering (as after a reboot)."""
        self.seq = first_seq & 0xFFFF
