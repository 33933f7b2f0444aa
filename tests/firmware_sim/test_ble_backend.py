"""The simulator through bleak's public BleakScanner and BleakClient (backend=...)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError

from knotsense.errors import ConfigurationError
from knotsense.firmware_sim import ble_backend
from knotsense.firmware_sim.ble_backend import (
    SimBleakClient,
    SimBleakScanner,
    clear_registry,
    register_url,
)
from knotsense.protocol import (
    Command,
    Encoder,
    Framing,
    GetInfo,
    PacketDecoder,
    Ping,
    Response,
    SampleBlock,
    StartStream,
    gatt,
)
from knotsense.protocol.fragment import Fragmenter, Reassembler

CCCD = "00002902-0000-1000-8000-00805f9b34fb"
_tx: dict[int, Fragmenter] = {}
"""Each client's command fragmenter (one counter per connection)."""


@pytest.fixture(autouse=True)
def _clean_radio():
    clear_registry()
    _tx.clear()
    yield
    clear_registry()


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


class Collector:
    """Notifications of one or more characteristics, rebuilt (v1.1) and decoded as they arrive."""

    def __init__(self, fragments: bool = True) -> None:
        self.decoder = PacketDecoder()
        self.fragments = fragments
        self.rx: dict[str, Reassembler] = {}
        self.sizes: list[int] = []
        self.frames: list = []
        self.loop_ok = True

    def __call__(self, char, data: bytearray) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.loop_ok = False
        self.sizes.append(len(data))
        frame: bytes | None = bytes(data)
        if self.fragments:
            frame = self.rx.setdefault(char.uuid, Reassembler()).feed(frame)
        if frame is not None:
            self.frames += self.decoder.feed(frame)

    def messages(self, cls: type) -> list:
        return [f.message for f in self.frames if isinstance(f.message, cls)]

    async def wait_for(self, predicate, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self):
                await asyncio.sleep(0.005)


async def write_frame(client: BleakClient, frame: bytes, fragments: bool = True) -> None:
    """One command frame to the control characteristic: as fragments (v1.1) or whole (v1.0)."""
    tx = _tx.setdefault(id(client), Fragmenter(client.mtu_size))
    pieces = tx.split(frame) if fragments else [frame]
    for piece in pieces:
        await client.write_gatt_char(gatt.CONTROL_CHAR_UUID, piece, response=True)


def test_scanner_hears_the_advertisement_by_name_and_service() -> None:
    peripheral = register_url("sim+ble://?seed=3&rssi=-61")
    assert peripheral.name.startswith(gatt.ADVERTISED_NAME_PREFIX)
    assert len(peripheral.name) == len(gatt.ADVERTISED_NAME_PREFIX) + 4

    async def main():
        found = await BleakScanner.discover(
            0.15, return_adv=True, backend=SimBleakScanner, service_uuids=[gatt.SERVICE_UUID]
        )
        by_name = await BleakScanner.find_device_by_name(
            peripheral.name, timeout=2, backend=SimBleakScanner
        )
        other = await BleakScanner.discover(
            0.15, backend=SimBleakScanner, service_uuids=["0000feed-0000-1000-8000-00805f9b34fb"]
        )
        return found, by_name, other

    found, by_name, other = run(main())
    _, adv = found[peripheral.address]
    assert adv.local_name == peripheral.name
    assert gatt.SERVICE_UUID in adv.service_uuids
    assert -64 <= adv.rssi <= -59
    assert by_name is not None and by_name.address == peripheral.address
    assert other == []


def test_connect_fills_the_gatt_layout_at_the_default_mtu() -> None:
    peripheral = register_url("sim+ble://?seed=3")

    async def main():
        async with BleakClient(peripheral.address, backend=SimBleakClient) as client:
            services = {s.uuid for s in client.services}
            data = client.services.get_characteristic(gatt.DATA_CHAR_UUID)
            control = client.services.get_characteristic(gatt.CONTROL_CHAR_UUID)
            serial = await client.read_gatt_char(gatt.SERIAL_NUMBER_UUID)
            battery = await client.read_gatt_char(gatt.BATTERY_LEVEL_UUID)
            manufacturer = await client.read_gatt_char(gatt.MANUFACTURER_NAME_UUID)
            link = await client.read_gatt_char(gatt.LINK_CHAR_UUID)
            assert link == b"\x01", "a v1.1 device offers the link characteristic"
            return (
                client.mtu_size,
                client.name,
                services,
                data.properties,
                control.properties,
                data.max_write_without_response_size,
                [d.uuid for d in data.descriptors],
                serial,
                battery,
                manufacturer,
            )

    mtu, name, services, data_props, control_props, wmax, descs, serial, battery, manuf = run(
        main()
    )
    assert mtu == 247, "a bare sim+ble:// gets the MTU current hosts exchange"
    assert name == peripheral.name
    assert {
        gatt.SERVICE_UUID,
        gatt.DEVICE_INFORMATION_SERVICE_UUID,
        gatt.BATTERY_SERVICE_UUID,
    } <= services
    assert data_props == ["notify"]
    assert "write" in control_props and "notify" in control_props
    assert wmax == 244
    assert CCCD in descs
    assert serial.decode() == peripheral.config.serial
    assert 0 <= battery[0] <= 100
    assert manuf == b"KnotSense"


def test_notifications_fit_the_negotiated_mtu_and_decode() -> None:
    peripheral = register_url("sim+ble://?seed=3&speed=max")

    async def main():
        notes = Collector()
        async with BleakClient(peripheral.address, backend=SimBleakClient, mtu=247) as client:
            await client.start_notify(gatt.DATA_CHAR_UUID, notes)
            await write_frame(client, Encoder(Framing.PACKET).encode(Command(1, StartStream())))
            await notes.wait_for(lambda c: len(c.messages(SampleBlock)) >= 5)
            await client.stop_notify(gatt.DATA_CHAR_UUID)
            backend = client._backend
            return client.mtu_size, notes, backend.events, backend.notifications_sent

    mtu, notes, events, sent = run(main())
    assert mtu == 247
    assert max(notes.sizes) <= 244
    assert notes.decoder.stats.errors == 0
    assert notes.loop_ok, "notification callbacks run on the event loop"
    assert sent <= events * ble_backend.DEFAULT_PACKETS_PER_EVENT


def test_mtu_23_limits_every_notification_to_20_bytes() -> None:
    peripheral = register_url("sim+ble://?seed=8&mtu=23")

    async def main():
        notes = Collector()
        async with BleakClient(peripheral.address, backend=SimBleakClient) as client:
            await client.start_notify(gatt.DATA_CHAR_UUID, notes)
            await client.start_notify(gatt.CONTROL_CHAR_UUID, notes)
            encoder = Encoder(Framing.PACKET)
            await write_frame(client, encoder.encode(Command(77, GetInfo())))
            await write_frame(client, encoder.encode(Command(78, StartStream())))
            assert client._backend.link.rx.stats.frames == 2
            await notes.wait_for(lambda c: len(c.messages(SampleBlock)) >= 3)
            return client.mtu_size, notes

    mtu, notes = run(main())
    assert mtu == 23
    assert notes.sizes and max(notes.sizes) <= 20
    info, start = notes.messages(Response)[:2]
    assert (info.request_id, info.status, start.request_id) == (77, 0, 78)
    assert info.parse_result().serial_number == peripheral.config.serial
    assert len(notes.frames[-1].message.encode()) > 20, "frames span notifications"
    assert notes.decoder.stats.errors == 0
    assert sum(rx.stats.frames_dropped for rx in notes.rx.values()) == 0


def test_v1_0_link_sends_one_frame_per_notification_of_at_most_mtu_minus_3() -> None:
    peripheral = register_url("sim+ble://?seed=8&mtu=185&link=1.0")

    async def main():
        notes = Collector(fragments=False)
        async with BleakClient(peripheral.address, backend=SimBleakClient) as client:
            assert client.services.get_characteristic(gatt.LINK_CHAR_UUID) is None
            await client.start_notify(gatt.DATA_CHAR_UUID, notes)
            await client.start_notify(gatt.CONTROL_CHAR_UUID, notes)
            frame = Encoder(Framing.PACKET).encode(Command(5, StartStream()))
            await write_frame(client, frame, fragments=False)
            await notes.wait_for(lambda c: len(c.messages(SampleBlock)) >= 3)
        return notes

    notes = run(main())
    assert max(notes.sizes) <= 182
    assert notes.decoder.stats.errors == 0
    assert notes.messages(Response)[0].request_id == 5


def test_command_on_control_gets_its_response_as_a_control_notification() -> None:
    peripheral = register_url("sim+ble://?seed=4&mtu=247&interval_ms=7.5")

    async def main():
        data, control = Collector(), Collector()
        async with BleakClient(peripheral.address, backend=SimBleakClient) as client:
            await client.start_notify(gatt.DATA_CHAR_UUID, data)
            await client.start_notify(gatt.CONTROL_CHAR_UUID, control)
            encoder = Encoder(Framing.PACKET)
            await write_frame(client, encoder.encode(Command(0x1234, Ping(b"knot"))))
            await write_frame(client, encoder.encode(Command(0x1235, GetInfo())))
            await control.wait_for(lambda c: len(c.messages(Response)) >= 2)
            return client.mtu_size, data, control

    mtu, data, control = run(main())
    assert mtu == 247
    ping, info = control.messages(Response)
    assert (ping.request_id, ping.result) == (0x1234, b"knot")
    assert info.request_id == 0x1235
    assert not data.messages(Response), "responses travel on the control characteristic"


def test_gatt_errors_look_like_bleak_errors() -> None:
    peripheral = register_url("sim+ble://?seed=1")

    async def main():
        async with BleakClient(peripheral.address, backend=SimBleakClient) as client:
            cccd = client.services.get_characteristic(gatt.DATA_CHAR_UUID).get_descriptor(CCCD)
            with pytest.raises(ValueError, match="CCCD"):
                await client.write_gatt_descriptor(cccd.handle, b"\x01\x00")
            with pytest.raises(ValueError, match="CCCD"):  # the backend refuses on its own too
                await client._backend.write_gatt_descriptor(cccd, b"\x01\x00")
            assert await client.read_gatt_descriptor(cccd.handle) == b"\x00\x00"
            await client.start_notify(gatt.DATA_CHAR_UUID, lambda c, d: None)
            assert await client.read_gatt_descriptor(cccd.handle) == b"\x01\x00"
            with pytest.raises(BleakGATTProtocolError):
                await client.write_gatt_char(gatt.DATA_CHAR_UUID, b"\x00", response=True)
            with pytest.raises(BleakGATTProtocolError):
                await client.read_gatt_char(gatt.CONTROL_CHAR_UUID)
            with pytest.raises(BleakError):
                await client.write_gatt_char(gatt.CONTROL_CHAR_UUID, b"\x00", response=False)
            with pytest.raises(BleakGATTProtocolError):  # longer than MTU - 3
                await client.write_gatt_char(gatt.CONTROL_CHAR_UUID, bytes(245), response=True)

    run(main())


def test_link_drop_calls_the_disconnected_callback_and_reconnect_works() -> None:
    peripheral = register_url("sim+ble://?seed=2&mtu=247&faults=link_drop:2%2B1")

    async def main():
        lost = asyncio.Event()
        calls: list[BleakClient] = []

        def on_disconnect(client: BleakClient) -> None:
            calls.append(client)
            lost.set()

        client = BleakClient(peripheral.address, on_disconnect, backend=SimBleakClient)
        await client.connect()
        await asyncio.wait_for(lost.wait(), 5)
        state_after_drop = client.is_connected
        device = await BleakScanner.find_device_by_address(
            peripheral.address, timeout=2, backend=SimBleakScanner
        )
        await client.connect()  # waits for the link to come back
        reconnected = client.is_connected
        now = client._backend.device.now
        await client.disconnect()
        return calls, client, state_after_drop, device, reconnected, now

    calls, client, state_after_drop, device, reconnected, now = run(main())
    assert calls == [client]
    assert state_after_drop is False
    assert device is not None, "a dropped device advertises again"
    assert reconnected
    assert now >= 3.0
    assert not client.is_connected


def test_requested_disconnect_does_not_call_the_callback_and_readvertises() -> None:
    peripheral = register_url("sim+ble://?seed=2")

    async def main():
        calls = []
        async with BleakClient(
            peripheral.address, lambda c: calls.append(c), backend=SimBleakClient
        ) as client:
            hidden = await BleakScanner.discover(0.12, backend=SimBleakScanner)
            with pytest.raises(BleakError, match="another client"):
                await BleakClient(peripheral.address, backend=SimBleakClient).connect()
        visible = await BleakScanner.discover(0.12, backend=SimBleakScanner)
        return calls, hidden, visible, client.is_connected

    calls, hidden, visible, connected = run(main())
    assert calls == []
    assert hidden == [], "a connected peripheral does not advertise"
    assert [d.address for d in visible] == [peripheral.address]
    assert not connected


def test_connection_interval_paces_device_time_in_real_time() -> None:
    peripheral = register_url("sim+ble://?seed=2&speed=4&interval_ms=20")

    async def main():
        loop = asyncio.get_running_loop()
        async with BleakClient(peripheral.address, backend=SimBleakClient) as client:
            device = client._backend.device
            t0, v0, e0 = loop.time(), device.now, client._backend.events
            await asyncio.sleep(0.4)
            return loop.time() - t0, device.now - v0, client._backend.events - e0

    elapsed, advanced, events = run(main())
    assert advanced == pytest.approx(4 * elapsed, rel=0.25)
    assert events == pytest.approx(elapsed * 4 / 0.020, rel=0.25)


def test_unknown_address_and_bad_radio_parameters() -> None:
    async def main():
        with pytest.raises(BleakDeviceNotFoundError):
            await BleakClient("C2:4B:53:00:00:01", backend=SimBleakClient, timeout=1).connect()

    run(main())
    with pytest.raises(ConfigurationError):
        register_url("sim+ble://?interval_ms=2")
    with pytest.raises(ConfigurationError):
        register_url("sim+ble://?address=nope")
    with pytest.raises(ConfigurationError):
        register_url("sim+ble://?mtu=abc")
