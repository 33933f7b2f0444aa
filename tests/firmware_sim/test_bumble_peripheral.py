"""The simulator as a BLE peripheral on a real stack: Bumble, on its in-process virtual link.

A plain Bumble central (no knotsense host code) connects, exchanges the MTU,
discovers the GATT layout of protocol/gatt.py, reads the standard services,
writes CCCDs and commands, and rebuilds the notified fragments.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from bumble.core import UUID
from bumble.device import Device, Peer
from bumble.hci import Address

from knotsense.firmware_sim.bumble_peripheral import BumblePeripheral
from knotsense.firmware_sim.bumble_radio import open_hci
from knotsense.firmware_sim.config import SimConfig
from knotsense.protocol import (
    Command,
    Encoder,
    Framing,
    GetInfo,
    PacketDecoder,
    Response,
    SampleBlock,
    StartStream,
    gatt,
)
from knotsense.protocol.fragment import Fragmenter, Reassembler

_radios = itertools.count(1)


async def central_and_peripheral(
    query: str = "seed=3&speed=max", **kwargs: Any
) -> tuple[BumblePeripheral, Any, Any]:
    radio = f"local:test-{next(_radios)}"
    peripheral = BumblePeripheral(SimConfig.from_url(f"sim://?{query}"), transport=radio, **kwargs)
    await peripheral.start()
    hci = await open_hci(radio, "F0:4B:53:00:00:99")
    central = Device(name="test-central", address=Address("F0:4B:53:00:00:99"), host=hci.host)
    await central.power_on()
    return peripheral, central, hci


def by_uuid(chars: list[Any]) -> dict[str, Any]:
    return {str(c.uuid).lower(): c for c in chars}


@pytest.mark.parametrize("mtu", [23, 247])
def test_gatt_layout_mtu_exchange_cccd_and_fragments_over_bumble(mtu: int) -> None:
    async def main():
        peripheral, central, hci = await central_and_peripheral()
        try:
            connection = await central.connect(
                Address(peripheral.address, Address.RANDOM_DEVICE_ADDRESS), timeout=5
            )
            peer = Peer(connection)
            got_mtu = await peer.request_mtu(mtu)
            await peer.discover_all()
            services = [s.uuid for s in peer.services]
            main_service = peer.get_services_by_uuid(UUID(gatt.SERVICE_UUID))[0]
            chars = by_uuid(main_service.characteristics)
            link = await chars[gatt.LINK_CHAR_UUID].read_value()
            serial = await peer.read_characteristics_by_uuid(UUID(gatt.SERIAL_NUMBER_UUID))
            battery = await peer.read_characteristics_by_uuid(UUID(gatt.BATTERY_LEVEL_UUID))
            sizes: list[int] = []
            frames: list = []
            decoder = PacketDecoder()
            rx = {gatt.DATA_CHAR_UUID: Reassembler(), gatt.CONTROL_CHAR_UUID: Reassembler()}

            def on(uuid: str):
                def cb(value: bytes) -> None:
                    sizes.append(len(value))
                    frame = rx[uuid].feed(value)
                    if frame is not None:
                        frames.extend(decoder.feed(frame))

                return cb

            for uuid in (gatt.DATA_CHAR_UUID, gatt.CONTROL_CHAR_UUID):
                await peer.subscribe(chars[uuid], on(uuid))
            subscribed = set(peripheral.link.subscribed)
            tx, encoder = Fragmenter(connection.att_mtu), Encoder(Framing.PACKET)
            for command in (Command(7, GetInfo()), Command(8, StartStream())):
                for piece in tx.split(encoder.encode(command)):
                    await chars[gatt.CONTROL_CHAR_UUID].write_value(piece, with_response=True)
            async with asyncio.timeout(20):
                while sum(isinstance(f.message, SampleBlock) for f in frames) < 5:
                    await asyncio.sleep(0.01)
            await connection.disconnect()
            return got_mtu, services, link, serial, battery, subscribed, sizes, frames, decoder
        finally:
            await peripheral.stop()
            await hci.close()

    got_mtu, services, link, serial, battery, subscribed, sizes, frames, decoder = asyncio.run(
        main()
    )
    assert got_mtu == mtu
    for uuid in (
        gatt.SERVICE_UUID,
        gatt.DEVICE_INFORMATION_SERVICE_UUID,
        gatt.BATTERY_SERVICE_UUID,
    ):
        assert UUID(uuid) in services
    assert link == b"\x01"
    assert serial == [b"KS-000003"]
    assert 0 <= battery[0][0] <= 100
    assert subscribed == {gatt.DATA_CHAR_UUID, gatt.CONTROL_CHAR_UUID}, "CCCD writes arrived"
    assert max(sizes) <= mtu - 3
    responses = [f.message for f in frames if isinstance(f.message, Response)]
    assert [r.request_id for r in responses[:2]] == [7, 8]
    assert responses[0].parse_result().serial_number == "KS-000003"
    assert decoder.stats.errors == 0 and decoder.stats.frames_lost == 0


def test_nothing_is_notified_before_a_cccd_write_and_a_v1_0_layout_has_no_link() -> None:
    async def main():
        peripheral, central, hci = await central_and_peripheral(link_version="1.0", max_mtu=247)
        try:
            connection = await central.connect(
                Address(peripheral.address, Address.RANDOM_DEVICE_ADDRESS), timeout=5
            )
            peer = Peer(connection)
            await peer.request_mtu(247)
            await peer.discover_all()
            chars = by_uuid(peer.get_services_by_uuid(UUID(gatt.SERVICE_UUID))[0].characteristics)
            await asyncio.sleep(0.3)  # device time runs; nothing is subscribed
            before = peripheral.notifications_sent
            await connection.disconnect()
            return chars, before, peripheral.link
        finally:
            await peripheral.stop()
            await hci.close()

    chars, before, link_after = asyncio.run(main())
    assert gatt.LINK_CHAR_UUID not in chars
    assert before == 0
    assert link_after is None, "the connection's link state is gone after the disconnect"
