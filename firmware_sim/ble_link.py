"""The simulated firmware's BLE glue: what sits between the device and any GATT server.

Both radios the simulator can be put on -- the in-process bleak backend
(ble_backend.py) and a real Bumble stack (bumble_peripheral.py) -- share this
class, so the link behaves the same on both::

    device.run_until(t) --frames--> route by type --fragment (v1.1)--> queue
        queue --at most packets_per_event per connection event--> notify(char, packet)
    write(packet) --reassemble (v1.1)--> device.host_write(frame)

Link versions (docs/protocol.md section 6):

* ``1.1`` (default): the GATT layout has the link characteristic; frames of
  up to MAX_FRAME_SIZE are cut into fragments of ATT MTU - 4 bytes, so any
  MTU from 23 works and the device always builds 244-byte frames.
* ``1.0``: no link characteristic; one frame per notification, the device
  builds frames of at most ATT MTU - 3 bytes (``frame_size_for_mtu``).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import TYPE_CHECKING

from knotsense.errors import ConfigurationError
from knotsense.protocol import MAX_FRAME_SIZE, Framing, MessageType, frame_size_for_mtu, gatt
from knotsense.protocol.fragment import LINK_VERSION_FRAGMENTS, Fragmenter, Reassembler

if TYPE_CHECKING:
    from knotsense.firmware_sim.config import SimConfig
    from knotsense.firmware_sim.device import SimulatedDevice

LINK_VERSIONS = ("1.0", "1.1")
DEFAULT_LINK_VERSION = "1.1"
STATUS_BATTERY_OFFSET = 6 + 10
"""Frame offset of Status.battery_pct (header + payload offset 10)."""


def check_link_version(value: str) -> str:
    """``1.0`` or ``1.1``.

    Raises:
        ConfigurationError: any other value.
    """
    if value not in LINK_VERSIONS:
        raise ConfigurationError(f"link must be 1.0 or 1.1, not {value!r}")
    return value


def make_device(config: SimConfig, mtu: int, link_version: str) -> SimulatedDevice:
    """The simulated device for a BLE peripheral: PACKET framing, frames sized for the link."""
    from knotsense.firmware_sim.device import SimulatedDevice

    size = MAX_FRAME_SIZE if link_version == "1.1" else frame_size_for_mtu(mtu)
    return SimulatedDevice(dataclasses.replace(config, framing=Framing.PACKET, max_frame_size=size))


class DeviceLink:
    """One connection's worth of firmware BLE glue around a device.

    Args:
        device: the simulated device (PACKET framing).
        mtu: the negotiated ATT MTU.
        link_version: ``1.0`` or ``1.1``.
    """

    def __init__(self, device: SimulatedDevice, mtu: int, link_version: str) -> None:
        self.device = device
        self.mtu = mtu
        self.fragmented = link_version == "1.1"
        self.queue: deque[tuple[str, bytes]] = deque()
        self.subscribed: set[str] = set()
        self.battery = 100
        self._tx = {
            gatt.DATA_CHAR_UUID: Fragmenter(mtu),
            gatt.CONTROL_CHAR_UUID: Fragmenter(mtu),
        }
        self.rx = Reassembler()
        self.oversize = 0
        """Frames longer than MTU - 3 on a v1.0 link (not sendable, dropped)."""
        self.unsubscribed = 0
        """Frames not sent because nobody subscribed to their characteristic."""

    @property
    def link_value(self) -> bytes | None:
        """The link characteristic's value, or None when the layout has none (v1.0)."""
        return bytes([LINK_VERSION_FRAGMENTS]) if self.fragmented else None

    def set_mtu(self, mtu: int) -> None:
        """An MTU exchange happened (v1.1 only: a v1.0 device's frame size is fixed)."""
        self.mtu = mtu
        for fragmenter in self._tx.values():
            fragmenter.att_mtu = mtu

    def run(self, t: float) -> None:
        """Run the device to time *t* and queue what it sends."""
        for frame in self.device.run_until(t):
            self.route(bytes(frame))

    def route(self, frame: bytes) -> None:
        """Queue one frame for the characteristic that carries its type."""
        is_response = len(frame) > 1 and frame[1] == MessageType.RESPONSE
        uuid = gatt.CONTROL_CHAR_UUID if is_response else gatt.DATA_CHAR_UUID
        if len(frame) > 1 and frame[1] == MessageType.STATUS:
            self._note_status(frame)
        if uuid not in self.subscribed:
            self.unsubscribed += 1  # firmware checks the CCCD before it sends
            return
        if self.fragmented:
            self.queue.extend((uuid, piece) for piece in self._tx[uuid].split(frame))
        elif len(frame) > self.mtu - 3:
            self.oversize += 1  # ATT cannot carry it: never deliver a cut frame
        else:
            self.queue.append((uuid, frame))

    def take(self, n: int) -> list[tuple[str, bytes]]:
        """Up to *n* queued notifications (one connection event's worth)."""
        out = []
        while self.queue and len(out) < n:
            out.append(self.queue.popleft())
        return out

    def write(self, data: bytes) -> None:
        """A write on the control characteristic: a fragment (v1.1) or a whole frame."""
        if not self.fragmented:
            self.device.host_write(data)
            return
        frame = self.rx.feed(data)
        if frame is not None:
            self.device.host_write(frame)

    def subscribe(self, uuid: str, on: bool) -> None:
        """The host wrote a CCCD."""
        if on:
            self.subscribed.add(uuid)
        else:
            self.subscribed.discard(uuid)

    def _note_status(self, frame: bytes) -> None:
        """Follow the battery level from a Status frame (queued when subscribed)."""
        if len(frame) <= STATUS_BATTERY_OFFSET:
            return
        pct = frame[STATUS_BATTERY_OFFSET]
        if pct > 100 or pct == self.battery:
            return
        self.battery = pct
        if gatt.BATTERY_LEVEL_UUID in self.subscribed:
            self.queue.append((gatt.BATTERY_LEVEL_UUID, bytes([pct])))
