"""How frames ride a BLE link, host side: v1.0 (one frame per packet) or v1.1 (fragments).

Shared by the bleak transport (ble.py) and the Bumble transport (bumble.py),
so both read a device the same way. Per connection the transport calls
:meth:`LinkFraming.start` with the negotiated ATT MTU and the value of the
link characteristic (None when the device has none: a v1.0 device)::

    notification(uuid, data) -> incoming() -> whole frame or None -> PacketDecoder
    frame -> outgoing() -> one write per fragment (v1.1) or the frame (v1.0)
"""

from __future__ import annotations

import asyncio
from typing import Any

from knotsense.errors import LinkTooSmallError, TransportError
from knotsense.host.transports.base import drain_queue
from knotsense.protocol import MAX_FRAME_SIZE, frame_size_for_mtu
from knotsense.protocol.fragment import (
    LINK_VERSION_FRAGMENTS,
    MIN_V1_ATT_MTU,
    Fragmenter,
    Reassembler,
)
from knotsense.protocol.gatt import CONTROL_CHAR_UUID, DATA_CHAR_UUID


class LinkFraming:
    """The link layer state of one BLE transport (kept across reconnects for its counters)."""

    def __init__(self) -> None:
        self.fragmented = False
        self.att_mtu = 23
        self._rx = {DATA_CHAR_UUID: Reassembler(), CONTROL_CHAR_UUID: Reassembler()}
        self._tx = Fragmenter()

    def start(self, att_mtu: int, link_value: bytes | None) -> None:
        """A connection is up: choose the framing and restart the fragment counters.

        Raises:
            LinkTooSmallError: a v1.0 device at an MTU below :data:`MIN_V1_ATT_MTU`.
            TransportError: the device names a link layer this host does not know.
        """
        self.att_mtu = att_mtu
        if link_value is None or len(link_value) == 0:
            self.fragmented = False
            if att_mtu < MIN_V1_ATT_MTU:
                raise LinkTooSmallError(
                    f"BLE link MTU {att_mtu} is too small: knotsense v1 needs at least "
                    f"{MIN_V1_ATT_MTU}"
                )
        elif link_value[0] == LINK_VERSION_FRAGMENTS:
            self.fragmented = True
        else:
            raise TransportError(
                f"the device's BLE link layer {link_value[0]} is unknown to this host "
                f"(it knows {LINK_VERSION_FRAGMENTS}: fragments)"
            )
        self._tx.att_mtu = att_mtu
        self._tx.reset()
        for rx in self._rx.values():
            rx.restart()

    @property
    def max_frame_size(self) -> int:
        """The largest frame the link carries (MAX_FRAME_SIZE with fragments)."""
        return MAX_FRAME_SIZE if self.fragmented else frame_size_for_mtu(self.att_mtu)

    def incoming(self, uuid: str, data: bytes) -> bytes | None:
        """A notification on *uuid*: the frame it completes (or is), else None."""
        if not self.fragmented:
            return data
        rx = self._rx.get(uuid)
        return None if rx is None else rx.feed(data)

    def outgoing(self, frame: bytes) -> list[bytes]:
        """The writes that carry *frame* to the control characteristic."""
        return self._tx.split(frame) if self.fragmented else [frame]

    def stats(self) -> dict[str, int]:
        """Fragment counters summed over both characteristics (all 0 on a v1.0 link)."""
        total: dict[str, int] = {}
        for rx in self._rx.values():
            for key, value in rx.stats.as_dict().items():
                total[key] = total.get(key, 0) + value
        return total


async def drain_packets(queue: asyncio.Queue[Any], timeout: float, lost: object) -> list[bytes]:
    """Every notification queued (see :func:`~knotsense.host.transports.base.drain_queue`)."""
    return await drain_queue(queue, timeout, lost, "BLE device disconnected")
