"""The raw capture of a session: an append-only, crash-safe record file (``.ksr``).

A recording is the source of truth for a session: every byte received from the
device exactly as it arrived, with its host receive time, every byte sent, the
session metadata and the host's marks (link lost, reconnected, user notes).
Everything else (decoded samples, CSV, Parquet, plots) is derived from it.
docs/recording-format.md is the normative description of the bytes; in short::

    file    = header record*
    header  = magic "\\x89KSR\\r\\n\\x1a\\n" | u16 major=1 | u16 minor=0 | u32 crc32(bytes 0..11)
    record  = u32 body_len | u8 kind | f64 host_time | body | u32 crc32(everything before)

all little-endian. Kinds: META (JSON), RX (bytes received), TX (bytes sent),
MARK (JSON), END (JSON).

Durability (:class:`Recorder`):

* records are buffered in memory and written to the OS (``write``) when 64 KiB
  are pending, when a record's host time is 0.25 s past the last write, and by
  a background thread when anything has been pending for 0.25 s of wall time
  (a quiet link). Data handed to the OS survives a SIGKILL of the process, so a
  kill loses at most ~0.25 s.
* the same background thread calls ``fsync`` about once per second, so a power
  cut loses at most ~1 s. ``fsync`` never runs in the caller's thread (it can
  take tens of milliseconds on a busy disk); the caller only ever waits for an
  in-memory append or a ``write`` to the page cache.

Reading (:class:`SessionReader`): an incomplete or damaged region that runs to
the end of the file is a *torn tail* (the normal result of a crash): it is
reported in :attr:`SessionReader.damage` and ignored. A damaged region followed
by a valid record is corruption: :class:`~knotsense.errors.SessionFileError`
naming the byte offset, unless ``salvage=True``, which skips to the next valid
record and reports how many bytes were skipped.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import platform
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from knotsense._version import __version__
from knotsense.errors import ConfigurationError, SessionFileError

__all__ = [
    "FILE_HEADER_SIZE",
    "FORMAT_MAJOR",
    "FORMAT_MINOR",
    "MAGIC",
    "MARK_GAP",
    "MARK_LINK_LOST",
    "MARK_NOTE",
    "MARK_RECONNECTED",
    "MARK_USER",
    "MAX_BODY",
    "SUFFIX",
    "Damage",
    "EndRecord",
    "MarkRecord",
    "MetaRecord",
    "Record",
    "RecordKind",
    "Recorder",
    "RxRecord",
    "SessionReader",
    "TxRecord",
    "UnknownRecord",
    "is_recording",
    "jsonable",
]

MAGIC = b"\x89KSR\r\n\x1a\n"
"""First 8 bytes of every recording (PNG-style: catches text-mode mangling)."""
FORMAT_MAJOR = 1
FORMAT_MINOR = 0
SUFFIX = ".ksr"
"""Conventional file suffix; readers identify a recording by :data:`MAGIC`."""

_FILE_HEAD = struct.Struct("<8sHH")
FILE_HEADER_SIZE = _FILE_HEAD.size + 4
_REC_HEAD = struct.Struct("<IBd")
_REC_HEAD_SIZE = _REC_HEAD.size  # 13
_CRC = struct.Struct("<I")
_OVERHEAD = _REC_HEAD_SIZE + _CRC.size  # 17
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


_JSON_KINDS = frozenset({RecordKind.META, RecordKind.MARK, RecordKind.END})
_MAX_KIND = 63
"""Kinds 1..63 are reserved for this format; readers skip unknown ones in that range."""


# --- records ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """Base of every record: byte offset in the file and host receive time (unix s)."""

    offset: int
    host_time: float


@dataclass(frozen=True, slots=True)
class MetaRecord(Record):
    """Session metadata; the first one is complete, later ones are updates (merged shallowly)."""

    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RxRecord(Record):
    """Bytes exactly as received: a byte-stream chunk (stream framing) or one packet."""

    data: bytes


@dataclass(frozen=True, slots=True)
class TxRecord(Record):
    """Bytes sent to the device."""

    data: bytes


@dataclass(frozen=True, slots=True)
class MarkRecord(Record):
    """A host-side mark: ``kind`` (link_lost, reconnected, gap, user, note ...) and details."""

    kind: str
    info: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EndRecord(Record):
    """Written at a clean close, with a summary."""

    summary: dict[str, Any]


@dataclass(frozen=True, slots=True)
class UnknownRecord(Record):
    """A record of a kind this version does not know (a newer writer); kept raw."""

    kind: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Damage:
    """What was wrong with a file and what the reader did about it.

    Attributes:
        torn_tail_offset: where an incomplete/damaged tail starts (None: clean end).
        torn_tail_bytes: bytes ignored at the end.
        skipped: (offset, bytes) of each corrupt region skipped by salvage.
        clean_close: the file ends with an END record.
    """

    torn_tail_offset: int | None = None
    torn_tail_bytes: int = 0
    skipped: tuple[tuple[int, int], ...] = ()
    clean_close: bool = False

    @property
    def skipped_bytes(self) -> int:
        return sum(n for _, n in self.skipped)

    @property
    def ok(self) -> bool:
        """Nothing was lost (a clean file, possibly still without END)."""
        return self.torn_tail_offset is None and not self.skipped

    def as_dict(self) -> dict[str, Any]:
        return {
            "torn_tail_offset": self.torn_tail_offset,
            "torn_tail_bytes": self.torn_tail_bytes,
            "skipped": [list(s) for s in self.skipped],
            "skipped_bytes": self.skipped_bytes,
            "clean_close": self.clean_close,
        }


# --- JSON helpers --------------------------------------------------------------


def jsonable(obj: Any) -> Any:
    """*obj* as plain JSON types: dataclasses to dicts, enums to ints, tuples to lists.

    Device info and stream config can be passed as protocol messages; numpy
    scalars and arrays become numbers and lists; bytes become hex strings.
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, int | float):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).hex()
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return jsonable(obj.tolist())
    if hasattr(obj, "to_dict"):
        return jsonable(obj.to_dict())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a recording's JSON")


def _json_bytes(obj: Any) -> bytes:
    try:
        return json.dumps(jsonable(obj), separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"recording metadata is not JSON-safe: {exc}") from None


def default_metadata(now: float | None = None) -> dict[str, Any]:
    """The host facts every recording carries (start time, host, OS, versions)."""
    now = time.time() if now is None else now
    return {
        "format": f"knotsense-recording/{FORMAT_MAJOR}.{FORMAT_MINOR}",
        "start_time": datetime.fromtimestamp(now, UTC).isoformat(),
        "start_unix": now,
        "host": socket.gethostname(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "knotsense": __version__,
    }


def _pack(kind: int, host_time: float, body: bytes) -> bytes:
    head = _REC_HEAD.pack(len(body), kind, host_time)
    crc = zlib.crc32(body, zlib.crc32(head))
    return b"".join((head, body, _CRC.pack(crc)))


def file_header() -> bytes:
    """The 16-byte header of a format 1.0 recording."""
    head = _FILE_HEAD.pack(MAGIC, FORMAT_MAJOR, FORMAT_MINOR)
    return head + _CRC.pack(zlib.crc32(head))


# --- writing -----------------------------------------------------------------


class Recorder:
    """Appends records to a new recording; see the module docstring for durability.

    Args:
        path: the file to create (suffix ``.ksr`` by convention).
        metadata: session metadata (device_url, framing "stream"|"packet",
            device_info, stream_config, calibration ...); host facts (start
            time, host, OS, versions) are filled in when missing.
        overwrite: replace an existing file instead of refusing.
        host_time: host time of the first META (default: ``start_unix`` or now).
        flush_interval: seconds of host time (and of wall time, checked by the
            background thread) after which buffered records are written.
        flush_bytes: buffered bytes that force a write.
        fsync_interval: seconds between fsyncs (background thread); 0 disables
            the thread, so writes happen only on calls and fsync only at close.

    Raises:
        SessionFileError: the file exists (without *overwrite*) or cannot be created.
        ConfigurationError: *metadata* lacks a valid ``framing`` or is not JSON-safe.

    Example:
        >>> with Recorder("s.ksr", {"framing": "stream", "device_url": "sim://"}) as rec:
        ...     rec.rx(chunk, time.time())
    """

    chunk_limit: int = MAX_BODY
    """RX/TX data longer than this is split into consecutive records."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        metadata: Mapping[str, Any],
        *,
        overwrite: bool = False,
        host_time: float | None = None,
        flush_interval: float = 0.25,
        flush_bytes: int = 64 * 1024,
        fsync_interval: float = 1.0,
    ) -> None:
        self.path = Path(path)
        meta = dict(jsonable(dict(metadata)))
        framing = meta.get("framing")
        if framing not in ("stream", "packet"):
            raise ConfigurationError(
                f"recording metadata needs framing 'stream' or 'packet', got {framing!r}"
            )
        now = time.time()
        start = host_time if host_time is not None else meta.get("start_unix", now)
        for key, value in default_metadata(float(start)).items():
            meta.setdefault(key, value)
        first = file_header() + _pack(RecordKind.META, float(start), _json_bytes(meta))
        try:
            self._fd = os.open(
                self.path,
                os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL),
                0o644,
            )
        except FileExistsError:
            raise SessionFileError(
                f"{self.path}: already exists (refusing to overwrite a recording)"
            ) from None
        except OSError as exc:
            raise SessionFileError(f"{self.path}: cannot create: {exc.strerror}") from None
        self.metadata = meta
        self.flush_interval = flush_interval
        self.flush_bytes = flush_bytes
        self.fsync_interval = fsync_interval
        self.records = 1
        self.rx_bytes = 0
        self.tx_bytes = 0
        self.bytes_written = 0
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._closed = False
        self._error: BaseException | None = None
        self._last_flush_host = float(start)
        self._last_flush_wall = time.monotonic()
        self._unsynced = False
        self._first_time = float(start)
        self._last_time = float(start)
        try:
            self._write(first)
            os.fsync(self._fd)  # the header and first META are durable at once
        except OSError as exc:
            os.close(self._fd)
            raise SessionFileError(f"{self.path}: cannot write: {exc.strerror}") from None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if fsync_interval > 0:
            self._thread = threading.Thread(
                target=self._background, name=f"knotsense-recorder:{self.path.name}", daemon=True
            )
            self._thread.start()

    # public API

    def rx(self, data: bytes | bytearray | memoryview, host_time: float) -> None:
        """Record bytes received from the device at *host_time* (unix seconds)."""
        data = bytes(data)
        self.rx_bytes += len(data)
        step = self.chunk_limit
        for i in range(0, max(len(data), 1), step):
            self._append(RecordKind.RX, host_time, data[i : i + step])

    def tx(self, data: bytes | bytearray | memoryview, host_time: float) -> None:
        """Record bytes sent to the device at *host_time*."""
        data = bytes(data)
        self.tx_bytes += len(data)
        step = self.chunk_limit
        for i in range(0, max(len(data), 1), step):
            self._append(RecordKind.TX, host_time, data[i : i + step])

    def meta(self, update: Mapping[str, Any], host_time: float) -> None:
        """Record a metadata update (e.g. new stream config, device info after reconnect)."""
        body = _json_bytes(dict(update))
        self.metadata.update(json.loads(body))
        self._append(RecordKind.META, host_time, body)

    def mark(self, kind: str, info: Mapping[str, Any] | None, host_time: float) -> None:
        """Record a mark: ``link_lost``, ``reconnected``, ``gap``, ``user``, ``note`` or other."""
        payload = {"kind": str(kind), **dict(info or {})}
        payload["kind"] = str(kind)
        self._append(RecordKind.MARK, host_time, _json_bytes(payload))

    def flush(self, fsync: bool = False) -> None:
        """Write buffered records to the OS now (and fsync if asked)."""
        with self._lock:
            self._flush_locked()
        if fsync and not self._closed:
            self._fsync()

    def close(
        self, summary: Mapping[str, Any] | None = None, host_time: float | None = None
    ) -> None:
        """Append END (with *summary* and counters), flush, fsync and close. Idempotent.

        END's host time is *host_time*, default the last record's (the caller's clock).
        """
        if self._closed:
            return
        end = {
            "records": self.records + 1,
            "rx_bytes": self.rx_bytes,
            "tx_bytes": self.tx_bytes,
            "duration_s": self._last_time - self._first_time,
            **dict(summary or {}),
        }
        try:
            self._append(
                RecordKind.END,
                self._last_time if host_time is None else host_time,
                _json_bytes(end),
            )
        finally:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            try:
                with self._lock:
                    self._flush_locked()
                    self._closed = True
                os.fsync(self._fd)
            except OSError as exc:
                raise SessionFileError(f"{self.path}: cannot write: {exc.strerror}") from None
            finally:
                self._closed = True
                os.close(self._fd)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close({"error": f"{exc_type.__name__}: {exc}"} if exc_type else None)

    # internals

    def _append(self, kind: int, host_time: float, body: bytes) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise SessionFileError(f"{self.path}: cannot write: {error}") from None
        record = _pack(kind, host_time, body)
        with self._lock:
            if self._closed:
                raise SessionFileError(f"{self.path}: recorder is closed")
            self._buf += record
            self.records += 1
            self._last_time = host_time
            if (
                len(self._buf) >= self.flush_bytes
                or host_time - self._last_flush_host >= self.flush_interval
            ):
                try:
                    self._flush_locked()
                except OSError as exc:
                    raise SessionFileError(f"{self.path}: cannot write: {exc.strerror}") from None

    def _flush_locked(self) -> None:
        if self._buf:
            self._write(self._buf)
            self._buf = bytearray()
            self._unsynced = True
        self._last_flush_wall = time.monotonic()
        self._last_flush_host = self._last_time

    def _write(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
            self.bytes_written += n

    def _fsync(self) -> None:
        self._unsynced = False
        os.fsync(self._fd)

    def _background(self) -> None:
        """Write a quiet buffer after flush_interval, fsync every fsync_interval."""
        tick = min(self.flush_interval, self.fsync_interval) / 2
        last_sync = time.monotonic()
        while not self._stop.wait(tick):
            try:
                now = time.monotonic()
                if self._buf and now - self._last_flush_wall >= self.flush_interval:
                    with self._lock:
                        if not self._closed:
                            self._flush_locked()
                if self._unsynced and now - last_sync >= self.fsync_interval:
                    last_sync = now
                    self._fsync()
            except OSError as exc:  # reported to the caller on its next call
                self._error = exc


# --- reading -------------------------------------------------------------------


def is_recording(path: str | os.PathLike[str]) -> bool:
    """True when *path* starts with the recording magic (whatever its suffix)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _check_header(path: Path, data: bytes | memoryview) -> None:
    size = len(data)
    if size == 0:
        raise SessionFileError(f"{path}: empty file, not a knotsense recording")
    n = min(size, len(MAGIC))
    if bytes(data[:n]) != MAGIC[:n]:
        raise SessionFileError(f"{path}: not a knotsense recording (bad magic)")
    if size < FILE_HEADER_SIZE:
        raise SessionFileError(f"{path}: truncated inside the file header ({size} bytes)")
    _, major, minor = _FILE_HEAD.unpack_from(data)
    (crc,) = _CRC.unpack_from(data, _FILE_HEAD.size)
    if zlib.crc32(data[: _FILE_HEAD.size]) != crc:
        raise SessionFileError(f"{path}: corrupt file header (CRC mismatch at offset 12)")
    if major != FORMAT_MAJOR:
        raise SessionFileError(
            f"{path}: recording format {major}.{minor} is not supported (this reader: "
            f"{FORMAT_MAJOR}.x)"
        )


class _Bad(Exception):
    """A record at some offset does not parse; ``incomplete`` if it runs past EOF."""

    def __init__(self, why: str, incomplete: bool = False) -> None:
        super().__init__(why)
        self.why = why
        self.incomplete = incomplete


class SessionReader:
    """Reads a recording: its records, merged metadata and a damage report.

    Args:
        path: a recording (identified by its magic, any suffix).
        salvage: skip corrupt regions inside the file instead of raising.

    Raises:
        SessionFileError: missing, empty, not a recording, cut inside the
            header, no META record, or (without *salvage*) corrupt inside.

    The file is scanned once at open (records are checked, not decoded);
    iterating yields typed frozen records in file order.
    """

    def __init__(self, path: str | os.PathLike[str], *, salvage: bool = False) -> None:
        self.path = Path(path)
        self.salvage = salvage
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise SessionFileError(f"{self.path}: no such file") from None
        except IsADirectoryError:
            raise SessionFileError(f"{self.path}: is a directory, not a recording") from None
        except OSError as exc:
            raise SessionFileError(f"{self.path}: cannot read: {exc.strerror}") from None
        _check_header(self.path, data)
        self._data = data
        self._index, self.damage = self._scan()
        meta = [i for i, (_, kind, _) in enumerate(self._index) if kind == RecordKind.META]
        if not meta:
            raise SessionFileError(f"{self.path}: no META record (not a complete recording)")
        self.metadata: dict[str, Any] = {}
        for i in meta:
            record = self._record(*self._index[i])
            assert isinstance(record, MetaRecord)
            self.metadata.update(record.data)

    # scanning

    def _check_at(self, pos: int) -> tuple[int, int]:
        """(kind, total size) of a valid record at *pos*, else raise :class:`_Bad`."""
        data = self._data
        size = len(data)
        if size - pos < _REC_HEAD_SIZE:
            raise _Bad("incomplete record header", incomplete=True)
        length, kind, _ = _REC_HEAD.unpack_from(data, pos)
        if length > MAX_BODY:
            raise _Bad(f"impossible record length {length}")
        if not 1 <= kind <= _MAX_KIND:
            raise _Bad(f"invalid record kind {kind}")
        end = pos + _OVERHEAD + length
        if end > size:
            raise _Bad("record runs past the end of the file", incomplete=True)
        (crc,) = _CRC.unpack_from(data, end - 4)
        if zlib.crc32(memoryview(data)[pos : end - 4]) != crc:
            raise _Bad("CRC mismatch")
        return kind, end - pos

    def _resync(self, pos: int) -> int | None:
        """Offset of the next valid record after *pos*, or None."""
        data = self._data
        size = len(data)
        kinds = bytes(range(1, _MAX_KIND + 1))
        p = pos + 1
        while p + _OVERHEAD <= size:
            # Cheap filter first: the kind byte must be legal.
            if data[p + 4] in kinds:
                try:
                    self._check_at(p)
                except _Bad:
                    pass
                else:
                    return p
            p += 1
        return None

    def _scan(self) -> tuple[list[tuple[int, int, int]], Damage]:
        index: list[tuple[int, int, int]] = []
        skipped: list[tuple[int, int]] = []
        pos = FILE_HEADER_SIZE
        size = len(self._data)
        torn_at: int | None = None
        while pos < size:
            try:
                kind, total = self._check_at(pos)
            except _Bad as bad:
                nxt = self._resync(pos)
                if nxt is None:
                    torn_at = pos  # nothing valid follows: a torn tail
                    break
                if not self.salvage:
                    raise SessionFileError(
                        f"{self.path}: corrupt record at byte offset {pos} ({bad.why}); "
                        f"{nxt - pos} bytes damaged before valid records (salvage skips them)"
                    ) from None
                skipped.append((pos, nxt - pos))
                pos = nxt
                continue
            index.append((pos, kind, total))
            pos += total
        clean = bool(index) and index[-1][1] == RecordKind.END and torn_at is None
        damage = Damage(
            torn_tail_offset=torn_at,
            torn_tail_bytes=0 if torn_at is None else size - torn_at,
            skipped=tuple(skipped),
            clean_close=clean,
        )
        return index, damage

    # records

    def _record(self, pos: int, kind: int, total: int) -> Record:
        data = self._data
        _, _, host_time = _REC_HEAD.unpack_from(data, pos)
        body = data[pos + _REC_HEAD_SIZE : pos + total - 4]
        if kind in _JSON_KINDS:
            try:
                obj = json.loads(body)
            except (UnicodeDecodeError, ValueError):
                obj = None
            if not isinstance(obj, dict):
                raise SessionFileError(
                    f"{self.path}: record at byte offset {pos} is not a JSON object"
                )
            if kind == RecordKind.META:
                return MetaRecord(pos, host_time, obj)
            if kind == RecordKind.MARK:
                return MarkRecord(pos, host_time, str(obj.pop("kind", "")), obj)
            return EndRecord(pos, host_time, obj)
        if kind == RecordKind.RX:
            return RxRecord(pos, host_time, body)
        if kind == RecordKind.TX:
            return TxRecord(pos, host_time, body)
        return UnknownRecord(pos, host_time, kind, body)

    def __iter__(self) -> Iterator[Record]:
        for entry in self._index:
            yield self._record(*entry)

    def records(self, *kinds: type[Record]) -> Iterator[Record]:
        """Records of the given classes (all when none given), in file order."""
        for record in self:
            if not kinds or isinstance(record, kinds):
                yield record

    def __len__(self) -> int:
        return len(self._index)

    @property
    def framing(self) -> str:
        """ "stream" or "packet", from the metadata."""
        framing = self.metadata.get("framing")
        if framing not in ("stream", "packet"):
            raise SessionFileError(f"{self.path}: metadata has no valid framing ({framing!r})")
        return framing

    @property
    def start_time(self) -> float:
        """Session start, unix seconds (metadata ``start_unix``, else the first record)."""
        start = self.metadata.get("start_unix")
        if isinstance(start, int | float):
            return float(start)
        return float(_REC_HEAD.unpack_from(self._data, self._index[0][0])[2])

    @property
    def end_time(self) -> float:
        """Host time of the last record."""
        return float(_REC_HEAD.unpack_from(self._data, self._index[-1][0])[2])

    @property
    def summary(self) -> dict[str, Any] | None:
        """The END record's summary, when the file was closed cleanly."""
        if self.damage.clean_close:
            record = self._record(*self._index[-1])
            assert isinstance(record, EndRecord)
            return record.summary
        return None
