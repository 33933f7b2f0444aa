"""A simulated reference force gauge on a pty, reading the simulated world's true force.

The gauge sits in the load path of a simulated unit: it answers with
``device.true_force(device.now)`` -- the true applied total force at the
device's own (virtual) clock, so gauge and device see the same world at the
same instant. It speaks the Mark-10 dialect (``?`` + CR -> ``12.345 N`` + CRLF)
or, with ``dialect="imada"``, the Imada one (``D`` + CR -> ``+12.345NTO`` + CRLF).
Above ``capacity_n`` it answers ``OVERLOAD`` (Imada: ``+999.99NTE``).

Example::

    with PtyServer(config) as dev_srv, GaugeServer(dev_srv.device) as gauge:
        print(dev_srv.slave_path, gauge.slave_path)   # open both like real ports

The server is an in-process daemon thread on the master side of a pty in
raw mode. Reads of ``device.now`` and ``true_force`` are pure (the load is
evaluated analytically), so the gauge never disturbs the device's thread.
Use a paced simulator (``speed=X``) when the host polls the gauge and reads
the device stream at the same time, so the two clocks stay close.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from knotsense.errors import ConfigurationError, SimulationError

DIALECTS = ("mark10", "imada")


class GaugeServer:
    """A Mark-10 (or Imada) style gauge on a pty; see the module docstring.

    Args:
        device: anything with ``now`` and ``true_force(t)`` (a SimulatedDevice).
        dialect: ``mark10`` or ``imada``.
        capacity_n: readings above this are overloads.
        resolution_n: readings are rounded to this (a gauge's display resolution).
        force: optional override ``f(t) -> N`` of what the gauge reads (tests).
    """

    def __init__(
        self,
        device: Any,
        *,
        dialect: str = "mark10",
        capacity_n: float = 500.0,
        resolution_n: float = 0.001,
        force: Callable[[float], float] | None = None,
    ) -> None:
        if dialect not in DIALECTS:
            raise ConfigurationError(f"gauge dialect must be one of {', '.join(DIALECTS)}")
        self.device = device
        self.dialect = dialect
        self.capacity_n = capacity_n
        self.resolution_n = resolution_n
        self._force = force
        self._master: int | None = None
        self._keeper: int | None = None
        self._path: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.queries = 0
        self.error: BaseException | None = None

    @property
    def slave_path(self) -> str:
        if self._path is None:
            raise SimulationError("the gauge server is not started")
        return self._path

    def reading(self) -> float:
        """What the gauge reads now, N (before formatting)."""
        t = float(self.device.now)
        if self._force is not None:
            return float(self._force(t))
        return float(self.device.true_force(t)[0])

    def answer(self, request: bytes) -> bytes:
        """The line the gauge sends for one request (b"" for requests it ignores)."""
        cmd = request.strip().upper()
        if self.dialect == "mark10" and cmd != b"?":
            return b""
        if self.dialect == "imada" and cmd != b"D":
            return b""
        self.queries += 1
        f = self.reading()
        if abs(f) > self.capacity_n:
            return b"OVERLOAD\r\n" if self.dialect == "mark10" else b"+999.99NTE\r\n"
        f = round(f / self.resolution_n) * self.resolution_n
        if self.dialect == "mark10":
            return f"{f:.3f} N\r\n".encode()
        return f"{f:+.3f}NTO\r\n".encode()

    def start(self) -> Self:
        if self._thread is not None:
            raise SimulationError("the gauge server was already started")
        master, keeper = os.openpty()
        tty.setraw(keeper)
        self._master, self._keeper, self._path = master, keeper, os.ttyname(keeper)
        self._thread = threading.Thread(target=self._serve, name="knotsense-gauge", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for fd in (self._master, self._keeper):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._keeper = None

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

    def _serve(self) -> None:
        buf = b""
        master = self._master
        assert master is not None
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select([master], [], [], 0.05)
                if not readable:
                    continue
                try:
                    data = os.read(master, 256)
                except OSError:
                    continue
                buf += data
                while b"\r" in buf or b"\n" in buf:
                    cut = min(i for i in (buf.find(b"\r"), buf.find(b"\n")) if i >= 0)
                    request, buf = buf[:cut], buf[cut + 1 :]
                    if not request.strip():
                        continue
                    out = self.answer(request)
                    if out:
                        os.write(master, out)
        except BaseException as exc:  # reported through .error
            self.error = exc
