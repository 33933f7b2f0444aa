"""pyserial URL handler: ``serial.serial_for_url("sim+pty://?scenario=...")``.

The port is a real :class:`serial.Serial` opened on the slave of a pty served
by a :class:`~knotsense.firmware_sim.pty_server.PtyServer`, so it has a real
file descriptor and works with pyserial-asyncio as well as plain pyserial.

How the scheme reaches this module: pyserial lower-cases the scheme and
imports ``<package>.protocol_<scheme>`` for each package in
``serial.protocol_handler_packages``. ``protocol_sim+pty`` cannot be a file
name Python imports, but :func:`importlib.import_module` looks in
:data:`sys.modules` first, so :func:`register_serial_handlers` registers this
very module there under ``knotsense.firmware_sim.protocol_sim+pty`` (and the
importable alias ``protocol_sim_pty``, so ``sim_pty://`` works too) and
appends ``knotsense.firmware_sim`` to the package list, after pyserial's own.

URL parameters are those of ``sim://`` (scenario, seed, speed, faults, ...)
plus two for the port itself, removed before the simulator sees the URL:

* ``drop=hangup|silent``: what a link drop does (see pty_server); default hangup.
* ``link=PATH``: keep a stable symlink at PATH pointing at the current slave.

The device starts running only once the port is open and flushed, so the
reader gets every byte from the first one (one seed, same bytes). After a
``hangup`` link drop the read fails like on an unplugged USB device; closing
and re-opening the same serial object then attaches to the re-enumerated
pty of the same, still running device (it waits up to
:data:`REENUMERATE_TIMEOUT` seconds for it).
"""

from __future__ import annotations

import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import serial
from serial.serialutil import SerialException

if TYPE_CHECKING:
    from knotsense.firmware_sim.pty_server import PtyServer

SCHEMES: tuple[str, ...] = ("sim+pty", "sim_pty")
"""URL schemes served by this module (pyserial lower-cases them)."""
HANDLER_PACKAGE = "knotsense.firmware_sim"
PORT_PARAMS: tuple[str, ...] = ("drop", "link")
"""URL parameters that configure the port rather than the simulated device."""
REENUMERATE_TIMEOUT = 10.0
"""Seconds :meth:`SimPtySerial.open` waits for a dropped device to come back."""

_register_lock = threading.Lock()


def register_serial_handlers() -> None:
    """Make ``sim+pty://`` (and ``sim_pty://``) known to :func:`serial.serial_for_url`.

    Idempotent and cheap: the host calls it lazily, right before opening a
    ``sim+pty`` URL. Nothing heavy is imported until a port is opened.
    """
    with _register_lock:
        module = sys.modules[__name__]
        for scheme in SCHEMES:
            sys.modules.setdefault(f"{HANDLER_PACKAGE}.protocol_{scheme}", module)
        if HANDLER_PACKAGE not in serial.protocol_handler_packages:
            serial.protocol_handler_packages.append(HANDLER_PACKAGE)


def split_port_params(url: str) -> tuple[str, dict[str, str]]:
    """Split the port's own parameters (:data:`PORT_PARAMS`) off a ``sim+pty`` URL.

    Returns:
        The URL without them, and the removed parameters.
    """
    parts = urlsplit(url)
    kept: list[tuple[str, str]] = []
    removed: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in PORT_PARAMS:
            removed[key] = value
        else:
            kept.append((key, value))
    return _rebuild(parts.scheme, parts.netloc, parts.path, urlencode(kept)), removed


def serial_class_for_url(url: str) -> tuple[str, type[serial.Serial]]:
    """pyserial's hook: the port class for a ``sim+pty`` URL (checked when opened)."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        raise SerialException(f"expected a sim+pty:// URL, got {url!r}")
    return url, SimPtySerial


class SimPtySerial(serial.Serial):  # type: ignore[misc, valid-type]
    """A serial port on a pty served by a simulated device it owns.

    ``port`` stays the ``sim+pty`` URL; :attr:`slave_path` is the pty it opened
    and :attr:`sim_server` the server (with its ``device``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._sim_server: PtyServer | None = None
        self._sim_finalizer: weakref.finalize | None = None
        self._sim_enumeration = 0
        self._sim_read = 0
        super().__init__(*args, **kwargs)

    @property
    def sim_server(self) -> PtyServer | None:
        """The pty server behind this port (None before the first open)."""
        return self._sim_server

    @property
    def slave_path(self) -> str | None:
        """The pty path opened (None before the first open)."""
        return self.portstr if self._sim_server is not None else None

    def open(self) -> None:
        """Start (or re-attach to) the simulated device and open its pty."""
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        if self.is_open:
            raise SerialException("Port is already open.")
        server = self._sim_server
        first = server is None or not server.running
        if first:
            server = self._start_server(self._port)
        assert server is not None
        try:
            from knotsense.errors import KnotsenseError

            path = server.wait_enumerated(REENUMERATE_TIMEOUT)
        except KnotsenseError as exc:
            raise SerialException(f"could not open port {self._port}: {exc}") from None
        self.portstr = path  # PosixSerial.open opens portstr; port stays the URL
        self._sim_enumeration = server.enumerations
        self._sim_read = 0
        try:
            super().open()
        except BaseException:
            if first:
                self._stop_server()
            raise
        server.release()

    def read(self, size: int = 1) -> bytes:
        data = super().read(size)
        self._sim_read += len(data)
        return data

    def sim_sent_at(self) -> float | None:
        """Device host time at which the last byte read from this port left the device.

        What an in-process reader stamps its chunks with, on the simulator's
        virtual clock (None: unknown, e.g. nothing read yet).
        """
        server = self._sim_server
        if server is None:
            return None
        return server.sent_at(self._sim_enumeration, self._sim_read)

    def close(self) -> None:
        """Close the port; the device is stopped too unless it is off the bus.

        A device that dropped off since this port was opened (hangup) keeps
        running, so that re-opening this object attaches to it again once it
        re-enumerates, as a host re-opens a USB port after a drop.
        """
        super().close()
        server = self._sim_server
        if server is None:
            return
        hung_up = server.drop == "hangup" and (
            not server.device.link_up or server.enumerations != self._sim_enumeration
        )
        if not server.running or not hung_up:
            self._stop_server()

    def _start_server(self, url: str) -> PtyServer:
        try:
            from knotsense.errors import KnotsenseError
            from knotsense.firmware_sim.config import SimConfig
            from knotsense.firmware_sim.pty_server import PtyServer
        except ImportError as exc:  # keep pyserial from calling it "unknown protocol"
            raise SerialException(f"sim+pty: the simulator cannot be imported: {exc}") from exc
        sim_url, params = split_port_params(url)
        try:
            config = SimConfig.from_url(sim_url)
            server = PtyServer(
                config,
                drop=params.get("drop", "hangup"),  # type: ignore[arg-type]
                link_path=params.get("link") or None,
                hold=True,
            ).start()
        except KnotsenseError as exc:
            raise SerialException(f"could not open port {url}: {exc}") from exc
        self._sim_server = server
        self._sim_finalizer = weakref.finalize(self, server.stop)
        return server

    def _stop_server(self) -> None:
        if self._sim_finalizer is not None:
            self._sim_finalizer()  # stops the server exactly once
            self._sim_finalizer = None
        self._sim_server = None


def _rebuild(scheme: str, netloc: str, path: str, query: str) -> str:
    """A URL again, keeping ``//`` (urlunsplit drops it for unknown schemes)."""
    return f"{scheme}://{netloc}{path}" + (f"?{query}" if query else "")
