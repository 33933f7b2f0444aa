"""Transports: the registry, URL parsing, and the same streaming tests over every link.

The streaming tests run one client (:class:`AsyncDevice`) over ``sim://`` (in-process
byte pipe), ``sim+pty://`` (pyserial on a real pty) and ``sim+ble://`` (bleak's public
BleakClient with the simulator backend); they check what a user relies on whatever
the link: identity, ping, request ids, streaming at a rate and channel set, tare,
calibration and thresholds written and read back, stop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Iterator

import numpy as np
import pytest

from knotsense.errors import (
    ConfigurationError,
    DeviceNotFoundError,
    TransportError,
    UnknownSchemeError,
)
from knotsense.host.device import AsyncDevice, Gap, Samples
from knotsense.host.transports import make_transport, scheme_of, transport_class
from knotsense.host.transports.ble import BleTransport, SimBleTransport, parse_ble_url
from knotsense.host.transports.replay import ReplayTransport, parse_replay_url
from knotsense.host.transports.serial import SerialTransport, port_and_options
from knotsense.host.transports.sim import SimTransport
from knotsense.protocol import (
    Command,
    Framing,
    PacketDecoder,
    Ping,
    Response,
    StreamDecoder,
    ThresholdFlags,
)

SCENARIO = "scenario=quiet_baseline&seed=5"
LINKS = {
    "sim": f"sim://?{SCENARIO}",
    "pty": f"sim+pty://?{SCENARIO}",
    "ble": f"sim+ble://?{SCENARIO}&mtu=247",
}


@pytest.fixture(autouse=True)
def _empty_radio() -> Iterator[None]:
    from knotsense.firmware_sim.ble_backend import clear_registry

    yield
    clear_registry()


def run(coro, timeout: float = 30.0):
    """Run *coro* on a fresh loop; a hang fails the test instead of the suite."""

    async def bounded():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


# --- the registry ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme", "cls"),
    [
        ("/dev/ttyACM0", "serial", SerialTransport),
        ("COM3", "serial", SerialTransport),
        ("serial:///dev/ttyACM0?baud=115200", "serial", SerialTransport),
        ("loop://", "serial", SerialTransport),
        ("socket://localhost:7777", "serial", SerialTransport),
        ("rfc2217://host:2217", "serial", SerialTransport),
        ("sim+pty://?seed=1", "sim+pty", SerialTransport),
        ("ble://AA:BB:CC:DD:EE:FF", "ble", BleTransport),
        ("BLE://?name=KnotSense-12AB", "ble", BleTransport),
        ("sim+ble://?seed=1", "sim+ble", SimBleTransport),
        ("sim://?seed=1", "sim", SimTransport),
        ("replay://x.ksr", "replay", ReplayTransport),
    ],
)
def test_scheme_picks_the_transport(url: str, scheme: str, cls: type) -> None:
    assert scheme_of(url) == scheme
    assert transport_class(url) is cls


@pytest.mark.parametrize("url", ["foo://x", "http://example.com", "sim+tcp://?seed=1"])
def test_unknown_scheme_is_one_clear_error(url: str) -> None:
    with pytest.raises(UnknownSchemeError, match="unknown device URL scheme") as info:
        make_transport(url)
    assert "\n" not in str(info.value)
    assert "sim+ble" in str(info.value)  # names what is known


@pytest.mark.parametrize("url", ["", "   "])
def test_empty_url(url: str) -> None:
    with pytest.raises(UnknownSchemeError, match="empty"):
        make_transport(url)


def test_a_missing_dependency_fails_only_for_its_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    from knotsense.host import transports

    monkeypatch.setitem(transports.TRANSPORTS, "ble", "knotsense_no_such_module:Cls")
    with pytest.raises(TransportError, match="ble:// needs a dependency"):
        make_transport("ble://AA:BB:CC:DD:EE:FF")
    assert isinstance(make_transport("sim://?seed=1"), SimTransport)


def test_transports_are_not_opened_by_make_transport() -> None:
    t = make_transport("sim://?seed=1")
    assert t.simulated_device is None and t.framing is Framing.STREAM
    assert "SimTransport" in repr(t)
    assert make_transport("sim+ble://?seed=1&mtu=247").framing is Framing.PACKET


def test_serial_url_options() -> None:
    assert port_and_options("/dev/ttyUSB0") == ("/dev/ttyUSB0", {"baudrate": 921_600})
    assert port_and_options("serial:///dev/ttyACM1?baud=115200") == (
        "/dev/ttyACM1",
        {"baudrate": 115_200},
    )
    with pytest.raises(ConfigurationError, match="integer"):
        port_and_options("serial:///dev/ttyACM1?baud=fast")
    with pytest.raises(ConfigurationError, match="unknown serial URL option"):
        port_and_options("serial:///dev/ttyACM1?parity=E")
    with pytest.raises(ConfigurationError, match="no port"):
        port_and_options("serial://")


def test_ble_url_options() -> None:
    assert parse_ble_url("ble://AA:BB:CC:DD:EE:FF?timeout=3") == (
        "AA:BB:CC:DD:EE:FF",
        None,
        {"timeout": "3"},
    )
    assert parse_ble_url("ble://?name=KnotSense-12AB") == (None, "KnotSense-12AB", {})
    with pytest.raises(ConfigurationError, match="address"):
        parse_ble_url("ble://")
    with pytest.raises(ConfigurationError):
        BleTransport("ble://AA:BB:CC:DD:EE:FF?timeout=soon")


def test_replay_url_options() -> None:
    assert parse_replay_url("replay://s.ksr?speed=max") == ("s.ksr", None, 0.0, False)
    assert parse_replay_url("replay:///tmp/s.ksr?speed=4&start=2.5&loop=1") == (
        "/tmp/s.ksr",
        4.0,
        2.5,
        True,
    )
    with pytest.raises(ConfigurationError, match="unknown replay option"):
        parse_replay_url("replay://s.ksr?sped=2")
    with pytest.raises(ConfigurationError, match="no recording path"):
        parse_replay_url("replay://")


def test_missing_serial_port() -> None:
    with pytest.raises(DeviceNotFoundError, match="/dev/ttyNOPE"):
        run(make_transport("/dev/ttyNOPE").open())


def test_bad_simulator_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown simulator URL key"):
        make_transport("sim://?scenari=back_session")
    with pytest.raises(ConfigurationError, match="fault"):
        make_transport("sim://?faults=link_drop:soon")


def test_serial_loopback_moves_bytes_both_ways() -> None:
    async def go() -> bytes:
        async with make_transport("loop://") as t:
            await t.send(b"\x02abc\x00")
            got = b""
            for _ in range(20):
                got += b"".join(await t.receive(0.1))
                if len(got) >= 5:
                    break
            return got

    assert run(go()) == b"\x02abc\x00"


def test_ble_address_not_found_is_device_not_found() -> None:
    from knotsense.firmware_sim import ble_backend

    class Quick(BleTransport):
        scanner_backend = ble_backend.SimBleakScanner
        client_backend = ble_backend.SimBleakClient

    with pytest.raises(DeviceNotFoundError, match="no BLE device"):
        run(Quick("ble://11:22:33:44:55:66?timeout=0.3").open())


# --- the same streaming tests over every link ----------------------------------------------


def _decoder(framing: Framing) -> StreamDecoder | PacketDecoder:
    return StreamDecoder() if framing is Framing.STREAM else PacketDecoder()


@pytest.fixture(params=list(LINKS), ids=list(LINKS))
def url(request: pytest.FixtureRequest) -> str:
    return LINKS[request.param]


def test_info_ping_and_request_ids(url: str) -> None:
    async def go():
        sent: list[bytes] = []
        dev = await AsyncDevice.connect(url, command_timeout=2.0)
        dev.on_raw = lambda d, data, t: sent.append(data) if d == "tx" else None
        async with dev:
            info = await dev.get_info()
            rtt = await dev.ping(b"knot")
            responses = [await dev.request(Ping(bytes([i]) * 3)) for i in range(3)]
            # Several commands in flight at once: each answer finds its own request.
            echoes = await asyncio.gather(*(dev.request(Ping(b"p%d" % i)) for i in range(6)))
            framing = dev.transport.framing
        return info, rtt, responses, echoes, sent, framing

    info, rtt, responses, echoes, sent, framing = run(go())
    assert info.serial_number == "KS-000005"
    assert info.channel_count == 4 and info.adc_bits == 24
    assert 250 in info.sample_rates
    assert 0 <= rtt < 2.0
    dec = _decoder(framing)
    commands = [f.message for chunk in sent for f in dec.feed(chunk)]
    assert all(isinstance(c, Command) for c in commands)
    ids = [c.request_id for c in commands]
    assert len(set(ids)) == len(ids), "request ids are unique"
    assert all(isinstance(r, Response) for r in responses + echoes)
    assert [r.request_id for r in responses] == ids[2:5]
    for i, r in enumerate(responses):
        assert r.parse_result().data == bytes([i]) * 3
    by_id = {c.request_id: c for c in commands}
    for r in echoes:
        assert by_id[r.request_id].body.data == r.parse_result().data


def test_stream_rate_channels_and_commands(url: str) -> None:
    async def go():
        dev = await AsyncDevice.connect(url, command_timeout=2.0)
        async with dev:
            await dev.get_info()
            config = await dev.start_stream(rate_hz=500, channels=[0, 2])
            blocks: list[Samples] = []
            others = []
            async for item in dev.stream(timeout=10.0):
                if isinstance(item, Samples):
                    blocks.append(item)
                    span = item.device_us[-1] - blocks[0].device_us[0]
                    if span >= 2_000_000:
                        break
                else:
                    others.append(item)
            tare = await dev.tare()
            blob = bytes(range(256)) * 3
            await dev.write_calibration(blob, 0xC0FFEE)
            cal = await dev.read_calibration()
            info_after = await dev.get_info()
            th = await dev.read_thresholds()
            wanted = dataclasses.replace(
                th,
                flags=ThresholdFlags.RELEASE_ENABLED,
                release_on=40_000,
                release_off=35_000,
                hold_s=75,
            )
            stored = await dev.write_thresholds(wanted)
            read_back = await dev.read_thresholds()
            await dev.stop_stream()
            stopped = await dev.get_stream_config()
            stats = dev.stats
        return (
            config,
            blocks,
            others,
            tare,
            blob,
            cal,
            info_after,
            wanted,
            stored,
            read_back,
            (
                stopped,
                stats,
            ),
        )

    config, blocks, others, tare, blob, cal, info_after, wanted, stored, read_back, rest = run(
        go(), timeout=60
    )
    stopped, stats = rest
    assert config.rate_hz == 500 and config.channel_mask == 0b101 and config.streaming
    assert not [o for o in others if isinstance(o, Gap)]
    raw = np.concatenate([b.raw for b in blocks])
    t_us = np.concatenate([b.device_us for b in blocks])
    assert raw.shape[1] == 2 and raw.dtype.kind == "i"
    assert all(b.channel_mask == 0b101 for b in blocks)
    # Rate by device timestamps: 500 Hz (the device crystal is tens of ppm off).
    rate = (t_us.size - 1) / ((t_us[-1] - t_us[0]) / 1e6)
    assert rate == pytest.approx(500, rel=1e-3)
    # Sampling jitter of microseconds: the simulated timer adds |N(0, 1)| x 1-4 us per sample.
    assert np.std(np.diff(t_us)) < 10
    assert np.abs(np.diff(t_us) - 2000).max() <= 40
    # Contiguous sample indices, nothing lost on a clean link.
    for a, b in itertools.pairwise(blocks):
        assert b.sample_index == a.sample_index + a.raw.shape[0]
    assert stats["samples_lost"] == 0 and stats["crc_errors"] == 0
    assert tare.channel_mask == 0b1111 and len(tare.zeros) == 4
    assert cal == (0xC0FFEE, blob)
    assert info_after.calibration_id == 0xC0FFEE
    assert stored == wanted and read_back == wanted
    assert not stopped.streaming


def test_stream_stops_when_the_device_closes(url: str) -> None:
    async def go():
        dev = await AsyncDevice.connect(url)
        await dev.start_stream(rate_hz=250)
        n = 0
        async for item in dev.stream(timeout=10.0):
            if isinstance(item, Samples):
                n += 1
                if n == 5:
                    await dev.close()
        await dev.close()  # twice is fine
        return n

    assert run(go()) >= 5
