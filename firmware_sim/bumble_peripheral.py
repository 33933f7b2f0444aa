"""The simulated device as a real BLE peripheral on a Bumble ``Device``.

The KnotSense GATT layout of protocol/gatt.py is served by Bumble's GATT
server on a controller picked by a Bumble transport name (bumble_radio.py):
``local`` (a virtual link in this process, for CI and ``sim+bumble://``) or
a real controller such as ``usb:0``, where a phone app (nRF Connect) or
another computer sees an advertising ``KnotSense-XXXX`` device::

    peripheral = BumblePeripheral(SimConfig.from_url("sim://?seed=3"), transport="usb:0")
    await peripheral.start()          # powers on, advertises
    ...
    await peripheral.stop()

Everything between the device and the GATT server is ble_link.py (the same
glue as the bleak backend): v1.1 fragments by default, ``link_version="1.0"``
for one frame per notification. Per connection:

* ATT MTU: whatever the central exchanges (Bumble's server accepts up to
  ``max_mtu``); the fragment size follows every exchange.
* Connection events: every ``connection_interval`` of device time the device
  runs one interval and at most ``packets_per_event`` notifications go out
  (unpaced with ``speed=None``: as fast as Bumble's ACL queue drains; paced:
  at the interval divided by speed). While ``QUEUE_LIMIT`` notifications wait
  the device waits too (no loss; lossy links are the device's faults).
* CCCDs: the device sends nothing on a characteristic until it is subscribed.
* A ``link_drop`` fault disconnects; device time runs on (output lost) until
  the link is back, then the peripheral advertises again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from typing import TYPE_CHECKING, Any

from knotsense.firmware_sim.ble_link import (
    DEFAULT_LINK_VERSION,
    DeviceLink,
    check_link_version,
    make_device,
)
from knotsense.firmware_sim.bumble_radio import Hci, open_hci
from knotsense.protocol import gatt

if TYPE_CHECKING:
    from knotsense.firmware_sim.config import SimConfig
    from knotsense.firmware_sim.device import SimulatedDevice

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 0.015
DEFAULT_PACKETS_PER_EVENT = 4
QUEUE_LIMIT = 512
MANUFACTURER = "KnotSense"


def peripheral_address(serial_number: str) -> str:
    """A stable random static address for a unit (top two bits set, as the spec requires)."""
    n = zlib.crc32(serial_number.encode("utf-8"))
    octets = [0xC2, 0x4B, 0x53, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF]
    return ":".join(f"{o:02X}" for o in octets)


class BumblePeripheral:
    """A simulated KnotSense device served on a Bumble stack.

    Args:
        config: the simulator configuration (framing and frame size are set here).
        transport: a Bumble transport name, or ``local`` for the virtual link.
        address: the Bluetooth address (default: derived from the serial number).
        link_version: ``1.1`` (fragments) or ``1.0`` (one frame per notification).
        connection_interval: seconds of device time per connection event.
        packets_per_event: notifications per connection event.
        max_mtu: the largest ATT MTU the server accepts (v1.0 frames are sized for it).
    """

    def __init__(
        self,
        config: SimConfig,
        *,
        transport: str = "local",
        address: str | None = None,
        link_version: str = DEFAULT_LINK_VERSION,
        connection_interval: float = DEFAULT_INTERVAL,
        packets_per_event: int = DEFAULT_PACKETS_PER_EVENT,
        max_mtu: int = 517,
    ) -> None:
        from knotsense.firmware_sim.ble_backend import advertised_name

        self.config = config
        self.transport = transport
        self.address = (address or peripheral_address(config.serial)).upper()
        self.link_version = check_link_version(link_version)
        self.connection_interval = connection_interval
        self.packets_per_event = packets_per_event
        self.max_mtu = max_mtu
        self.name = advertised_name(config.serial)
        self.device: SimulatedDevice = make_device(config, max_mtu, link_version)
        self.link: DeviceLink | None = None
        self.connections = 0
        self.notifications_sent = 0
        self.events = 0
        self.stalls = 0
        """Connection events the device waited because QUEUE_LIMIT notifications were queued
        (a real device would have overflowed its transmit buffer: the link did not keep up)."""
        self._hci: Hci | None = None
        self._bumble: Any = None
        self._connection: Any = None
        self._pump: asyncio.Task[None] | None = None
        self._chars: dict[str, Any] = {}
        self._uuid_of: dict[int, str] = {}
        self._stopped = False
        self._advertiser: asyncio.Task[None] | None = None

    # -- life cycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Open the controller, serve the GATT layout and advertise.

        Raises:
            TransportError: the Bumble transport cannot be opened.
        """
        from bumble.device import Device
        from bumble.hci import Address

        self._hci = await open_hci(self.transport, self.address)
        device = Device(name=self.name, address=Address(self.address), host=self._hci.host)
        device.add_services(self._services())
        for uuid, char in self._chars.items():
            self._uuid_of[char.handle] = uuid
        device.on("connection", self._on_connection)
        device.on("characteristic_subscription", self._on_subscription)
        self._bumble = device
        await device.power_on()
        await self._advertise()

    def stopping(self) -> None:
        """From now on, do not advertise again after a disconnection (``stop`` follows)."""
        self._stopped = True

    async def stop(self) -> None:
        """Disconnect, stop advertising and close the controller."""
        self._stopped = True
        await self._stop_pump()
        task, self._advertiser = self._advertiser, None
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        device, self._bumble = self._bumble, None
        if device is not None:
            with contextlib.suppress(Exception):
                if self._connection is not None:
                    await self._connection.disconnect()
            with contextlib.suppress(Exception):
                await device.stop_advertising()
        if self._hci is not None:
            await self._hci.close()
            self._hci = None

    async def _advertise(self) -> None:
        from bumble.core import UUID, AdvertisingData
        from bumble.hci import OwnAddressType

        adv = AdvertisingData(
            [
                (AdvertisingData.FLAGS, bytes([0x06])),
                (
                    AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                    UUID(gatt.SERVICE_UUID).to_bytes(),
                ),
            ]
        )
        scan = AdvertisingData([(AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode())])
        assert self._bumble is not None
        await self._bumble.start_advertising(
            own_address_type=OwnAddressType.RANDOM,
            advertising_data=bytes(adv),
            scan_response_data=bytes(scan),
        )

    # -- GATT --------------------------------------------------------------------------

    def _services(self) -> list[Any]:
        from bumble.att import Attribute, AttributeValue
        from bumble.gatt import Characteristic, Service

        props = Characteristic.Properties
        readable = Attribute.READABLE
        writable = Attribute.WRITEABLE
        info = self.device.info
        data = Characteristic(gatt.DATA_CHAR_UUID, props.NOTIFY, readable, b"")
        control = Characteristic(
            gatt.CONTROL_CHAR_UUID,
            props.WRITE | props.NOTIFY,
            readable | writable,
            AttributeValue(write=self._on_write),
        )
        main = [data, control]
        if self.link_version == "1.1":
            main.append(Characteristic(gatt.LINK_CHAR_UUID, props.READ, readable, b"\x01"))
        battery = Characteristic(
            gatt.BATTERY_LEVEL_UUID,
            props.READ | props.NOTIFY,
            readable,
            AttributeValue(read=lambda _c: bytes([self.link.battery if self.link else 100])),
        )
        version = ".".join(str(v) for v in info.firmware_version)
        dis = [
            Characteristic(uuid, props.READ, readable, value.encode())
            for uuid, value in (
                (gatt.MANUFACTURER_NAME_UUID, MANUFACTURER),
                (gatt.MODEL_NUMBER_UUID, info.model),
                (gatt.SERIAL_NUMBER_UUID, info.serial_number),
                (gatt.FIRMWARE_REVISION_UUID, version),
                (gatt.HARDWARE_REVISION_UUID, str(info.hw_revision)),
            )
        ]
        self._chars = {
            gatt.DATA_CHAR_UUID: data,
            gatt.CONTROL_CHAR_UUID: control,
            gatt.BATTERY_LEVEL_UUID: battery,
        }
        return [
            Service(gatt.SERVICE_UUID, main),
            Service(gatt.DEVICE_INFORMATION_SERVICE_UUID, dis),
            Service(gatt.BATTERY_SERVICE_UUID, [battery]),
        ]

    # -- connections -------------------------------------------------------------------

    def _on_connection(self, connection: Any) -> None:
        if self._connection is not None:
            return
        self.connections += 1
        self._connection = connection
        self.link = DeviceLink(self.device, connection.att_mtu, self.link_version)
        connection.on("disconnection", lambda _reason: self._on_disconnection(connection))
        connection.on(
            "connection_att_mtu_update", lambda: self._on_mtu(connection, connection.att_mtu)
        )
        self._pump = asyncio.get_running_loop().create_task(self._run(connection))

    def _on_mtu(self, connection: Any, mtu: int) -> None:
        if connection is self._connection and self.link is not None:
            self.link.set_mtu(mtu)

    def _on_disconnection(self, connection: Any) -> None:
        if connection is not self._connection:
            return
        self._connection = None
        self.link = None
        task, self._pump = self._pump, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        if not self._stopped and self.device.link_up:
            self._advertiser = asyncio.get_running_loop().create_task(self._readvertise())

    async def _readvertise(self) -> None:
        with contextlib.suppress(Exception):
            await self._advertise()

    def _on_subscription(self, bearer: Any, characteristic: Any, notify: bool, _ind: bool) -> None:
        uuid = self._uuid_of.get(characteristic.handle)
        if uuid is not None and self.link is not None:
            self.link.subscribe(uuid, notify)

    def _on_write(self, _connection: Any, value: bytes) -> None:
        if self.link is not None:
            self.link.write(bytes(value))

    async def _stop_pump(self) -> None:
        task, self._pump = self._pump, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- the link ----------------------------------------------------------------------

    async def _run(self, connection: Any) -> None:
        """Connection events until the connection ends (or a link drop ends it)."""
        loop = asyncio.get_running_loop()
        speed = self.config.speed
        interval = self.connection_interval
        device = self.device
        t0 = loop.time()
        vt = device.now
        event = 0
        try:
            while connection is self._connection:
                event += 1
                if speed is None:
                    await asyncio.sleep(0)
                else:
                    await asyncio.sleep(max(0.0, t0 + event * interval / speed - loop.time()))
                link = self.link
                if link is None or connection is not self._connection:
                    return
                self.events += 1
                if len(link.queue) < QUEUE_LIMIT:
                    vt += interval
                    link.run(vt)
                else:
                    self.stalls += 1  # the link is behind: the device waits
                if not device.link_up:
                    await self._drop(connection, vt)
                    return
                await self._send_event(connection, link)
        except asyncio.CancelledError:
            raise
        except Exception:  # a broken device or stack must not hang the host
            logger.exception("simulated Bumble peripheral failed")
            with contextlib.suppress(Exception):
                await connection.disconnect()

    async def _send_event(self, connection: Any, link: DeviceLink) -> None:
        assert self._bumble is not None
        sent = 0
        for uuid, packet in link.take(self.packets_per_event):
            char = self._chars.get(uuid)
            if char is None:
                continue
            await self._bumble.notify_subscriber(connection, char, packet)
            sent += 1
        self.notifications_sent += sent
        queue = getattr(self._bumble.host, "le_acl_packet_queue", None)
        if sent and queue is not None:
            # Bumble's host queue is unbounded: wait until the controller took it all.
            with contextlib.suppress(ValueError):  # the connection went away meanwhile
                await queue.drain(connection.handle)

    async def _drop(self, connection: Any, vt: float) -> None:
        """A link_drop fault: disconnect, let device time pass, advertise when it is back."""
        logger.info("simulated BLE link drop on %s", self.address)
        self._connection = None
        self.link = None
        with contextlib.suppress(Exception):
            await connection.disconnect()
        speed = self.config.speed
        while not self.device.link_up and not self._stopped:
            vt += self.connection_interval
            self.device.run_until(vt)  # output while the link is down is lost
            await asyncio.sleep(0 if speed is None else self.connection_interval / speed)
        if not self._stopped:
            await self._readvertise()
