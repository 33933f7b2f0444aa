"""Bumble controllers by transport name: a real HCI transport or an in-process virtual link.

Bumble's own transport names (``usb:0``, ``serial:/dev/ttyACM0``,
``tcp-client:host:port``, ``vhci``, ``hci-socket:0``, ``android-netsim``, ...)
open a real controller. The name ``local`` (or ``local:NAME`` for a separate
radio) means one of Bumble's virtual controllers on a :class:`bumble.link.LocalLink`
shared by everything in this process that uses the same name: a peripheral
and a central on ``local`` hear each other, with no hardware, which is how
``sim+bumble://`` and CI run.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field
from typing import Any

from knotsense.errors import ConfigurationError, TransportError

LOCAL = "local"
_links: dict[str, Any] = {}
_names = itertools.count(1)


@dataclass
class Hci:
    """An opened controller: a Bumble Host for a Device, and how to close it."""

    host: Any
    transport: Any = None
    controllers: list[Any] = field(default_factory=list)

    async def close(self) -> None:
        """Close the HCI transport (virtual controllers leave their link)."""
        for controller in self.controllers:
            with contextlib.suppress(Exception):
                controller.link.remove_controller(controller)
        if self.transport is not None:
            with contextlib.suppress(Exception):
                await self.transport.close()


def is_local(name: str) -> bool:
    """True for ``local`` and ``local:NAME``: an in-process virtual link."""
    return name == LOCAL or name.startswith(LOCAL + ":")


def local_link(name: str = LOCAL) -> Any:
    """The process-wide virtual link called *name* (made on first use)."""
    from bumble.link import LocalLink

    if name not in _links:
        _links[name] = LocalLink()
    return _links[name]


async def open_hci(transport: str, address: str) -> Hci:
    """Open the controller *transport* names, for a device that will use *address*.

    Raises:
        ConfigurationError: an empty transport name.
        TransportError: Bumble cannot open it (no dongle, no permission, ...).
    """
    from bumble.host import Host

    if not transport:
        raise ConfigurationError("give a Bumble transport name (local, usb:0, ...)")
    if is_local(transport):
        from bumble.controller import Controller
        from bumble.transport.common import AsyncPipeSink

        controller = Controller(
            f"knotsense-{next(_names)}", link=local_link(transport), public_address=address
        )
        # Data length extension on the virtual link, as a current controller has it.
        controller.le_acl_data_packet_length = 251
        return Hci(Host(controller, AsyncPipeSink(controller)), controllers=[controller])
    from bumble.transport import open_transport

    try:
        opened = await open_transport(transport)
    except Exception as exc:  # Bumble raises many kinds (ValueError, OSError, USB errors)
        raise TransportError(f"cannot open Bumble transport {transport!r}: {exc}") from None
    return Hci(Host(opened.source, opened.sink), transport=opened)
