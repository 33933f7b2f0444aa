"""The transport base class: a link that moves encoded frames to and from a device.

A transport knows nothing of messages: it sends encoded frames and receives
what the link delivers -- byte-stream chunks (serial, pty: ``Framing.STREAM``)
or one frame per packet (BLE: ``Framing.PACKET``). Subclasses implement
:meth:`open`, :meth:`close`, :meth:`send` and :meth:`receive`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

from knotsense.protocol import MAX_FRAME_SIZE, Command, Framing, Response


class Transport(ABC):
    """One link to one device.

    Attributes:
        url: the device URL this transport was made from.
        framing: how frames travel on this link.
        max_frame_size: the largest frame the link carries (BLE: MTU - 3).
        can_reconnect: whether :meth:`reopen` may bring a lost link back.
        paced_by_reader: see below.
    """

    framing: Framing = Framing.STREAM
    can_reconnect: bool = True
    paced_by_reader: bool = False
    """True when data comes as fast as it is read (a simulator on virtual time,
    a replay at full speed): the reader then waits for its consumer instead of
    running ahead of it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.max_frame_size = MAX_FRAME_SIZE

    @abstractmethod
    async def open(self) -> None:
        """Open the link.

        Raises:
            DeviceNotFoundError: the port, address or name does not exist.
            TransportError: the link cannot be opened.
        """

    @abstractmethod
    async def close(self) -> None:
        """Close the link; safe to call twice."""

    @abstractmethod
    async def send(self, frame: bytes) -> None:
        """Send one encoded frame (COBS-stuffed for STREAM, raw for PACKET).

        Raises:
            LinkLostError: the link went away.
        """

    @abstractmethod
    async def receive(self, timeout: float) -> list[bytes]:
        """What arrived within *timeout* seconds: chunks (STREAM) or packets (PACKET).

        Returns an empty list on timeout.

        Raises:
            LinkLostError: the link went away (the data before it was returned earlier).
            EndOfData: a finite source has nothing more.
        """

    async def reopen(self) -> None:
        """Close and open again, after the link was lost."""
        await self.close()
        await self.open()

    def answer(self, command: Command) -> Response | None:
        """Answer *command* without the link, or None to send it.

        Only a source with no device behind it (a replay) answers here.
        """
        return None

    def clock(self) -> float:
        """Host time (unix seconds) to stamp received data with.

        Real links use the wall clock; a simulator running faster than real
        time uses its virtual clock so that timing stays meaningful.
        """
        return time.time()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
