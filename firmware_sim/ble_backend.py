"""A bleak backend that puts simulated devices on a virtual radio.

The simulator is reached through bleak's *public* classes, so the host's BLE
code path runs unchanged; nothing touches D-Bus or a Bluetooth adapter::

    from bleak import BleakClient, BleakScanner
    from knotsense.firmware_sim.ble_backend import SimBleakClient, SimBleakScanner, register_url

    register_url("sim+ble://?scenario=back_session&seed=3&mtu=247")
    device = await BleakScanner.find_device_by_name("KnotSense-12AB", backend=SimBleakScanner)
    async with BleakClient(device, backend=SimBleakClient) as client:
        await client.start_notify(DATA_CHAR_UUID, on_frame)

The radio is a process-wide registry of :class:`SimPeripheral` (one per
address): :func:`register_device` / :func:`register_url` put a device on it,
:class:`SimBleakScanner` hears their advertisements (name ``KnotSense-XXXX``,
the service UUID, an RSSI), :class:`SimBleakClient` connects to one.

The link, per connection:

* ATT MTU: 247 unless the client asks otherwise, as BlueZ, CoreBluetooth
  and WinRT exchange a larger MTU on connect. The client asks with the
  ``mtu=`` keyword (``BleakClient(dev, backend=SimBleakClient, mtu=23)``;
  bleak passes extra keywords to the backend) or the peripheral's default is
  set at registration (``mtu=23`` in the ``sim+ble`` URL); the result is
  capped at :data:`MAX_MTU` (517).
* Link version (``link=1.1``, the default, or ``link=1.0``; ble_link.py):
  v1.1 offers the link characteristic and fragments 244-byte frames over
  notifications of any MTU; v1.0 sends one frame of at most MTU - 3 bytes per
  notification, as protocol v1.0 did.
* Pacing: one connection event every ``connection_interval`` seconds of
  device time (7.5-50 ms; ``interval_ms=`` in the URL or
  ``connection_interval=`` as a client keyword), delivering at most
  ``packets_per_event`` notifications; with ``speed=None`` events follow each
  other as fast as the event loop runs, else at the interval divided by speed.
  Frames the link cannot carry yet wait (the device then waits too: no loss;
  losing data to a slow link is the device's ``slow_reader`` fault).
* Responses (frame type RESPONSE) are notified on the control
  characteristic, everything else on the data characteristic; a frame for a
  characteristic nobody subscribed to is not sent (as firmware checks the CCCD).
* Writes: the control characteristic takes write-with-response only, at
  most MTU - 3 bytes (a fragment on v1.1, a frame on v1.0).
* A ``link_drop`` fault disconnects: the disconnected callback is scheduled
  on the event loop and the peripheral advertises again; connecting again
  waits (up to the client's timeout) for the link to come back.
* Notification callbacks always run on the event loop.

The Battery Level characteristic follows the device's Status frames as they
pass through the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import struct
import threading
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import (
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)
from bleak.uuids import normalize_uuid_16, normalize_uuid_str

from knotsense.errors import ConfigurationError
from knotsense.firmware_sim.ble_link import (
    DEFAULT_LINK_VERSION,
    DeviceLink,
    check_link_version,
    make_device,
)
from knotsense.protocol import gatt

if TYPE_CHECKING:
    from knotsense.firmware_sim.config import SimConfig
    from knotsense.firmware_sim.device import SimulatedDevice

logger = logging.getLogger(__name__)

DEFAULT_MTU = 247
"""What a current host (BlueZ, CoreBluetooth, WinRT) gets after the MTU exchange."""
MIN_MTU = 23
"""The BLE default ATT MTU, before any exchange."""
MAX_MTU = 517
MIN_INTERVAL = 0.0075
MAX_INTERVAL = 0.050
DEFAULT_INTERVAL = 0.015
DEFAULT_PACKETS_PER_EVENT = 4
DEFAULT_RSSI = -58
ADVERTISING_INTERVAL = 0.1
"""Real seconds between advertisements heard by a scanner."""
QUEUE_LIMIT = 512
"""Notifications queued for the link before the device is made to wait."""
BLE_PARAMS: tuple[str, ...] = ("address", "rssi", "mtu", "interval_ms", "ppe", "link")
"""``sim+ble`` URL parameters that configure the radio rather than the device."""

CCCD_UUID = normalize_uuid_16(0x2902)
USER_DESCRIPTION_UUID = normalize_uuid_16(0x2901)
MANUFACTURER = "KnotSense"

_Props = list[Literal["read", "write", "write-without-response", "notify"]]


# -- the radio: a registry of simulated peripherals -------------------------------


@dataclasses.dataclass(eq=False)
class SimPeripheral:
    """A simulated device on the virtual radio.

    Attributes:
        address: its Bluetooth address (the registry key).
        config: the simulator configuration (framing and frame size are set at connect).
        name: the advertised local name, ``KnotSense-XXXX``.
        rssi: the RSSI scanners report, dBm.
        mtu: the ATT MTU a client gets when it does not ask for one.
        connection_interval: seconds of device time between connection events.
        packets_per_event: notifications one connection event can carry.
        device: the live device, built at the first connection and kept across
            reconnects (a reconnect is not a reboot).
        client: the connected client backend, if any.
    """

    address: str
    config: SimConfig
    name: str
    rssi: int = DEFAULT_RSSI
    mtu: int = DEFAULT_MTU
    connection_interval: float = DEFAULT_INTERVAL
    packets_per_event: int = DEFAULT_PACKETS_PER_EVENT
    device: SimulatedDevice | None = None
    client: SimBleakClient | None = None
    device_mtu: int | None = None
    """The MTU the device's frame size was built for."""
    link_version: str = DEFAULT_LINK_VERSION
    """``1.1``: fragments over any MTU; ``1.0``: one frame per notification."""


_registry: dict[str, SimPeripheral] = {}
_registry_lock = threading.Lock()


def register_device(
    config: SimConfig,
    *,
    address: str | None = None,
    rssi: int = DEFAULT_RSSI,
    mtu: int = DEFAULT_MTU,
    connection_interval: float = DEFAULT_INTERVAL,
    packets_per_event: int = DEFAULT_PACKETS_PER_EVENT,
    link_version: str = DEFAULT_LINK_VERSION,
) -> SimPeripheral:
    """Put a simulated device on the virtual radio; returns its peripheral record.

    The address defaults to one derived from the serial number (stable per
    unit); re-registering an address replaces the old peripheral.

    Raises:
        ConfigurationError: an impossible MTU, interval or packet count.
    """
    check_link_version(link_version)
    if not MIN_MTU <= mtu <= MAX_MTU:
        raise ConfigurationError(f"ATT MTU must be 23..517, not {mtu}")
    if not MIN_INTERVAL <= connection_interval <= 4.0:
        raise ConfigurationError(
            f"connection interval must be 7.5 ms..4 s, not {connection_interval * 1000:g} ms"
        )
    if packets_per_event < 1:
        raise ConfigurationError("packets per connection event must be >= 1")
    serial = config.serial
    name = advertised_name(serial)
    with _registry_lock:
        if address is None:
            address = _address_for(serial)
        address = address.upper()
        if not re.fullmatch(r"([0-9A-F]{2}:){5}[0-9A-F]{2}", address):
            raise ConfigurationError(f"not a Bluetooth address: {address!r}")
        peripheral = SimPeripheral(
            address,
            config,
            name,
            rssi,
            mtu,
            connection_interval,
            packets_per_event,
            link_version=link_version,
        )
        _registry[address] = peripheral
    return peripheral


def register_url(url: str) -> SimPeripheral:
    """Register the device a ``sim+ble://?...`` URL describes.

    Radio parameters (:data:`BLE_PARAMS`): ``address``, ``rssi``, ``mtu`` (the
    MTU negotiated when the client does not ask), ``interval_ms`` (connection
    interval), ``ppe`` (packets per connection event) and ``link`` (1.0 or
    1.1, the link layer: ble_link.py). Everything else
    goes to :meth:`SimConfig.from_url`.

    Raises:
        ConfigurationError: a malformed parameter.
    """
    from knotsense.firmware_sim.config import SimConfig

    parts = urlsplit(url)
    kept: list[tuple[str, str]] = []
    radio: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in BLE_PARAMS:
            radio[key] = value
        else:
            kept.append((key, value))
    config = SimConfig.from_url(_rebuild(parts.scheme, parts.netloc, parts.path, urlencode(kept)))
    try:
        kwargs: dict[str, Any] = {}
        if "rssi" in radio:
            kwargs["rssi"] = int(radio["rssi"])
        if "mtu" in radio:
            kwargs["mtu"] = int(radio["mtu"])
        if "interval_ms" in radio:
            kwargs["connection_interval"] = float(radio["interval_ms"]) / 1000.0
        if "ppe" in radio:
            kwargs["packets_per_event"] = int(radio["ppe"])
        if "link" in radio:
            kwargs["link_version"] = radio["link"]
    except ValueError as exc:
        raise ConfigurationError(f"bad sim+ble parameter: {exc}") from None
    return register_device(config, address=radio.get("address") or None, **kwargs)


def unregister(address: str) -> None:
    """Take a device off the radio (a connected client loses its link).

    Call it from the event loop's thread (or with no client connected).
    """
    with _registry_lock:
        peripheral = _registry.pop(address.upper(), None)
    if peripheral is not None and peripheral.client is not None:
        peripheral.client._lose_link("unregistered")


def clear_registry() -> None:
    """Take every simulated device off the radio (tests call it between cases)."""
    for address in list(_registry):
        unregister(address)


def registered() -> list[SimPeripheral]:
    """The peripherals on the radio, in registration order."""
    with _registry_lock:
        return list(_registry.values())


def get_peripheral(address: str) -> SimPeripheral | None:
    """The peripheral registered under *address* (case-insensitive), if any."""
    with _registry_lock:
        return _registry.get(address.upper())


def advertised_name(serial_number: str) -> str:
    """``KnotSense-`` + the last 4 hex digits of the serial number (gatt.py)."""
    digits = re.sub(r"[^0-9A-Fa-f]", "", serial_number).upper()
    if len(digits) < 4:
        digits = f"{zlib.crc32(serial_number.encode()) & 0xFFFF:04X}"
    return gatt.ADVERTISED_NAME_PREFIX + digits[-4:]


def _address_for(serial_number: str) -> str:
    """A stable, locally administered address for a unit, unique in the registry."""
    n = zlib.crc32(serial_number.encode("utf-8"))
    while True:
        octets = [0xC2, 0x4B, 0x53, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF]
        address = ":".join(f"{o:02X}" for o in octets)
        if address not in _registry:
            return address
        n += 1


# -- the scanner -------------------------------------------------------------------


class SimBleakScanner(BaseBleakScanner):
    """Hears the advertisements of the registered simulated devices.

    Use through ``BleakScanner(..., backend=SimBleakScanner)``. A connected
    peripheral stops advertising, as the real firmware does.
    """

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None = None,
        service_uuids: list[str] | None = None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self.scanning_mode = scanning_mode
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start hearing advertisements (the first round is immediate)."""
        self.seen_devices = {}
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._listen())

    async def stop(self) -> None:
        """Stop scanning."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen(self) -> None:
        heard = 0
        while True:
            for peripheral in registered():
                if peripheral.client is not None:
                    continue
                self._advertisement(peripheral, heard)
            heard += 1
            await asyncio.sleep(ADVERTISING_INTERVAL)

    def _advertisement(self, peripheral: SimPeripheral, heard: int) -> None:
        service_uuids = [gatt.SERVICE_UUID]
        if not self.is_allowed_uuid(service_uuids):
            return
        # a deterministic +-2 dB wobble, as a real RSSI never sits still
        rssi = peripheral.rssi + (zlib.crc32(f"{peripheral.address}{heard}".encode()) % 5) - 2
        adv = AdvertisementData(
            local_name=peripheral.name,
            manufacturer_data={},
            service_data={},
            service_uuids=service_uuids,
            tx_power=0,
            rssi=rssi,
            platform_data=(peripheral,),
        )
        device = self.create_or_update_device(
            peripheral.address, peripheral.address, peripheral.name, peripheral, adv
        )
        self.call_detection_callbacks(device, adv)


# -- the client --------------------------------------------------------------------


@dataclasses.dataclass
class _Attribute:
    """What the simulated GATT server knows about one characteristic."""

    uuid: str
    properties: _Props
    read: Callable[[], bytes] | None = None


class SimBleakClient(BaseBleakClient):
    """Connects to a registered simulated device: GATT, MTU, paced notifications.

    Use through ``BleakClient(address_or_device, backend=SimBleakClient)``.

    Keyword Args:
        mtu: the ATT MTU to request (default: the peripheral's ``mtu``).
        connection_interval: seconds between connection events (7.5-50 ms;
            default: the peripheral's).
        packets_per_event: notifications per connection event.
    """

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        services: set[str] | None = None,
        mtu: int | None = None,
        connection_interval: float | None = None,
        packets_per_event: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        details = getattr(address_or_ble_device, "details", None)
        self._peripheral_hint = details if isinstance(details, SimPeripheral) else None
        self._service_filter = (
            None if services is None else {normalize_uuid_str(u) for u in services}
        )
        if connection_interval is not None and not (
            MIN_INTERVAL <= connection_interval <= MAX_INTERVAL
        ):
            raise BleakError(
                f"connection interval must be 7.5-50 ms, not {connection_interval * 1000:g} ms"
            )
        self._requested_mtu = mtu
        self._requested_interval = connection_interval
        self._requested_ppe = packets_per_event
        self._peripheral: SimPeripheral | None = None
        self._mtu = MIN_MTU
        self._link: DeviceLink | None = None
        self._connected = False
        self._pump_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._attributes: dict[int, _Attribute] = {}
        self._cccd: dict[int, int] = {}  # descriptor handle -> characteristic handle
        self._notify: dict[int, NotifyCallback] = {}  # characteristic handle -> callback
        self.interval = DEFAULT_INTERVAL
        self.packets_per_event = DEFAULT_PACKETS_PER_EVENT
        self.events = 0
        """Connection events run (at most ``packets_per_event`` notifications each)."""
        self.notifications_sent = 0

    @property
    def notifications_unsubscribed(self) -> int:
        """Frames not sent because nobody subscribed to their characteristic."""
        return self._link.unsubscribed if self._link else 0

    @property
    def notifications_oversize(self) -> int:
        """Frames longer than MTU - 3 on a v1.0 link (not sendable, dropped)."""
        return self._link.oversize if self._link else 0

    @property
    def link(self) -> DeviceLink | None:
        """The firmware's BLE glue of this connection (queue, fragmenters, write reassembly)."""
        return self._link

    # -- properties --------------------------------------------------------------

    @property
    def name(self) -> str:
        """The advertised name of the peripheral."""
        peripheral = self._peripheral or self._peripheral_hint or get_peripheral(self.address)
        return peripheral.name if peripheral else self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        """The negotiated ATT MTU (23 until connected, as before an exchange)."""
        return self._mtu

    @property
    def is_connected(self) -> bool:
        """True while the simulated link is up."""
        return self._connected

    @property
    def device(self) -> SimulatedDevice | None:
        """The simulated device behind the connection (for tests and ground truth)."""
        return self._peripheral.device if self._peripheral else None

    # -- connection --------------------------------------------------------------

    async def connect(self, pair: bool = False, **kwargs: Any) -> None:
        """Connect, exchange the MTU and discover the GATT layout into ``services``.

        Raises:
            BleakDeviceNotFoundError: no simulated device has this address.
            BleakError: the peripheral is connected to another client.
            TimeoutError: its link did not come back within the timeout.
        """
        if self._connected:
            return
        peripheral = get_peripheral(self.address)
        if peripheral is None:
            raise BleakDeviceNotFoundError(
                self.address, f"no simulated device with address {self.address}"
            )
        if peripheral.client is not None and peripheral.client is not self:
            raise BleakError(f"{self.address} is already connected to another client")
        self._loop = asyncio.get_running_loop()
        self.interval = self._requested_interval or peripheral.connection_interval
        self.packets_per_event = self._requested_ppe or peripheral.packets_per_event
        requested = self._requested_mtu or peripheral.mtu
        mtu = max(MIN_MTU, min(MAX_MTU, requested))
        async with asyncio.timeout(self._timeout):
            device = self._device_for(peripheral, mtu)
            await self._wait_link_up(peripheral, device)
            peripheral.client = self
            self._peripheral = peripheral
            await self._sleep_events(2)  # connection setup and MTU exchange
        self._mtu = mtu
        self._link = DeviceLink(device, mtu, peripheral.link_version)
        self.services = self._build_services()
        self._connected = True
        self._pump_task = self._loop.create_task(self._pump(device))

    async def disconnect(self) -> None:
        """Disconnect on request (the disconnected callback is not called)."""
        if not self._connected:
            return
        self._teardown()
        await self._sleep_events(1)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pairing is not needed: the prototype uses Just Works without bonding."""
        logger.debug("pair() on a simulated device: nothing to do")

    async def unpair(self) -> None:
        """Nothing to forget: the simulated device does not bond."""
        logger.debug("unpair() on a simulated device: nothing to do")

    def _device_for(self, peripheral: SimPeripheral, mtu: int) -> SimulatedDevice:
        """The peripheral's device, built at the first connection for this MTU."""
        if peripheral.device is None:
            peripheral.device = make_device(peripheral.config, mtu, peripheral.link_version)
            peripheral.device_mtu = mtu
        elif (
            peripheral.link_version == "1.0"
            and peripheral.device_mtu is not None
            and mtu < peripheral.device_mtu
        ):
            # The packetiser was sized for a bigger MTU at the first connection.
            raise BleakError(
                f"the simulated device was first connected at MTU {peripheral.device_mtu}; "
                f"reconnecting at a smaller MTU ({mtu}) is not supported"
            )
        return peripheral.device

    async def _wait_link_up(self, peripheral: SimPeripheral, device: SimulatedDevice) -> None:
        """Let device time pass (its output lost) until a dropped link returns."""
        while not device.link_up:
            device.run_until(device.now + self.interval)
            await self._sleep_events(1)

    def _teardown(self) -> None:
        self._connected = False
        task, self._pump_task = self._pump_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self._notify.clear()
        if self._peripheral is not None and self._peripheral.client is self:
            self._peripheral.client = None

    def _lose_link(self, why: str) -> None:
        """An unsolicited disconnect: tear down and schedule the callback on the loop."""
        if not self._connected:
            return
        logger.info("simulated BLE link to %s lost: %s", self.address, why)
        self._teardown()
        callback = self._disconnected_callback
        if callback is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(callback)

    async def _sleep_events(self, events: int) -> None:
        """Wait *events* connection intervals, scaled by the simulator's speed."""
        speed = self._speed()
        await asyncio.sleep(0 if speed is None else events * self.interval / speed)

    def _speed(self) -> float | None:
        peripheral = self._peripheral or get_peripheral(self.address)
        return getattr(peripheral.config, "speed", None) if peripheral else None

    # -- the link ----------------------------------------------------------------

    async def _pump(self, device: SimulatedDevice) -> None:
        """Connection events: run the device one interval, then send what fits."""
        loop = asyncio.get_running_loop()
        speed = self._speed()
        t0 = loop.time()
        vt = device.now
        event = 0
        try:
            while self._connected:
                event += 1
                if speed is None:
                    await asyncio.sleep(0)
                else:
                    delay = t0 + event * self.interval / speed - loop.time()
                    await asyncio.sleep(max(0.0, delay))
                if not self._connected:
                    return
                self.events += 1
                link = self._link
                assert link is not None
                if len(link.queue) < QUEUE_LIMIT:
                    vt += self.interval
                    link.run(vt)
                if not device.link_up:
                    self._lose_link("link drop")
                    return
                self._send_event()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken device must not hang the host
            logger.exception("simulated device failed")
            self._lose_link(f"device error: {exc}")

    def _send_event(self) -> None:
        link = self._link
        assert link is not None
        for uuid, packet in link.take(self.packets_per_event):
            if not self._connected:
                return
            callback = self._notify.get(self._handle_of(uuid))
            if callback is None:
                continue
            self.notifications_sent += 1
            callback(bytearray(packet))

    # -- GATT --------------------------------------------------------------------

    def _build_services(self) -> BleakGATTServiceCollection:
        """The GATT layout of protocol/gatt.py, handles assigned in order."""
        info = self._device_info()
        layout: list[tuple[str, list[tuple[str, _Props, Callable[[], bytes] | None, str]]]] = [
            (
                gatt.SERVICE_UUID,
                [
                    (gatt.DATA_CHAR_UUID, ["notify"], None, "KnotSense data"),
                    (gatt.CONTROL_CHAR_UUID, ["write", "notify"], None, "KnotSense control"),
                    *self._link_characteristic(),
                ],
            ),
            (
                gatt.DEVICE_INFORMATION_SERVICE_UUID,
                [
                    (uuid, ["read"], _const(value), "")
                    for uuid, value in (
                        (gatt.MANUFACTURER_NAME_UUID, MANUFACTURER),
                        (gatt.MODEL_NUMBER_UUID, info["model"]),
                        (gatt.SERIAL_NUMBER_UUID, info["serial"]),
                        (gatt.FIRMWARE_REVISION_UUID, info["firmware"]),
                        (gatt.HARDWARE_REVISION_UUID, info["hardware"]),
                    )
                ],
            ),
            (
                gatt.BATTERY_SERVICE_UUID,
                [(gatt.BATTERY_LEVEL_UUID, ["read", "notify"], self._battery_value, "")],
            ),
        ]
        collection = BleakGATTServiceCollection()
        self._attributes.clear()
        self._cccd.clear()
        handle = 0x0010
        for service_uuid, characteristics in layout:
            if self._service_filter is not None and service_uuid not in self._service_filter:
                handle += 0x10
                continue
            service = BleakGATTService(None, handle, service_uuid)
            collection.add_service(service)
            handle += 1
            for uuid, props, read, description in characteristics:
                char = BleakGATTCharacteristic(
                    None, handle, uuid, list(props), lambda: self._mtu - 3, service
                )
                collection.add_characteristic(char)
                self._attributes[handle] = _Attribute(uuid, props, read)
                char_handle = handle
                handle += 2  # declaration + value
                if "notify" in props:
                    collection.add_descriptor(BleakGATTDescriptor(None, handle, CCCD_UUID, char))
                    self._cccd[handle] = char_handle
                    handle += 1
                if description:
                    collection.add_descriptor(
                        BleakGATTDescriptor(None, handle, USER_DESCRIPTION_UUID, char)
                    )
                    self._attributes[handle] = _Attribute(
                        USER_DESCRIPTION_UUID, ["read"], _const(description)
                    )
                    handle += 1
            handle = (handle + 0x0F) & ~0x0F
        return collection

    def _device_info(self) -> dict[str, str]:
        info = getattr(self.device, "info", None)
        if info is None:
            return {"model": "", "serial": "", "firmware": "", "hardware": ""}
        return {
            "model": str(getattr(info, "model", "")),
            "serial": str(getattr(info, "serial_number", "")),
            "firmware": str(getattr(info, "firmware", "")),
            "hardware": str(getattr(info, "hw_revision", "")),
        }

    def _link_characteristic(self) -> list[tuple[str, _Props, Callable[[], bytes], str]]:
        value = self._link.link_value if self._link else None
        if value is None:
            return []
        return [(gatt.LINK_CHAR_UUID, ["read"], _const_bytes(value), "KnotSense link")]

    def _battery_value(self) -> bytes:
        return bytes([self._link.battery if self._link else 100])

    def _handle_of(self, uuid: str) -> int:
        for handle, attribute in self._attributes.items():
            if attribute.uuid == uuid:
                return handle
        return -1

    def _attribute(self, handle: int) -> _Attribute:
        if not self._connected:
            raise BleakError("Not connected")
        attribute = self._attributes.get(handle)
        if attribute is None:
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.INVALID_HANDLE)
        return attribute

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Read a readable characteristic (Device Information, Battery Level)."""
        attribute = self._attribute(characteristic.handle)
        if attribute.read is None:
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.READ_NOT_PERMITTED)
        if not use_cached:
            await self._sleep_events(1)
        return bytearray(attribute.read())

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Read a descriptor: a CCCD shows whether notifications are on."""
        if not self._connected:
            raise BleakError("Not connected")
        if descriptor.handle in self._cccd:
            on = self._cccd[descriptor.handle] in self._notify
            return bytearray(struct.pack("<H", 1 if on else 0))
        attribute = self._attribute(descriptor.handle)
        assert attribute.read is not None
        return bytearray(attribute.read())

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool, **kwargs: Any
    ) -> None:
        """Write one frame to the control characteristic (with response only)."""
        attribute = self._attribute(characteristic.handle)
        if "write" not in attribute.properties:
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.WRITE_NOT_PERMITTED)
        if not response:
            raise BleakError(f"{attribute.uuid} does not support write-without-response")
        payload = bytes(data)
        if len(payload) > self._mtu - 3:
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.INVALID_ATTRIBUTE_VALUE_LENGTH)
        link = self._link
        assert link is not None
        link.write(payload)
        await self._sleep_events(1)  # the write response comes back one event later
        if not self._connected:
            raise BleakError("Disconnected during write")

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: Any, **kwargs: Any
    ) -> None:
        """Refuse CCCD writes like bleak does; the other descriptors are read-only."""
        if descriptor.uuid == CCCD_UUID:
            raise ValueError(
                "Cannot write to CCCD (0x2902) directly. "
                "Use start_notify() or stop_notify() instead."
            )
        self._attribute(descriptor.handle)
        raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.WRITE_NOT_PERMITTED)

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        """Subscribe: from the next connection event, frames reach *callback* on the loop."""
        attribute = self._attribute(characteristic.handle)
        if "notify" not in attribute.properties:
            raise BleakError(f"{attribute.uuid} does not support notifications")
        self._notify[characteristic.handle] = callback
        if self._link is not None:
            self._link.subscribe(attribute.uuid, True)
        await self._sleep_events(1)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Unsubscribe."""
        attribute = self._attribute(characteristic.handle)
        self._notify.pop(characteristic.handle, None)
        if self._link is not None:
            self._link.subscribe(attribute.uuid, False)
        await self._sleep_events(1)


def _const(text: str) -> Callable[[], bytes]:
    data = text.encode("utf-8")
    return lambda: data


def _const_bytes(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _rebuild(scheme: str, netloc: str, path: str, query: str) -> str:
    """A URL again, keeping ``//`` (urlunsplit drops it for unknown schemes)."""
    return f"{scheme}://{netloc}{path}" + (f"?{query}" if query else "")
