"""Serial transport: a USB CDC port, any pyserial URL, or the simulator behind a pty.

Reads run on a small thread that blocks in pyserial and hands chunks to the
event loop, so the loop never blocks and a chunk is stamped when it arrives
(:meth:`SerialTransport.receive_stamped`): by the wall clock on a real port;
for ``sim+pty://`` by the simulated device's virtual clock at the moment it
sent the last byte read, so bytes waiting in the pty or the queue do not make
the session's timeline run ahead of the device.
A read error (an unplugged device, a closed pty) ends the thread and surfaces
as :class:`LinkLostError` once the data before it has been delivered.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import threading
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import serial
from serial.serialutil import SerialException

from knotsense.errors import ConfigurationError, DeviceNotFoundError, LinkLostError, TransportError
from knotsense.host.transports.base import Transport, drain_queue
from knotsense.protocol import Framing

DEFAULT_BAUD = 921_600
PACED_QUEUE_CHUNKS = 64
"""Chunks read ahead of the client from an unpaced simulator before reading waits."""
READ_TIMEOUT_S = 0.05
_LOST = object()


def port_and_options(url: str) -> tuple[str, dict[str, object]]:
    """Split a serial device URL into what pyserial opens and keyword options.

    ``serial:///dev/ttyACM0?baud=921600`` -> (``/dev/ttyACM0``, {baudrate: 921600});
    other URLs (plain paths, pyserial URLs, ``sim+pty://``) pass through whole.
    """
    if not url.lower().startswith("serial://"):
        return url, {"baudrate": DEFAULT_BAUD}
    parts = urlsplit(url)
    path = (parts.netloc + parts.path) or ""
    if not path:
        raise ConfigurationError(f"no port in {url!r} (expected serial:///dev/ttyACM0)")
    options: dict[str, object] = {"baudrate": DEFAULT_BAUD}
    for key, value in parse_qsl(parts.query):
        if key in ("baud", "baudrate"):
            try:
                options["baudrate"] = int(value)
            except ValueError:
                raise ConfigurationError(f"baud must be an integer, not {value!r}") from None
        else:
            raise ConfigurationError(f"unknown serial URL option {key!r} in {url!r}")
    return path, options


class SerialTransport(Transport):
    """A COBS byte stream over pyserial."""

    framing = Framing.STREAM

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._target, self._options = port_and_options(url)
        self._port: serial.Serial | None = None
        self._queue: asyncio.Queue[tuple[float, bytes] | object] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def port(self) -> serial.Serial | None:
        """The pyserial port while open."""
        return self._port

    @property
    def simulated_device(self) -> Any | None:
        """For ``sim+pty://``, the simulated device serving the pty; else None."""
        server = getattr(self._port, "sim_server", None)
        return None if server is None else server.device

    def _arrival_time(self, port: serial.Serial) -> float:
        """Host time of a chunk just read from *port* (called on the reader thread)."""
        sent_at = getattr(port, "sim_sent_at", None)  # sim+pty: when its last byte left
        if sent_at is not None:
            device_s = sent_at()
            if device_s is not None:
                return self._sim_epoch + device_s
        return self.clock()

    async def open(self) -> None:
        if self._port is None:
            self._port = await asyncio.to_thread(self._make_port)
        elif not self._port.is_open:
            try:
                await asyncio.to_thread(self._port.open)
            except (SerialException, OSError) as exc:
                raise self._open_error(exc) from None
        server = getattr(self._port, "sim_server", None)
        # An unpaced simulator writes as fast as it is read: hold the reading
        # thread back (and so the simulator, through the pty) when the client
        # falls behind. A real port is never held back: its data would be lost.
        self.paced_by_reader = server is not None and server.speed is None
        self._queue = asyncio.Queue(maxsize=PACED_QUEUE_CHUNKS if self.paced_by_reader else 0)
        self._stop.clear()
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._read_loop,
            args=(self._port, self._queue, loop),
            name=f"knotsense-serial-{self._target}",
            daemon=True,
        )
        self._thread.start()

    def _make_port(self) -> serial.Serial:
        if self._target.lower().startswith(("sim+pty://", "sim_pty://")):
            from knotsense.firmware_sim.serial_handler import register_serial_handlers

            register_serial_handlers()
        try:
            port = serial.serial_for_url(self._target, timeout=READ_TIMEOUT_S, **self._options)
        except (SerialException, OSError, ValueError) as exc:
            raise self._open_error(exc) from None
        return port

    def _open_error(self, exc: BaseException) -> TransportError:
        text = str(exc)
        if getattr(exc, "errno", None) == errno.ENOENT or "No such file" in text:
            return DeviceNotFoundError(f"no serial port {self._target!r}")
        if "Permission denied" in text:
            return TransportError(f"permission denied opening {self._target!r} (dialout group?)")
        first_line = text.splitlines()[0] if text else type(exc).__name__
        return TransportError(f"cannot open {self._target!r}: {first_line}")

    def _read_loop(
        self, port: serial.Serial, queue: asyncio.Queue, loop: asyncio.AbstractEventLoop
    ) -> None:
        put = queue.put_nowait
        while not self._stop.is_set():
            try:
                data = port.read(max(1, port.in_waiting))
            except (SerialException, OSError, TypeError, AttributeError):
                # TypeError/AttributeError: pyserial's fd vanished under us on close.
                if not self._stop.is_set():
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(put, _LOST)
                return
            if not data:
                continue
            item = (self._arrival_time(port), data)
            try:
                if self.paced_by_reader:
                    self._put_waiting(queue, item, loop)
                else:
                    loop.call_soon_threadsafe(put, item)
            except RuntimeError:  # the loop is closed
                return

    def _put_waiting(
        self, queue: asyncio.Queue, item: tuple[float, bytes], loop: asyncio.AbstractEventLoop
    ) -> None:
        """Hand *item* to the loop, waiting while the queue is full (until stopped)."""
        future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        while not self._stop.is_set():
            try:
                future.result(READ_TIMEOUT_S)
                return
            except concurrent.futures.TimeoutError:
                continue
        future.cancel()

    async def close(self) -> None:
        self._stop.set()
        port, thread = self._port, self._thread
        self._thread = None
        if port is not None and port.is_open:
            with contextlib.suppress(SerialException, OSError):
                await asyncio.to_thread(port.close)
        if thread is not None:
            await asyncio.to_thread(thread.join, 1.0)

    async def send(self, frame: bytes) -> None:
        port = self._port
        if port is None or not port.is_open:
            raise LinkLostError(f"{self._target}: port is closed")
        try:
            await asyncio.to_thread(port.write, frame)
        except (SerialException, OSError) as exc:
            raise LinkLostError(f"{self._target}: write failed: {exc}") from None

    async def receive(self, timeout: float) -> list[bytes]:
        return [chunk for _, chunk in await self.receive_stamped(timeout)]

    async def receive_stamped(self, timeout: float) -> list[tuple[float, bytes]]:
        """What arrived within *timeout*, each chunk with the host time the reader got it."""
        queue = self._queue
        if queue is None:
            raise LinkLostError(f"{self._target}: not open")
        why = f"{self._target}: read failed (device unplugged or port closed)"
        return await drain_queue(queue, timeout, _LOST, why)
