"""Serve a simulated device behind a real pseudo-terminal.

Any serial tool (pyserial, pyserial-asyncio, minicom, screen) can open the
slave side of the pty as if it were the USB CDC port of a prototype; the
server thread owns the master side and the :class:`SimulatedDevice`.

Pty quirks handled here: the pty is put in raw mode at once (before the first
byte, so no echo or newline translation ever touches a frame); it ignores the
baud rate; DTR/RTS ioctls fail on it (pyserial ignores that); a closed far
end shows as a read error (EOF or EIO) on the other side.

Pacing (``config.speed``):

* ``None``: as fast as the reader takes it. The device runs on its virtual
  clock in small steps and a step is only generated when the bytes of the
  previous ones have (nearly) been written, so a slow reader throttles the
  device instead of losing bytes.
* ``X > 0``: real time times X. Writes never drop bytes either: when the
  reader is slower than the device, the bytes wait in the server (up to
  :attr:`PtyServer.max_pending`) and the device then falls behind the wall
  clock. Losing bytes to a slow reader is the device's ``slow_reader`` fault.

Timing: the server logs, per chunk it will write, the device's host time
when the chunk was produced; :meth:`PtyServer.sent_at` answers "when did the
device send byte N of this pty", so an in-process reader can stamp what it
reads on the device's virtual clock however many bytes wait in the pty
(see ``SimPtySerial.sim_sent_at``).

Link drops (the device's ``link_up`` goes False during a ``link_drop`` fault)
behave like a USB CDC device that drops off the bus (``drop="hangup"``, the
default): the port is hung up (the master is closed, so the reader sees a
read error, as on a yanked ``/dev/ttyACM0``), the data generated during the
drop is lost, and when the link returns the device "re-enumerates" as a new
pty whose path may differ -- :attr:`PtyServer.slave_path` changes, the
optional stable symlink ``link_path`` (like ``/dev/serial/by-id/...``) is
re-pointed and ``on_enumerate`` is called. ``drop="silent"`` instead keeps
the port open and just lets it go quiet (like a USB-serial bridge whose radio
link drops): no bytes out, host writes discarded.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self

from knotsense.errors import ConfigurationError, SimulationError
from knotsense.protocol import Framing

if TYPE_CHECKING:
    from knotsense.firmware_sim.config import SimConfig
    from knotsense.firmware_sim.device import SimulatedDevice

DropMode = Literal["hangup", "silent"]
DROP_MODES: tuple[str, ...] = ("hangup", "silent")

_READ_SIZE = 4096


class PtyServer:
    """A simulated device on the slave side of a pty, served by a background thread.

    Example:
        >>> with PtyServer(SimConfig.from_url("sim://?scenario=back_session")) as srv:
        ...     port = serial.Serial(srv.slave_path)

    Args:
        device: a :class:`SimConfig` (a device is built from it) or a ready device.
        drop: what a link drop does to the port, ``"hangup"`` or ``"silent"``.
        link_path: optional stable symlink kept pointing at the current slave.
        hold: do not run the device until :meth:`release` (lets a reader open
            and flush the port first, so it sees every byte from the start).
        on_enumerate: called with the slave path each time a pty is opened
            (by :meth:`start` the first time, by the server thread after a drop).
        tick: seconds between generation steps when paced, and the longest
            the thread sleeps before it looks at the stop flag again.
        step: virtual seconds generated per step when ``speed`` is None (also
            the granularity at which host writes reach the device then;
            0.25 s runs ~250x real time, 0.05 s ~90x).
        clock: the wall clock used for real-time pacing.
    """

    max_pending: int = 8 << 20
    """Bytes a paced server holds for a slow reader before the device waits."""
    unpaced_pending: int = 16 << 10
    """Bytes an unpaced server holds before generating more (keeps it reader-paced)."""

    def __init__(
        self,
        device: SimConfig | SimulatedDevice,
        *,
        drop: DropMode = "hangup",
        link_path: str | os.PathLike[str] | None = None,
        hold: bool = False,
        on_enumerate: Callable[[str], None] | None = None,
        tick: float = 0.01,
        step: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if drop not in DROP_MODES:
            raise ConfigurationError(f"drop must be one of {', '.join(DROP_MODES)}, not {drop!r}")
        if tick <= 0 or step <= 0:
            raise ConfigurationError("tick and step must be > 0")
        self._device = _as_device(device)
        config = getattr(self._device, "config", None)
        framing = getattr(config, "framing", Framing.STREAM)
        if framing is not Framing.STREAM:
            raise ConfigurationError("a pty carries a byte stream: the device needs STREAM framing")
        speed = getattr(config, "speed", None)
        if speed is not None and not speed > 0:
            raise ConfigurationError(f"speed must be > 0 or None, not {speed!r}")
        self.speed: float | None = speed
        self.drop: DropMode = drop
        self.link_path = Path(link_path) if link_path is not None else None
        self._on_enumerate = on_enumerate
        self._tick = tick
        self._step = step
        self._clock = clock
        self._master: int | None = None
        self._keeper: int | None = None
        self._slave_path: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._released = threading.Event()
        self._enumerated = threading.Condition(self._lock)
        self._enumerations = 0
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.bytes_out = 0
        """Bytes written to the port (what a reader could get)."""
        self.bytes_in = 0
        """Bytes the host wrote that reached the device."""
        self.bytes_lost = 0
        """Bytes the device produced while its link was down (never sent)."""
        self._queued = 0  # stream offset after the last byte queued: bytes_out + len(pending)
        self._log_end: list[int] = []  # per queued chunk: stream offset after its last byte
        self._log_time: list[float] = []  # ... and the device host time it was produced at
        self._enum_base = 0  # stream offset of the first byte written to the current pty
        if not hold:
            self._released.set()

    # -- public API ---------------------------------------------------------

    @property
    def device(self) -> SimulatedDevice:
        """The simulated device (owned by the server thread while it runs)."""
        return self._device

    @property
    def slave_path(self) -> str:
        """Path of the current slave (``/dev/pts/N``); it may change after a link drop.

        Raises:
            LinkLostError: the device is off the bus (hung up, not yet re-enumerated).
        """
        from knotsense.errors import LinkLostError

        with self._lock:
            if self._slave_path is None:
                raise LinkLostError("the simulated device is not enumerated (link down)")
            return self._slave_path

    @property
    def enumerations(self) -> int:
        """How many times a pty has been opened (1 + reconnects after hangups)."""
        return self._enumerations

    def sent_at(self, enumeration: int, count: int) -> float | None:
        """Device host time at which byte *count* (1-based) of pty *enumeration* was sent.

        A reader that has read *count* bytes from the pty of that enumeration
        gets the virtual time its last byte left the device. None when the
        answer is unknown (another pty by now, or nothing read yet); bytes of
        earlier chunks are forgotten as readers move past them.
        """
        with self._lock:
            if enumeration != self._enumerations or count <= 0:
                return None
            offset = self._enum_base + count
            k = bisect.bisect_left(self._log_end, offset)
            if k >= len(self._log_end):
                return None
            if k > 64:  # forget what every reader is past
                del self._log_end[:k], self._log_time[:k]
                k = 0
            return self._log_time[k]

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the server thread, if any."""
        return self._error

    @property
    def running(self) -> bool:
        """True while the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Self:
        """Open the pty and start serving; returns once :attr:`slave_path` is valid."""
        if self._thread is not None:
            raise SimulationError("the pty server was already started")
        self._open_pty()
        self._thread = threading.Thread(target=self._serve, name="knotsense-pty", daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        """Let a server created with ``hold=True`` start running the device."""
        self._released.set()

    def wait_enumerated(self, timeout: float, after: int = 0) -> str:
        """Wait until the device is on the bus with more than *after* enumerations.

        Returns:
            The slave path.

        Raises:
            LinkLostError: not (re-)enumerated within *timeout* seconds.
        """
        from knotsense.errors import LinkLostError

        deadline = time.monotonic() + timeout
        with self._enumerated:
            while self._slave_path is None or self._enumerations <= after:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.running:
                    raise LinkLostError("the simulated device did not come back on the bus")
                self._enumerated.wait(min(remaining, 0.1))
            return self._slave_path

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the pty (the reader then sees a read error)."""
        self._stop.set()
        self._released.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if not self.running:
            self._close_pty()

    def __enter__(self) -> Self:
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the pty ------------------------------------------------------------

    def _open_pty(self) -> None:
        """Open a fresh pty in raw mode (a device appearing on the bus)."""
        master, keeper = os.openpty()
        try:
            tty.setraw(keeper)  # raw before any byte flows: no echo, no CR/LF games
            fcntl.fcntl(master, fcntl.F_SETFL, fcntl.fcntl(master, fcntl.F_GETFL) | os.O_NONBLOCK)
            path = os.ttyname(keeper)
        except BaseException:
            os.close(master)
            os.close(keeper)
            raise
        if self.link_path is not None:  # before the path is published: no reader races it
            tmp = self.link_path.with_name(self.link_path.name + ".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(path, tmp)
            os.replace(tmp, self.link_path)
        # The server keeps the slave open too, so the pty survives the reader
        # closing and reopening the port, as a USB device survives that.
        with self._enumerated:
            self._master, self._keeper, self._slave_path = master, keeper, path
            self._enumerations += 1
            self._enum_base = self.bytes_out
            self._enumerated.notify_all()
        if self._on_enumerate is not None:
            self._on_enumerate(path)

    def _close_pty(self) -> None:
        """Close both ends we hold (a device dropping off the bus)."""
        with self._lock:
            master, keeper, path = self._master, self._keeper, self._slave_path
            self._master = self._keeper = self._slave_path = None
        for fd in (master, keeper):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self.link_path is not None and path is not None:
            with contextlib.suppress(OSError):
                if os.readlink(self.link_path) == path:
                    self.link_path.unlink()

    # -- the thread ---------------------------------------------------------

    def _serve(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # reported through .error, never lost
            self._error = exc
        finally:
            self._close_pty()

    def _loop(self) -> None:
        dev = self._device
        while not self._released.wait(self._tick):
            if self._stop.is_set():
                return
        paced = self.speed is not None
        limit = self.max_pending if paced else self.unpaced_pending
        t0 = self._clock()
        v0 = dev.now
        next_gen = t0
        pending = bytearray()
        while not self._stop.is_set():
            now = self._clock()
            # 1. let the device run (unless the reader is too far behind)
            if len(pending) < limit and (not paced or now >= next_gen):
                if paced:
                    target = v0 + (now - t0) * self.speed  # type: ignore[operator]
                    next_gen = now + self._tick
                else:
                    target = dev.now + self._step
                if target > dev.now:
                    out = dev.run_until(target)
                    chunk = b"".join(out)
                    if dev.link_up and self._master is not None:
                        pending += chunk
                        if chunk:
                            self._log_chunk(len(chunk), dev.now)
                    else:
                        self.bytes_lost += len(chunk)
            # 2. follow the link state
            up = dev.link_up
            if not up and pending:
                self.bytes_lost += len(pending)
                pending.clear()
                self._unlog_unsent()
            if self.drop == "hangup":
                if not up and self._master is not None:
                    self._close_pty()
                elif up and self._master is None:
                    self._open_pty()
            master = self._master
            if master is None:
                if paced:
                    self._stop.wait(self._tick)
                continue
            # 3. move bytes both ways
            busy = not paced and len(pending) < limit
            timeout = 0.0 if busy else max(0.0, min(self._tick, next_gen - self._clock()))
            wlist = [master] if pending else []
            readable, writable, _ = select.select([master], wlist, [], timeout)
            if readable:
                self._read_host(master, up)
            if writable and pending:
                with self._lock:  # bytes_out moves with the write, for sent_at()
                    try:
                        n = os.write(master, pending)
                    except BlockingIOError:
                        n = 0
                    self.bytes_out += n
                del pending[:n]

    def _log_chunk(self, size: int, produced_at: float) -> None:
        with self._lock:
            self._queued += size
            self._log_end.append(self._queued)
            self._log_time.append(produced_at)

    def _unlog_unsent(self) -> None:
        """Pending bytes were dropped (link down): their offsets go to the next bytes."""
        with self._lock:
            self._queued = self.bytes_out
            k = bisect.bisect_left(self._log_end, self._queued)
            if k < len(self._log_end):
                # A chunk partly written keeps its written part.
                keep_time = self._log_time[k]
                del self._log_end[k:], self._log_time[k:]
                if not self._log_end or self._log_end[-1] < self._queued:
                    self._log_end.append(self._queued)
                    self._log_time.append(keep_time)

    def _read_host(self, master: int, up: bool) -> None:
        try:
            data = os.read(master, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            # EIO: no slave open at all; cannot happen while we keep one, but
            # never let it kill the device.
            return
        if data and up:
            self.bytes_in += len(data)
            self._device.host_write(data)


def _as_device(device: SimConfig | SimulatedDevice) -> SimulatedDevice:
    """Build the device from a config, or take a ready one."""
    if hasattr(device, "run_until"):
        return device  # type: ignore[return-value]
    from knotsense.firmware_sim.device import SimulatedDevice

    return SimulatedDevice(device)  # type: ignore[arg-type]
