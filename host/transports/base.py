"""The transport base class: a link that moves encoded frames to and from a device.

A transport knows nothing of messages: it sends encoded frames and receives
what the link delivers -- byte-stream chunks (serial, pty: ``Framing.STREAM``)
or one frame per packet (BLE: ``Framing.PACKET``). Subclasses implement
:meth:`open`, :meth:`close`, :meth:`send` and :meth:`receive`.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any, Self

from knotsense.errors import LinkLostError
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
        self._sim_epoch = time.time()
        """Unix time of a simulated device's power-on (see :meth:`clock`)."""

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

    @property
    def simulated_device(self) -> Any | None:
        """The in-process simulated device behind this link; None for real hardware.

        The simulator links (``sim://``, ``sim+pty://``, ``sim+ble://``) return
        their :class:`knotsense.firmware_sim.device.SimulatedDevice` once open,
        for tests, the demo's ground truth and the virtual clock. Typed ``Any``:
        host never imports the simulator but lazily, through the registry.
        """
        return None

    def clock(self) -> float:
        """Host time (unix seconds) now, on the clock that stamps this link's data.

        Real links use the wall clock. A simulated device, paced (``speed=X``)
        or not, is on its own virtual clock: the session's timeline is the
        simulated device's time, so a 60 s session lasts 60 s at the device's
        rate whether it took 60 s, 3 s (``speed=20``) or less of wall time.
        """
        device = self.simulated_device
        if device is None:
            return time.time()
        return self._sim_epoch + float(device.now)

    async def receive_stamped(self, timeout: float) -> list[tuple[float, bytes]]:
        """Like :meth:`receive`, each chunk with the host time it arrived at.

        The default stamps a whole batch with :meth:`clock`; a transport that
        knows better (the serial reader thread stamps each chunk as it comes
        off the port) overrides it.
        """
        chunks = await self.receive(timeout)
        if not chunks:
            return []
        now = self.clock()
        return [(now, chunk) for chunk in chunks]

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


async def drain_queue(
    queue: asyncio.Queue[Any], timeout: float, lost: object, why: str
) -> list[Any]:
    """Everything queued (waiting up to *timeout* for the first item); *lost* marks a disconnect.

    Items that arrived before the disconnect are returned first; the mark is
    put back, so the next call raises. Shared by the reader-thread and
    notification transports.

    Raises:
        LinkLostError: the link went away (*why*) and nothing is left before the mark.
    """
    try:
        first = await asyncio.wait_for(queue.get(), timeout)
    except TimeoutError:
        return []
    items = [first]
    while not queue.empty():
        items.append(queue.get_nowait())
    kept = [item for item in items if item is not lost]
    if len(kept) < len(items):
        if kept:
            queue.put_nowait(lost)
            return kept
        raise LinkLostError(why)
    return kept
