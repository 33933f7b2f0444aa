"""The XDF container (Extensible Data Format, LabRecorder's files): write and read.

Written from the specification (github.com/sccn/xdf, "Specifications"): there is
no maintained writer on PyPI, and a reader of our own gives one-line errors
instead of a reader's traceback. All integers are little-endian::

    file     = "XDF:" chunk*
    chunk    = varlen(length) | u16 tag | content          length counts tag + content
    varlen   = u8 n (1, 4 or 8) | n-byte unsigned integer

    tag 1 FileHeader    XML <info><version>1.0</version>...</info>
    tag 2 StreamHeader  u32 stream_id | XML <info> (LSL stream info: name, type,
                        channel_count, nominal_srate, channel_format, source_id, desc)
    tag 3 Samples       u32 stream_id | varlen(n) | sample*n
          sample        = u8 ts_bytes (0 or 8) | [f64 timestamp] | values
          values        numeric: channel_count values of channel_format;
                        string: per channel varlen(len) | utf-8 bytes
    tag 4 ClockOffset   u32 stream_id | f64 collection_time | f64 offset_value
    tag 5 Boundary      16-byte UUID 43A546DC-CBF5-410F-B30E-D5467383CBE4
    tag 6 StreamFooter  u32 stream_id | XML <info><first_timestamp>...</info>

A sample without a timestamp (ts_bytes 0) continues the previous one by
1/nominal_srate, as the specification says.
"""

from __future__ import annotations

import io
import os
import struct
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from knotsense.errors import ConfigurationError, SessionFileError

__all__ = [
    "BOUNDARY_UUID",
    "MAGIC",
    "XdfStream",
    "XdfWriter",
    "read_xdf",
    "stream_info_xml",
]

MAGIC = b"XDF:"
BOUNDARY_UUID = bytes.fromhex("43A546DCCBF5410FB30ED5467383CBE4")

TAG_FILE_HEADER = 1
TAG_STREAM_HEADER = 2
TAG_SAMPLES = 3
TAG_CLOCK_OFFSET = 4
TAG_BOUNDARY = 5
TAG_STREAM_FOOTER = 6

FORMATS: dict[str, str] = {
    "float32": "<f4",
    "double64": "<f8",
    "int8": "<i1",
    "int16": "<i2",
    "int32": "<i4",
    "int64": "<i8",
}
"""Numeric channel formats and their little-endian numpy dtypes (plus "string")."""

_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_F64 = struct.Struct("<d")
_CLOCK = struct.Struct("<Idd")


def _varlen(n: int) -> bytes:
    if n < 0x100:
        return bytes((1, n))
    if n < 0x1_0000_0000:
        return b"\x04" + _U32.pack(n)
    return b"\x08" + struct.pack("<Q", n)


def _chunk(tag: int, content: bytes) -> bytes:
    return _varlen(len(content) + 2) + _U16.pack(tag) + content


def stream_info_xml(
    *,
    name: str,
    type: str,
    channel_count: int,
    nominal_srate: float,
    channel_format: str,
    source_id: str,
    desc: ET.Element | None = None,
    created_at: float = 0.0,
) -> str:
    """An LSL-style stream ``<info>`` document, as LabRecorder stores in a StreamHeader."""
    info = ET.Element("info")
    for tag, value in (
        ("name", name),
        ("type", type),
        ("channel_count", str(channel_count)),
        ("nominal_srate", repr(float(nominal_srate))),
        ("channel_format", channel_format),
        ("source_id", source_id),
        ("version", "1.1"),
        ("created_at", repr(float(created_at))),
        ("uid", ""),
        ("session_id", "default"),
        ("hostname", ""),
    ):
        ET.SubElement(info, tag).text = value
    info.append(desc if desc is not None else ET.Element("desc"))
    return '<?xml version="1.0"?>' + ET.tostring(info, encoding="unicode")


@dataclass
class _Out:
    channel_format: str
    channel_count: int
    first: float | None = None
    last: float | None = None
    count: int = 0
    offsets: list[tuple[float, float]] = field(default_factory=list)


class XdfWriter:
    """Writes an XDF file chunk by chunk to an open binary file.

    Streams are declared with :meth:`add_stream`, filled with :meth:`samples`
    (and optionally :meth:`clock_offset`), and :meth:`close` writes one
    StreamFooter per stream (first/last timestamp, count, clock offsets).
    """

    def __init__(self, fh: IO[bytes], boundary_every: int = 64) -> None:
        self._fh = fh
        self._streams: dict[int, _Out] = {}
        self._chunks_since_boundary = 0
        self.boundary_every = boundary_every
        fh.write(MAGIC)
        header = '<?xml version="1.0"?><info><version>1.0</version></info>'
        fh.write(_chunk(TAG_FILE_HEADER, header.encode()))

    def add_stream(self, stream_id: int, info_xml: str) -> None:
        """Declare stream *stream_id* with its ``<info>`` XML (see :func:`stream_info_xml`)."""
        info = ET.fromstring(info_xml)
        fmt = (info.findtext("channel_format") or "").strip()
        if fmt not in FORMATS and fmt != "string":
            raise ConfigurationError(f"XDF stream {stream_id}: unknown channel_format {fmt!r}")
        if stream_id in self._streams:
            raise ConfigurationError(f"XDF stream {stream_id} declared twice")
        count = int(info.findtext("channel_count") or 0)
        self._streams[stream_id] = _Out(fmt, count)
        self._fh.write(_chunk(TAG_STREAM_HEADER, _U32.pack(stream_id) + info_xml.encode()))

    def samples(
        self, stream_id: int, timestamps: Sequence[float] | NDArray[Any], values: Any
    ) -> None:
        """One Samples chunk: every sample with its timestamp.

        *values* is an ``(n, channel_count)`` array for numeric streams, or a
        sequence of n sequences of strings for string streams.
        """
        out = self._streams[stream_id]
        ts = np.asarray(timestamps, dtype="<f8")
        n = int(ts.size)
        if n == 0:
            return
        body = io.BytesIO()
        body.write(_U32.pack(stream_id))
        body.write(_varlen(n))
        if out.channel_format == "string":
            rows = list(values)
            if len(rows) != n:
                raise ConfigurationError(f"XDF stream {stream_id}: {len(rows)} rows, {n} stamps")
            for t, row in zip(ts.tolist(), rows, strict=True):
                if len(row) != out.channel_count:
                    raise ConfigurationError(f"XDF stream {stream_id}: wrong channel count")
                body.write(b"\x08" + _F64.pack(t))
                for value in row:
                    data = str(value).encode("utf-8")
                    body.write(_varlen(len(data)) + data)
        else:
            arr = np.asarray(values, dtype=FORMATS[out.channel_format])
            if arr.shape != (n, out.channel_count):
                raise ConfigurationError(
                    f"XDF stream {stream_id}: values of shape {arr.shape}, "
                    f"expected ({n}, {out.channel_count})"
                )
            width = arr.dtype.itemsize * out.channel_count
            rec = np.empty((n, 9 + width), dtype=np.uint8)
            rec[:, 0] = 8
            rec[:, 1:9] = ts.view(np.uint8).reshape(n, 8)
            rec[:, 9:] = np.ascontiguousarray(arr).view(np.uint8).reshape(n, width)
            body.write(rec.tobytes())
        self._fh.write(_chunk(TAG_SAMPLES, body.getvalue()))
        out.first = float(ts[0]) if out.first is None else out.first
        out.last = float(ts[-1])
        out.count += n
        self._chunks_since_boundary += 1
        if self.boundary_every and self._chunks_since_boundary >= self.boundary_every:
            self.boundary()

    def clock_offset(self, stream_id: int, collection_time: float, offset: float) -> None:
        """A ClockOffset chunk: at *collection_time*, the stream's clock was *offset* behind."""
        self._streams[stream_id].offsets.append((collection_time, offset))
        self._fh.write(_chunk(TAG_CLOCK_OFFSET, _CLOCK.pack(stream_id, collection_time, offset)))

    def boundary(self) -> None:
        """A Boundary chunk: lets a reader resynchronise inside a damaged file."""
        self._fh.write(_chunk(TAG_BOUNDARY, BOUNDARY_UUID))
        self._chunks_since_boundary = 0

    def close(self) -> None:
        """Write the StreamFooters (the file object stays open: the caller owns it)."""
        for stream_id, out in self._streams.items():
            info = ET.Element("info")
            first = out.first if out.first is not None else 0.0
            last = out.last if out.last is not None else 0.0
            ET.SubElement(info, "first_timestamp").text = repr(first)
            ET.SubElement(info, "last_timestamp").text = repr(last)
            ET.SubElement(info, "sample_count").text = str(out.count)
            offsets = ET.SubElement(info, "clock_offsets")
            for t, value in out.offsets:
                item = ET.SubElement(offsets, "offset")
                ET.SubElement(item, "time").text = repr(t)
                ET.SubElement(item, "value").text = repr(value)
            xml = '<?xml version="1.0"?>' + ET.tostring(info, encoding="unicode")
            self._fh.write(_chunk(TAG_STREAM_FOOTER, _U32.pack(stream_id) + xml.encode()))


# --- reading ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class XdfStream:
    """One stream of an XDF file.

    Attributes:
        stream_id: the file's id for it.
        info: the StreamHeader's ``<info>`` element (name, type, desc ...).
        time_stamps: (n,) float64, as stored (no clock correction, no dejitter).
        time_series: (n, channels) array for numeric streams, list of lists of str for strings.
        clock_offsets: (collection time, offset) pairs from ClockOffset chunks.
        footer: the StreamFooter's ``<info>``, or None (LabRecorder killed mid-run).
    """

    stream_id: int
    info: ET.Element
    time_stamps: NDArray[np.float64]
    time_series: Any
    clock_offsets: tuple[tuple[float, float], ...]
    footer: ET.Element | None

    @property
    def name(self) -> str:
        return (self.info.findtext("name") or "").strip()

    @property
    def type(self) -> str:
        return (self.info.findtext("type") or "").strip()

    @property
    def channel_format(self) -> str:
        return (self.info.findtext("channel_format") or "").strip()

    @property
    def channel_count(self) -> int:
        return int((self.info.findtext("channel_count") or "0").strip())

    @property
    def nominal_srate(self) -> float:
        return float((self.info.findtext("nominal_srate") or "0").strip())

    @property
    def desc(self) -> ET.Element | None:
        return self.info.find("desc")


@dataclass
class _In:
    info: ET.Element
    fmt: str
    count: int
    srate: float
    stamps: list[NDArray[np.float64]] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    strings: list[list[str]] = field(default_factory=list)
    offsets: list[tuple[float, float]] = field(default_factory=list)
    footer: ET.Element | None = None
    last: float = 0.0


class _Bad(Exception):
    pass


def _read_varlen(data: memoryview, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise _Bad("truncated length field")
    n = data[pos]
    if n not in (1, 4, 8):
        raise _Bad(f"invalid length-field size {n}")
    if pos + 1 + n > len(data):
        raise _Bad("truncated length field")
    return int.from_bytes(data[pos + 1 : pos + 1 + n], "little"), pos + 1 + n


def _xml(path: Path, raw: bytes | memoryview, where: str) -> ET.Element:
    try:
        return ET.fromstring(bytes(raw).decode("utf-8"))
    except (ET.ParseError, UnicodeDecodeError) as exc:
        raise SessionFileError(f"{path}: malformed XML in the {where}: {exc}") from None


def read_xdf(path: str | os.PathLike[str]) -> list[XdfStream]:
    """All streams of an XDF file, in StreamHeader order.

    A chunk cut off at the end of the file (a recorder that was killed) ends
    the reading; everything before it is kept.

    Raises:
        SessionFileError: not an XDF file, a malformed chunk inside, or a
            Samples chunk that does not fit its stream's header.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise SessionFileError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if raw[:4] != MAGIC:
        raise SessionFileError(f"{p}: not an XDF file (no XDF: magic)")
    data = memoryview(raw)
    streams: dict[int, _In] = {}
    pos = 4
    seen_header = False
    while pos < len(data):
        start = pos
        try:
            length, pos = _read_varlen(data, pos)
        except _Bad as bad:
            if "truncated" in str(bad):
                break  # torn tail
            raise SessionFileError(f"{p}: malformed chunk at byte {start}: {bad}") from None
        if length < 2:
            raise SessionFileError(f"{p}: malformed chunk at byte {start}: length {length}")
        if pos + length > len(data):
            break  # torn tail
        (tag,) = _U16.unpack_from(data, pos)
        body = data[pos + 2 : pos + length]
        pos += length
        try:
            seen_header = _take_chunk(p, streams, tag, body, seen_header)
        except _Bad as bad:
            raise SessionFileError(f"{p}: malformed chunk at byte {start}: {bad}") from None
    if not seen_header:
        raise SessionFileError(f"{p}: no FileHeader chunk (not a complete XDF file)")
    return [_finish(sid, s) for sid, s in streams.items()]


def _take_chunk(p: Path, streams: dict[int, _In], tag: int, body: memoryview, seen: bool) -> bool:
    if tag == TAG_FILE_HEADER:
        _xml(p, body, "FileHeader")
        return True
    if not seen:
        raise _Bad("the first chunk is not a FileHeader")
    if tag == TAG_BOUNDARY:
        if bytes(body) != BOUNDARY_UUID:
            raise _Bad("Boundary chunk with a wrong UUID")
        return seen
    if len(body) < 4:
        raise _Bad(f"chunk of tag {tag} too short for a stream id")
    (sid,) = _U32.unpack_from(body, 0)
    rest = body[4:]
    if tag == TAG_STREAM_HEADER:
        info = _xml(p, rest, f"StreamHeader of stream {sid}")
        fmt = (info.findtext("channel_format") or "").strip()
        if fmt not in FORMATS and fmt != "string":
            raise _Bad(f"stream {sid} has unknown channel_format {fmt!r}")
        try:
            count = int((info.findtext("channel_count") or "").strip())
            srate = float((info.findtext("nominal_srate") or "0").strip() or 0)
        except ValueError:
            raise _Bad(f"stream {sid} has a non-numeric channel_count or nominal_srate") from None
        if count < 1:
            raise _Bad(f"stream {sid} has channel_count {count}")
        streams[sid] = _In(info, fmt, count, srate)
    elif tag in (TAG_SAMPLES, TAG_CLOCK_OFFSET, TAG_STREAM_FOOTER):
        stream = streams.get(sid)
        if stream is None:
            raise _Bad(f"chunk of tag {tag} for stream {sid}, which has no StreamHeader")
        if tag == TAG_SAMPLES:
            _samples(stream, rest)
        elif tag == TAG_CLOCK_OFFSET:
            if len(rest) != 16:
                raise _Bad(f"ClockOffset chunk of {len(rest) + 4} bytes (expected 20)")
            stream.offsets.append(struct.unpack("<dd", rest))
        else:
            stream.footer = _xml(p, rest, f"StreamFooter of stream {sid}")
    # Unknown tags are skipped: a newer writer may add chunk types.
    return seen


def _samples(s: _In, body: memoryview) -> None:
    n, pos = _read_varlen(body, 0)
    step = 1.0 / s.srate if s.srate > 0 else 0.0
    if s.fmt != "string":
        dtype = np.dtype(FORMATS[s.fmt])
        width = dtype.itemsize * s.count
        if len(body) - pos == n * (9 + width):  # every sample stamped: vectorised
            rec = np.frombuffer(body, dtype=np.uint8, offset=pos).reshape(n, 9 + width)
            if n and (rec[:, 0] == 8).all():
                stamps = rec[:, 1:9].copy().view("<f8").ravel()
                s.stamps.append(stamps.astype(np.float64))
                s.values.append(rec[:, 9:].copy().view(dtype).reshape(n, s.count))
                s.last = float(stamps[-1]) if n else s.last
                return
        stamps = np.empty(n, dtype=np.float64)
        values = np.empty((n, s.count), dtype=dtype)
        for k in range(n):
            pos = _stamp(s, body, pos, stamps, k, step)
            if pos + width > len(body):
                raise _Bad("Samples chunk shorter than its sample count")
            values[k] = np.frombuffer(body, dtype=dtype, count=s.count, offset=pos)
            pos += width
        s.stamps.append(stamps)
        s.values.append(values)
    else:
        stamps = np.empty(n, dtype=np.float64)
        for k in range(n):
            pos = _stamp(s, body, pos, stamps, k, step)
            row = []
            for _ in range(s.count):
                size, pos = _read_varlen(body, pos)
                if pos + size > len(body):
                    raise _Bad("Samples chunk shorter than its strings")
                try:
                    row.append(bytes(body[pos : pos + size]).decode("utf-8"))
                except UnicodeDecodeError:
                    raise _Bad("a string sample is not UTF-8") from None
                pos += size
            s.strings.append(row)
        s.stamps.append(stamps)
    if pos != len(body):
        raise _Bad(f"{len(body) - pos} stray bytes after the samples")


def _stamp(
    s: _In, body: memoryview, pos: int, out: NDArray[np.float64], k: int, step: float
) -> int:
    if pos >= len(body):
        raise _Bad("Samples chunk shorter than its sample count")
    size = body[pos]
    if size == 8:
        if pos + 9 > len(body):
            raise _Bad("Samples chunk shorter than its sample count")
        (s.last,) = _F64.unpack_from(body, pos + 1)
        pos += 9
    elif size == 0:
        s.last += step
        pos += 1
    else:
        raise _Bad(f"invalid timestamp size {size}")
    out[k] = s.last
    return pos


def _finish(sid: int, s: _In) -> XdfStream:
    stamps = np.concatenate(s.stamps) if s.stamps else np.zeros(0)
    if s.fmt == "string":
        series: Any = s.strings
    elif s.values:
        series = np.concatenate(s.values)
    else:
        series = np.zeros((0, s.count), dtype=FORMATS[s.fmt])
    return XdfStream(sid, s.info, stamps, series, tuple(s.offsets), s.footer)
