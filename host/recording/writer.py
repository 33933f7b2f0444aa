"""Writing a recording: :class:`Recorder`, append-only and crash-safe.

Durability:

* records are buffered in memory and written to the OS (``write``) when 64 KiB
  are pending, when a record's host time is 0.25 s past the last write, and by
  a background thread when anything has been pending for 0.25 s of wall time
  (a quiet link). Data handed to the OS survives a SIGKILL of the process, so a
  kill loses at most ~0.25 s.
* the same background thread calls ``fsync`` about once per second, so a power
  cut loses at most ~1 s. ``fsync`` never runs in the caller's thread (it can
  take tens of milliseconds on a busy disk); the caller only ever waits for an
  in-memory append or a ``write`` to the page cache.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from knotsense.errors import ConfigurationError, SessionFileError
from knotsense.host.recording.format import MAX_BODY, RecordKind, file_header, pack_record
from knotsense.host.recording.metadata import default_metadata, json_bytes, jsonable

__all__ = ["Recorder"]


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
        first = file_header() + pack_record(RecordKind.META, float(start), json_bytes(meta))
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
        body = json_bytes(dict(update))
        self.metadata.update(json.loads(body))
        self._append(RecordKind.META, host_time, body)

    def mark(self, kind: str, info: Mapping[str, Any] | None, host_time: float) -> None:
        """Record a mark: ``link_lost``, ``reconnected``, ``gap``, ``user``, ``note`` or other."""
        payload = {"kind": str(kind), **dict(info or {})}
        payload["kind"] = str(kind)
        self._append(RecordKind.MARK, host_time, json_bytes(payload))

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
                json_bytes(end),
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
        record = pack_record(kind, host_time, body)
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
