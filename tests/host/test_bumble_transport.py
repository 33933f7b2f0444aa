"""``sim+bumble://`` and ``bumble://``: the host's device client over a real BLE stack.

The simulator runs as a Bumble peripheral and the host as a Bumble central on
one virtual link: ATT MTU exchange, discovery, CCCD writes, notifications,
a link drop and the reconnect all go through Bumble's ATT/GATT/L2CAP code.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import pytest

from knotsense.errors import (
    ConfigurationError,
    LinkTooSmallError,
    TransportError,
)
from knotsense.host.device import AsyncDevice, LinkChange, Samples
from knotsense.host.transports import make_transport, transport_class
from knotsense.host.transports.bumble import (
    BumbleTransport,
    SimBumbleTransport,
    parse_bumble_url,
)
from knotsense.protocol import MAX_FRAME_SIZE, gatt
from knotsense.protocol.fragment import MIN_V1_ATT_MTU


async def stream(url: str, rate: int, n_samples: int, wall_limit: float = 30.0):
    dev = await AsyncDevice.connect(url)
    items: list = []
    try:
        config = await dev.start_stream(rate_hz=rate)
        got = 0
        async with asyncio.timeout(wall_limit):
            async for item in dev.stream(timeout=10):
                items.append(item)
                if isinstance(item, Samples):
                    got += item.raw.shape[0]
                if got >= n_samples:
                    break
        await dev.stop_stream()
        return dev, config, got, items
    finally:
        await dev.close()


def test_registry_and_urls() -> None:
    assert transport_class("sim+bumble://?seed=1") is SimBumbleTransport
    assert transport_class("bumble://usb:0/C2:4B:53:12:34:56") is BumbleTransport
    assert parse_bumble_url("bumble://usb:0/C2:4B:53:12:34:56?mtu=185") == (
        "usb:0",
        "C2:4B:53:12:34:56",
        {"mtu": "185"},
    )
    assert parse_bumble_url("bumble://hci-socket:0/AA:BB:CC:DD:EE:FF/P")[1] == "AA:BB:CC:DD:EE:FF/P"
    with pytest.raises(ConfigurationError, match="give a Bumble transport and an address"):
        make_transport("bumble://usb:0")
    with pytest.raises(ConfigurationError, match=r"mtu must be 23\.\.517"):
        make_transport("sim+bumble://?mtu=600")


@pytest.mark.parametrize("mtu", [23, 247])
def test_sim_bumble_streams_through_the_real_stack(mtu: int) -> None:
    dev, config, got, _ = asyncio.run(stream(f"sim+bumble://?seed=5&mtu={mtu}", 250, 600))
    transport = dev.transport
    assert transport.att_mtu == mtu, "the ATT MTU exchange gave what was asked"
    assert transport.link_framing.fragmented
    assert got >= 600
    assert config.max_frame_size == MAX_FRAME_SIZE
    stats = transport.link_framing.stats()
    assert stats["fragments_lost"] == stats["frames_dropped"] == stats["orphans"] == 0
    per_frame = stats["fragments"] / stats["frames"]
    assert per_frame > 5 if mtu == 23 else per_frame < 2.5
    assert dev.decoder.stats.errors == 0 and dev.decoder.stats.frames_lost == 0
    peripheral = transport.peripheral
    assert peripheral.connections == 1 and peripheral.notifications_sent >= stats["fragments"]


def test_sim_bumble_link_drop_disconnects_and_the_client_reconnects() -> None:
    url = "sim+bumble://?seed=2&speed=4&faults=link_drop:1.5%2B1"
    dev, _, got, items = asyncio.run(stream(url, 250, 1500))
    kinds = [item.kind for item in items if isinstance(item, LinkChange)]
    assert kinds[:2] == ["lost", "restored"], kinds
    assert dev.link.reconnects == 1 and dev.link.link_losses == 1
    assert dev.transport.peripheral.connections == 2, "a second real connection was made"
    assert got >= 1500


def test_v1_0_device_at_mtu_23_over_bumble_fails_at_once() -> None:
    with pytest.raises(LinkTooSmallError) as info:
        asyncio.run(AsyncDevice.connect("sim+bumble://?seed=2&mtu=23&link=1.0"))
    assert str(info.value) == (
        f"BLE link MTU 23 is too small: knotsense v1 needs at least {MIN_V1_ATT_MTU}"
    )


def test_v1_0_device_at_mtu_247_over_bumble_works() -> None:
    dev, config, got, _ = asyncio.run(stream("sim+bumble://?seed=2&link=1.0", 80, 100))
    assert not dev.transport.link_framing.fragmented and got >= 100
    assert config.max_frame_size == 244


def test_unknown_bumble_transport_is_a_one_line_transport_error() -> None:
    async def main():
        transport = make_transport("bumble://no-such-transport:0/C2:4B:53:12:34:56?timeout=1")
        await transport.open()

    with pytest.raises(TransportError, match="cannot open Bumble transport") as info:
        asyncio.run(main())
    assert "\n" not in str(info.value)


def test_cli_sim_ble_advertises_until_sigint() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "knotsense", "sim", "--ble", "local", "--seed", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().split()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert first[0] == gatt.ADVERTISED_NAME_PREFIX + "0004"
    assert len(first[1].split(":")) == 6
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_cli_sim_ble_with_a_missing_controller_is_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "knotsense", "sim", "--ble", "no-such-transport:0"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("knotsense sim: error: cannot open Bumble")
