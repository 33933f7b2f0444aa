"""BLE through a Bumble host stack: ``bumble://TRANSPORT/ADDRESS`` and ``sim+bumble://?...``.

Bumble (Google's Bluetooth stack in Python) runs the whole host side here:
connection, ATT MTU exchange, GATT discovery, CCCD writes, notifications. The
controller is named by a Bumble transport: ``usb:0`` (a USB dongle, no BlueZ
needed), ``serial:/dev/ttyACM0``, ``tcp-client:host:port``, ``hci-socket:0``
... or ``local``, the simulator's in-process virtual link::

    bumble://usb:0/C2:4B:53:12:34:56?mtu=247      a real device through a dongle
    sim+bumble://?scenario=back_session&mtu=23    the simulator as a Bumble peripheral
                                                  and a Bumble central on a virtual link

Addresses are random static by default (what the firmware uses); append
``/P`` for a public one (``.../AA:BB:CC:DD:EE:FF/P``). Options: ``mtu`` (the
ATT MTU to ask for, default 247), ``timeout`` (connect, seconds, default 10).
For ``sim+bumble`` the radio options are ``interval_ms``, ``ppe`` and ``link``
(1.0 or 1.1) as for ``sim+ble``; everything else configures the simulator.

Frames travel as for bleak (ble_framing.py): fragments on a v1.1 device,
whole frames on a v1.0 one, so the device client reads both transports alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from knotsense.errors import (
    ConfigurationError,
    DeviceNotFoundError,
    LinkLostError,
    TransportError,
)
from knotsense.host.transports.base import Transport
from knotsense.host.transports.ble_framing import LinkFraming, drain_packets
from knotsense.protocol import Framing
from knotsense.protocol.gatt import (
    CONTROL_CHAR_UUID,
    DATA_CHAR_UUID,
    LINK_CHAR_UUID,
    SERVICE_UUID,
)

DEFAULT_MTU = 247
DEFAULT_TIMEOUT_S = 10.0
CENTRAL_ADDRESS = "F0:4B:53:00:00:01"
_LOST = object()
_STACK_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, asyncio.TimeoutError)


def _stack_errors() -> tuple[type[BaseException], ...]:
    from bumble.core import BaseBumbleError

    return (*_STACK_ERRORS, BaseBumbleError)


def parse_bumble_url(url: str) -> tuple[str, str, dict[str, str]]:
    """``bumble://TRANSPORT/ADDRESS?opts`` -> (transport name, address, options).

    Raises:
        ConfigurationError: no transport or no address.
    """
    parts = urlsplit(url)
    rest = unquote(parts.netloc + parts.path)
    transport, _, address = rest.partition("/")
    if not transport or not address:
        raise ConfigurationError(
            f"{url!r}: give a Bumble transport and an address, e.g. bumble://usb:0/C2:4B:53:12:34:56"
        )
    return transport, address, dict(parse_qsl(parts.query))


class BumbleTransport(Transport):
    """A Bumble central connected to one KnotSense device."""

    framing = Framing.PACKET

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._transport_name, self._address, options = self._parse(url)
        try:
            self._timeout = float(options.pop("timeout", DEFAULT_TIMEOUT_S))
            self._mtu = int(options.pop("mtu", DEFAULT_MTU))
        except ValueError as exc:
            raise ConfigurationError(f"{url!r}: {exc}") from None
        if not 23 <= self._mtu <= 517:
            raise ConfigurationError(f"{url!r}: mtu must be 23..517, not {self._mtu}")
        self.link_framing = LinkFraming()
        self._queue: asyncio.Queue[bytes | object] = asyncio.Queue()
        self._hci: Any = None
        self._central: Any = None
        self._connection: Any = None
        self._control: Any = None
        self.att_mtu = 23

    def _parse(self, url: str) -> tuple[str, str, dict[str, str]]:
        return parse_bumble_url(url)

    async def _open_hci(self) -> Any:
        """The central's controller: a real Bumble transport, or the simulator's virtual link."""
        from bumble.host import Host

        if self._transport_name == "local" or self._transport_name.startswith("local:"):
            from knotsense.firmware_sim.bumble_radio import open_hci

            return await open_hci(self._transport_name, CENTRAL_ADDRESS)
        from bumble.transport import open_transport

        try:
            opened = await open_transport(self._transport_name)
        except Exception as exc:  # Bumble raises many kinds (ValueError, OSError, USB errors)
            raise TransportError(
                f"cannot open Bumble transport {self._transport_name!r}: {exc}"
            ) from None
        return _OpenedHci(Host(opened.source, opened.sink), opened)

    async def _start_central(self) -> None:
        from bumble.device import Device
        from bumble.hci import Address

        self._hci = await self._open_hci()
        host = self._hci.host
        central = Device(name="knotsense-host", address=Address(CENTRAL_ADDRESS), host=host)
        try:
            await central.power_on()
        except _stack_errors() as exc:
            await self._hci.close()
            raise TransportError(f"Bumble controller {self._transport_name!r}: {exc}") from None
        self._central = central

    def _peer_address(self) -> Any:
        from bumble.hci import Address

        text = self._address.upper()
        public = text.endswith("/P")
        text = text.removesuffix("/P")
        try:
            return Address(
                text, Address.PUBLIC_DEVICE_ADDRESS if public else Address.RANDOM_DEVICE_ADDRESS
            )
        except Exception:
            raise ConfigurationError(f"not a Bluetooth address: {self._address!r}") from None

    async def open(self) -> None:
        if self._central is None:
            await self._start_central()
        from bumble.core import UUID
        from bumble.device import Peer

        address = self._peer_address()
        self._queue = asyncio.Queue()
        try:
            connection = await asyncio.wait_for(
                self._central.connect(address, timeout=self._timeout), self._timeout + 1
            )
        except _stack_errors() as exc:
            raise DeviceNotFoundError(
                f"no BLE device at {self._address} answered within {self._timeout:g} s ({exc})"
            ) from None
        queue = self._queue

        def on_disconnection(_reason: object) -> None:
            if self._connection is connection:
                self._connection = None
            queue.put_nowait(_LOST)

        connection.on("disconnection", on_disconnection)
        try:
            peer = Peer(connection)
            self.att_mtu = await peer.request_mtu(self._mtu)
            services = await peer.discover_services([UUID(SERVICE_UUID)])
            if not services:
                raise TransportError(f"{self._address} does not offer the KnotSense service")
            chars = {
                str(c.uuid).lower(): c
                for c in await peer.discover_characteristics(service=services[0])
            }
            data, control = chars.get(DATA_CHAR_UUID), chars.get(CONTROL_CHAR_UUID)
            if data is None or control is None:
                raise TransportError(f"{self._address}: KnotSense characteristics missing")
            link = chars.get(LINK_CHAR_UUID)
            link_value = bytes(await link.read_value()) if link is not None else None
            self.link_framing.start(connection.att_mtu, link_value)
            for char, uuid in ((data, DATA_CHAR_UUID), (control, CONTROL_CHAR_UUID)):
                await peer.discover_descriptors(characteristic=char)
                await peer.subscribe(char, self._notifier(uuid))
        except TransportError:
            with contextlib.suppress(Exception):
                await connection.disconnect()
            raise
        except _stack_errors() as exc:
            with contextlib.suppress(Exception):
                await connection.disconnect()
            raise TransportError(f"BLE setup with {self._address} failed: {exc}") from None
        self._connection = connection
        self._control = control
        self.max_frame_size = self.link_framing.max_frame_size

    def _notifier(self, uuid: str) -> Any:
        framing = self.link_framing

        def on_notify(data: bytes) -> None:
            frame = framing.incoming(uuid, bytes(data))
            if frame is not None:
                self._queue.put_nowait(frame)

        return on_notify

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.disconnect(), self._timeout)

    async def reopen(self) -> None:
        """Connect again on the same central (its controller stays open)."""
        await self._disconnect()
        await self.open()

    async def close(self) -> None:
        await self._disconnect()
        self._central = None  # its controller goes with the HCI transport
        hci, self._hci = self._hci, None
        if hci is not None:
            await hci.close()

    async def send(self, frame: bytes) -> None:
        connection, control = self._connection, self._control
        if connection is None or control is None:
            raise LinkLostError("BLE link is not connected")
        try:
            for packet in self.link_framing.outgoing(frame):
                await control.write_value(packet, with_response=True)
        except _stack_errors() as exc:
            raise LinkLostError(f"BLE write failed: {exc}") from None

    async def receive(self, timeout: float) -> list[bytes]:
        return await drain_packets(self._queue, timeout, _LOST)


class _OpenedHci:
    """A real Bumble transport opened for the central."""

    def __init__(self, host: Any, transport: Any) -> None:
        self.host = host
        self._transport = transport

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._transport.close()


SIM_RADIO_PARAMS = ("interval_ms", "ppe", "link", "address")


class SimBumbleTransport(BumbleTransport):
    """``sim+bumble://?...``: the simulator as a Bumble peripheral, read by a Bumble central."""

    def _parse(self, url: str) -> tuple[str, str, dict[str, str]]:
        from knotsense.firmware_sim.ble_link import DEFAULT_LINK_VERSION
        from knotsense.firmware_sim.bumble_peripheral import (
            DEFAULT_INTERVAL,
            DEFAULT_PACKETS_PER_EVENT,
            BumblePeripheral,
        )
        from knotsense.firmware_sim.config import SimConfig

        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        options = {k: v for k, v in query if k in ("timeout", "mtu")}
        radio = {k: v for k, v in query if k in SIM_RADIO_PARAMS}
        kept = [(k, v) for k, v in query if k not in options and k not in radio]
        config = SimConfig.from_url("sim://?" + urlencode(kept))
        try:
            interval = float(radio.get("interval_ms", DEFAULT_INTERVAL * 1000)) / 1000
            ppe = int(radio.get("ppe", DEFAULT_PACKETS_PER_EVENT))
            mtu = int(options.get("mtu", DEFAULT_MTU))
        except ValueError as exc:
            raise ConfigurationError(f"bad sim+bumble parameter: {exc}") from None
        if not 0.0075 <= interval <= 4.0 or ppe < 1:
            raise ConfigurationError("sim+bumble: interval_ms must be 7.5..4000 and ppe at least 1")
        self._radio_name = f"local:{id(self):x}"
        self.peripheral = BumblePeripheral(
            config,
            transport=self._radio_name,
            address=radio.get("address") or None,
            link_version=radio.get("link", DEFAULT_LINK_VERSION),
            connection_interval=interval,
            packets_per_event=ppe,
            max_mtu=max(23, min(517, mtu)),
        )
        self._sim_epoch = time.time()
        self._peripheral_started = False
        return self._radio_name, self.peripheral.address, options

    async def open(self) -> None:
        if not self._peripheral_started:
            await self.peripheral.start()
            self._peripheral_started = True
        await super().open()

    async def close(self) -> None:
        self.peripheral.stopping()
        await super().close()
        if self._peripheral_started:
            self._peripheral_started = False
            await self.peripheral.stop()

    @property
    def simulated_device(self) -> Any:
        """The simulated device behind the link (for tests and ground truth)."""
        return self.peripheral.device
