"""Transports: one device URL picks the link (DESIGN.md, "Device URLs").

=====================================  ==========================================
URL                                    transport
=====================================  ==========================================
``/dev/ttyACM0``, ``COM3``             serial port via pyserial
``serial:///dev/ttyACM0?baud=921600``  serial port via pyserial
``loop://``, ``socket://h:p``, ...     any pyserial URL
``ble://AA:BB:CC:DD:EE:FF``            BLE via bleak, by address
``ble://?name=KnotSense-12AB``         BLE via bleak, by advertised name
``sim://?scenario=..&seed=..``         simulator in-process (byte link)
``sim+pty://?...``                     simulator behind a pty, through pyserial
``sim+ble://?...``                     simulator behind bleak's public classes
``bumble://usb:0/ADDRESS``             BLE through a Bumble host stack and controller
``sim+bumble://?...``                  simulator as a Bumble peripheral, Bumble central
``replay://PATH?speed=X``              a recorded session played back
=====================================  ==========================================

The registry maps a scheme to ``"module:Class"`` and imports the module only
when a URL of that scheme is opened, so a missing optional dependency (say,
bleak on a bench PC) fails only for that scheme, with a clear message.
"""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit

from knotsense.errors import TransportError, UnknownSchemeError
from knotsense.host.transports.base import Transport

TRANSPORTS: dict[str, str] = {
    "serial": "knotsense.host.transports.serial:SerialTransport",
    "sim+pty": "knotsense.host.transports.serial:SerialTransport",
    "ble": "knotsense.host.transports.ble:BleTransport",
    "sim+ble": "knotsense.host.transports.ble:SimBleTransport",
    "bumble": "knotsense.host.transports.bumble:BumbleTransport",
    "sim+bumble": "knotsense.host.transports.bumble:SimBumbleTransport",
    "sim": "knotsense.host.transports.sim:SimTransport",
    "replay": "knotsense.host.transports.replay:ReplayTransport",
}
PYSERIAL_SCHEMES = frozenset({"loop", "socket", "rfc2217", "spy", "alt", "hwgrid", "cp2110"})
"""pyserial's own URL handlers; such URLs go to the serial transport unchanged."""


def scheme_of(url: str) -> str:
    """The registry key for *url*: a plain path (no ``://``) is a serial port."""
    if "://" not in url:
        return "serial"
    scheme = urlsplit(url).scheme.lower()
    return "serial" if scheme in PYSERIAL_SCHEMES else scheme


def transport_class(url: str) -> type[Transport]:
    """Import and return the transport class for *url*.

    Raises:
        UnknownSchemeError: no transport handles the scheme.
        TransportError: the transport's module (or a dependency) cannot be imported.
    """
    scheme = scheme_of(url)
    target = TRANSPORTS.get(scheme)
    if target is None:
        known = ", ".join(sorted({*TRANSPORTS, *PYSERIAL_SCHEMES}))
        raise UnknownSchemeError(
            f"unknown device URL scheme {scheme!r} in {url!r} (known: {known})"
        )
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TransportError(
            f"{scheme}:// needs a dependency that is not installed ({exc.name or exc})"
        ) from exc
    cls: type[Transport] = getattr(module, class_name)
    return cls


def make_transport(url: str) -> Transport:
    """An unopened transport for *url* (open it with ``await t.open()`` or ``async with``)."""
    if not url or not url.strip():
        raise UnknownSchemeError("empty device URL")
    return transport_class(url)(url)


__all__ = [
    "PYSERIAL_SCHEMES",
    "TRANSPORTS",
    "Transport",
    "make_transport",
    "scheme_of",
    "transport_class",
]
