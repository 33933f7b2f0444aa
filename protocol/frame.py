"""Frames: the unit every link carries.

A frame is a 6-byte header, the payload, and a CRC-16/IBM-3740 over header
and payload. All integers are little-endian except the CRC, which is stored
most significant byte first so the CRC over the whole frame is 0::

    offset  size  field
    0       1     version      protocol major version, 1
    1       1     type         message type (see messages.py)
    2       2     seq          u16 LE, per sender, +1 per frame, wraps
    4       2     length       u16 LE, payload length L
    6       L     payload
    6+L     2     crc          CRC-16/IBM-3740 of bytes 0..6+L-1, big-endian

On byte streams (serial, pty) a frame is COBS-encoded and followed by one
0x00; on BLE a frame travels alone, unencoded, in one notification or write.
A frame is at most :data:`MAX_FRAME_SIZE` bytes (one notification at MTU 247).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from knotsense.errors import CrcError, FramingError
from knotsense.protocol import cobs
from knotsense.protocol.crc import crc16

PROTOCOL_VERSION = 1
PROTOCOL_MINOR = 1
HEADER = struct.Struct("<BBHH")
HEADER_SIZE = HEADER.size
CRC_SIZE = 2
FRAME_OVERHEAD = HEADER_SIZE + CRC_SIZE
MAX_FRAME_SIZE = 244
MAX_PAYLOAD_SIZE = MAX_FRAME_SIZE - FRAME_OVERHEAD
MIN_FRAME_SIZE = 20
"""The smallest frame limit a device must support: one notification at MTU 23."""
MAX_ENCODED_SIZE = cobs.max_encoded_length(MAX_FRAME_SIZE)
"""Longest COBS-encoded frame, delimiter excluded."""
DELIMITER = b"\x00"


def frame_size_for_mtu(att_mtu: int) -> int:
    """Largest frame that fits one BLE notification at *att_mtu* (MTU - 3, capped)."""
    return max(MIN_FRAME_SIZE, min(MAX_FRAME_SIZE, att_mtu - 3))


@dataclass(frozen=True, slots=True)
class Frame:
    """A checked frame: header fields and the raw payload."""

    msg_type: int
    seq: int
    payload: bytes
    version: int = PROTOCOL_VERSION

    def to_bytes(self) -> bytes:
        """Header + payload + CRC, unencoded (as sent on BLE)."""
        return build_frame(self.msg_type, self.seq, self.payload, self.version)


def build_frame(msg_type: int, seq: int, payload: bytes, version: int = PROTOCOL_VERSION) -> bytes:
    """Build the unencoded bytes of a frame.

    Raises:
        FramingError: the payload is longer than :data:`MAX_PAYLOAD_SIZE`.
    """
    if len(payload) > MAX_PAYLOAD_SIZE:
        raise FramingError(
            f"payload of {len(payload)} bytes exceeds the maximum of {MAX_PAYLOAD_SIZE}"
        )
    body = HEADER.pack(version, msg_type, seq & 0xFFFF, len(payload)) + payload
    return body + crc16(body).to_bytes(2, "big")


def stuff(frame: bytes) -> bytes:
    """Wrap unencoded frame bytes for a byte stream: COBS plus the 0x00 delimiter."""
    return cobs.encode(frame) + DELIMITER


def parse_frame(data: bytes | bytearray | memoryview) -> Frame:
    """Check and split one unencoded frame (as received on BLE).

    Raises:
        FramingError: too short, length field disagrees, or wrong version.
        CrcError: the CRC does not match.
    """
    data = bytes(data)
    if len(data) < FRAME_OVERHEAD:
        raise FramingError(f"frame of {len(data)} bytes is shorter than {FRAME_OVERHEAD}")
    if len(data) > MAX_FRAME_SIZE:
        raise FramingError(f"frame of {len(data)} bytes exceeds the maximum of {MAX_FRAME_SIZE}")
    if crc16(data) != 0:
        raise CrcError("CRC mismatch")
    version, msg_type, seq, length = HEADER.unpack_from(data)
    if version != PROTOCOL_VERSION:
        raise FramingError(f"unsupported protocol version {version}")
    if length != len(data) - FRAME_OVERHEAD:
        raise FramingError(
            f"length field says {length} but the frame carries {len(data) - FRAME_OVERHEAD}"
        )
    return Frame(msg_type, seq, data[HEADER_SIZE:-CRC_SIZE], version)
