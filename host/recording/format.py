"""The bytes of a ``.ksr`` recording: file header, record framing, record kinds.

docs/recording-format.md is the normative description; in short::

    file    = header record*
    header  = magic "\\x89KSR\\r\\n\\x1a\\n" | u16 major=1 | u16 minor=0 | u32 crc32(bytes 0..11)
    record  = u32 body_len | u8 kind | f64 host_time | body | u32 crc32(everything before)

      0      4     5          13            13+len
      +------+-----+----------+-------------+--------+
      | len  |kind | host_time| body (len B)| crc32  |
      +------+-----+----------+-------------+--------+

all little-endian. Kinds: META (JSON), RX (bytes received), TX (bytes sent),
MARK (JSON), END (JSON). The writer and the reader both build on this module,
so the layout is written down once.
"""

from __future__ import annotations

import enum
import struct
import zlib
from pathlib import Path

from knotsense.errors import SessionFileError

__all__ = [
    "FILE_HEADER_SIZE",
    "FORMAT_MAJOR",
    "FORMAT_MINOR",
    "LINK_MARKS",
    "MAGIC",
    "MARK_GAP",
    "MARK_LINK_LOST",
    "MARK_NOTE",
    "MARK_RECONNECTED",
    "MARK_USER",
    "MAX_BODY",
    "MAX_KIND",
    "SUFFIX",
    "RecordKind",
    "check_header",
    "file_header",
    "pack_record",
]

MAGIC = b"\x89KSR\r\n\x1a\n"
"""First 8 bytes of every recording (PNG-style: catches text-mode mangling)."""
FORMAT_MAJOR = 1
FORMAT_MINOR = 0
SUFFIX = ".ksr"
"""Conventional file suffix; readers identify a recording by :data:`MAGIC`."""

FILE_HEAD = struct.Struct("<8sHH")
FILE_HEADER_SIZE = FILE_HEAD.size + 4
REC_HEAD = struct.Struct("<IBd")
REC_HEAD_SIZE = REC_HEAD.size  # 13
CRC = struct.Struct("<I")
OVERHEAD = REC_HEAD_SIZE + CRC.size  # 17
MAX_BODY = 16 * 1024 * 1024
"""Largest legal body; a longer length field is corruption. Larger RX/TX data is split."""

MARK_LINK_LOST = "link_lost"
MARK_RECONNECTED = "reconnected"
MARK_GAP = "gap"
MARK_USER = "user"
MARK_NOTE = "note"
LINK_MARKS = frozenset({MARK_LINK_LOST, MARK_RECONNECTED})
"""MARK kinds at which the link (and so the decoder's partial input) restarts."""


class RecordKind(enum.IntEnum):
    """The ``kind`` byte of a record."""

    META = 1
    RX = 2
    TX = 3
    MARK = 4
    END = 5


JSON_KINDS = frozenset({RecordKind.META, RecordKind.MARK, RecordKind.END})
MAX_KIND = 63
"""Kinds 1..63 are reserved for this format; readers skip unknown ones in that range."""


def pack_record(kind: int, host_time: float, body: bytes) -> bytes:
    """One framed record: header, *body*, CRC-32 of both."""
    head = REC_HEAD.pack(len(body), kind, host_time)
    crc = zlib.crc32(body, zlib.crc32(head))
    return b"".join((head, body, CRC.pack(crc)))


def file_header() -> bytes:
    """The 16-byte header of a format 1.0 recording."""
    head = FILE_HEAD.pack(MAGIC, FORMAT_MAJOR, FORMAT_MINOR)
    return head + CRC.pack(zlib.crc32(head))


def check_header(path: Path, data: bytes | memoryview) -> None:
    """Raise SessionFileError unless *data* starts with a readable format-1 header."""
    size = len(data)
    if size == 0:
        raise SessionFileError(f"{path}: empty file, not a knotsense recording")
    n = min(size, len(MAGIC))
    if bytes(data[:n]) != MAGIC[:n]:
        raise SessionFileError(f"{path}: not a knotsense recording (bad magic)")
    if size < FILE_HEADER_SIZE:
        raise SessionFileError(f"{path}: truncated inside the file header ({size} bytes)")
    _, major, minor = FILE_HEAD.unpack_from(data)
    (crc,) = CRC.unpack_from(data, FILE_HEAD.size)
    if zlib.crc32(data[: FILE_HEAD.size]) != crc:
        raise SessionFileError(f"{path}: corrupt file header (CRC mismatch at offset 12)")
    if major != FORMAT_MAJOR:
        raise SessionFileError(
            f"{path}: recording format {major}.{minor} is not supported (this reader: "
            f"{FORMAT_MAJOR}.x)"
        )
