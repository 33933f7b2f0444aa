"""BLE transport through bleak: ``ble://ADDRESS`` or ``ble://?name=KnotSense-12AB``.

bleak is async and notification-driven: notifications from the data and
control characteristics land in a queue that :meth:`receive` drains. The
backend is injectable (``backend=``, as bleak does), which is how
``sim+ble://`` reaches the simulator through bleak's own public classes.

URL options: ``timeout`` (scan and connect, seconds, default 10), ``mtu``
(ask for this ATT MTU where the backend supports it).

A device with the link characteristic (protocol v1.1) gets its frames cut
into fragments and rebuilt (ble_framing.py), so any MTU works; a v1.0 device
at an MTU below ``MIN_V1_ATT_MTU`` fails at once with one line that says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError

from knotsense.errors import ConfigurationError, DeviceNotFoundError, LinkLostError, TransportError
from knotsense.host.transports.base import Transport
from knotsense.host.transports.ble_framing import LinkFraming, drain_packets
from knotsense.protocol import Framing
from knotsense.protocol.gatt import (
    CONTROL_CHAR_UUID,
    DATA_CHAR_UUID,
    LINK_CHAR_UUID,
    SERVICE_UUID,
)

DEFAULT_TIMEOUT_S = 10.0
_LOST = object()


def parse_ble_url(url: str) -> tuple[str | None, str | None, dict[str, str]]:
    """``ble://ADDR?opt=..`` or ``ble://?name=NAME&opt=..`` -> (address, name, options)."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    address = parts.netloc or None
    name = params.pop("name", None)
    if address is None and name is None:
        raise ConfigurationError(f"{url!r}: give an address (ble://AA:BB:..) or ?name=")
    return address, name, params


class BleTransport(Transport):
    """Frames over GATT notifications and writes (one frame per packet)."""

    framing = Framing.PACKET
    scanner_backend: type | None = None
    client_backend: type | None = None

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._address, self._name, options = self._parse(url)
        try:
            self._timeout = float(options.pop("timeout", DEFAULT_TIMEOUT_S))
            self._mtu = int(options.pop("mtu")) if "mtu" in options else None
        except ValueError as exc:
            raise ConfigurationError(f"{url!r}: {exc}") from None
        self._extra = options
        self._client: BleakClient | None = None
        self._queue: asyncio.Queue[bytes | object] = asyncio.Queue()
        self._device: Any = None
        self.link_framing = LinkFraming()

    def _parse(self, url: str) -> tuple[str | None, str | None, dict[str, str]]:
        return parse_ble_url(url)

    def _client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.client_backend is not None:
            kwargs["backend"] = self.client_backend
        if self._mtu is not None:
            kwargs["mtu"] = self._mtu
        return kwargs

    async def _find(self) -> Any:
        backend = {} if self.scanner_backend is None else {"backend": self.scanner_backend}
        try:
            if self._address is not None:
                device = await BleakScanner.find_device_by_address(
                    self._address, timeout=self._timeout, **backend
                )
                what = f"address {self._address}"
            else:
                name = self._name
                device = await BleakScanner.find_device_by_filter(
                    lambda d, adv: name in (d.name, adv.local_name),
                    timeout=self._timeout,
                    **backend,
                )
                what = f"name {name!r}"
        except (BleakError, OSError) as exc:
            raise TransportError(f"BLE scan failed: {exc}") from None
        if device is None:
            raise DeviceNotFoundError(f"no BLE device with {what} found within {self._timeout:g} s")
        return device

    async def open(self) -> None:
        if self._device is None:
            self._device = await self._find()
        self._queue = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def on_disconnect(_client: BleakClient) -> None:
            loop.call_soon_threadsafe(self._queue.put_nowait, _LOST)

        client = BleakClient(
            self._device,
            disconnected_callback=on_disconnect,
            timeout=self._timeout,
            **self._client_kwargs(),
        )
        try:
            await client.connect()
            if client.services.get_service(SERVICE_UUID) is None:
                await client.disconnect()
                raise TransportError(f"{self._device} does not offer the KnotSense service")
            link_value = None
            if client.services.get_characteristic(LINK_CHAR_UUID) is not None:
                link_value = bytes(await client.read_gatt_char(LINK_CHAR_UUID))
            try:
                self.link_framing.start(client.mtu_size, link_value)
            except TransportError:
                await client.disconnect()
                raise
            await client.start_notify(DATA_CHAR_UUID, self._notifier(DATA_CHAR_UUID))
            await client.start_notify(CONTROL_CHAR_UUID, self._notifier(CONTROL_CHAR_UUID))
        except (BleakError, OSError, TimeoutError) as exc:
            with contextlib.suppress(Exception):
                await client.disconnect()
            raise TransportError(f"BLE connect to {self._device} failed: {exc}") from None
        self._client = client
        self.max_frame_size = self.link_framing.max_frame_size

    def _notifier(self, uuid: str) -> Any:
        framing = self.link_framing

        def on_notify(_char: Any, data: bytearray) -> None:
            frame = framing.incoming(uuid, bytes(data))
            if frame is not None:
                self._queue.put_nowait(frame)

        return on_notify

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.disconnect()

    async def send(self, frame: bytes) -> None:
        client = self._client
        if client is None or not client.is_connected:
            raise LinkLostError("BLE link is not connected")
        try:
            for packet in self.link_framing.outgoing(frame):
                await client.write_gatt_char(CONTROL_CHAR_UUID, packet, response=True)
        except (BleakError, OSError) as exc:
            raise LinkLostError(f"BLE write failed: {exc}") from None

    async def receive(self, timeout: float) -> list[bytes]:
        return await drain_packets(self._queue, timeout, _LOST)


class SimBleTransport(BleTransport):
    """``sim+ble://?scenario=..``: the simulator on a virtual radio, through bleak's classes."""

    def _parse(self, url: str) -> tuple[str | None, str | None, dict[str, str]]:
        from knotsense.firmware_sim import ble_backend

        self.scanner_backend = ble_backend.SimBleakScanner
        self.client_backend = ble_backend.SimBleakClient
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        options = {k: v for k, v in query if k == "timeout"}
        device_query = urlencode([(k, v) for k, v in query if k != "timeout"])
        self.peripheral = ble_backend.register_url(f"{parts.scheme}://?{device_query}")
        self._sim_epoch = time.time()
        return self.peripheral.address, None, options

    @property
    def simulated_device(self) -> Any | None:
        """The simulated device on the virtual radio (None until it is built)."""
        return self.peripheral.device
