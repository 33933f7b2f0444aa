"""``serial.serial_for_url("sim+pty://...")`` with plain pyserial and pyserial-asyncio."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest
import serial
import serial_asyncio

from knotsense.firmware_sim import serial_handler
from knotsense.firmware_sim.serial_handler import (
    SimPtySerial,
    register_serial_handlers,
    split_port_params,
)
from knotsense.protocol import (
    Command,
    Encoder,
    Framing,
    Ping,
    Response,
    SampleBlock,
    StartStream,
    StreamDecoder,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="ptys are POSIX")


START = Encoder(Framing.STREAM, first_seq=1).encode(Command(1, StartStream()))
"""The device boots with streaming off: this starts it."""


@pytest.fixture(autouse=True)
def _registered() -> None:
    register_serial_handlers()


def _read_until(port: serial.Serial, decoder: StreamDecoder, enough, timeout: float = 5.0):
    frames = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frames += decoder.feed(port.read(4096))
        if enough(frames):
            return frames
    raise AssertionError(f"condition not met in {timeout} s ({len(frames)} frames)")


def test_registration_is_idempotent_and_keeps_pyserial_handlers_first() -> None:
    register_serial_handlers()
    register_serial_handlers()
    packages = serial.protocol_handler_packages
    assert packages.count(serial_handler.HANDLER_PACKAGE) == 1
    assert packages.index("serial.urlhandler") < packages.index(serial_handler.HANDLER_PACKAGE)
    assert sys.modules["knotsense.firmware_sim.protocol_sim+pty"] is serial_handler
    with serial.serial_for_url("loop://", timeout=0.1) as loop:  # built-ins unaffected
        loop.write(b"x")
        assert loop.read(1) == b"x"
    with pytest.raises(ValueError, match="not known"):
        serial.serial_for_url("nosuchscheme://")


def test_split_port_params_keeps_the_simulator_query() -> None:
    url, params = split_port_params("sim+pty://?scenario=back_session&drop=silent&seed=3")
    assert url == "sim+pty://?scenario=back_session&seed=3"
    assert params == {"drop": "silent"}


def test_sim_pty_url_gives_a_real_serial_port_with_decodable_frames() -> None:
    with serial.serial_for_url("SIM+PTY://?scenario=back_session&seed=3", timeout=0.5) as port:
        assert isinstance(port, SimPtySerial)
        assert port.port.startswith("SIM+PTY://")
        assert port.slave_path.startswith("/dev/")
        assert os.isatty(port.fileno())
        port.write(START)
        decoder = StreamDecoder()
        frames = _read_until(
            port, decoder, lambda fr: sum(isinstance(f.message, SampleBlock) for f in fr) >= 5
        )
        server = port.sim_server
    assert not server.running, "closing the port stops the simulated device"
    assert decoder.stats.errors == 0
    assert decoder.stats.bytes_discarded == 0, "the reader gets every byte from the first"
    assert frames[0].seq == 0


def test_same_seed_gives_the_same_bytes() -> None:
    def first_bytes(n: int) -> bytes:
        with serial.serial_for_url("sim+pty://?seed=11", timeout=0.5) as port:
            data = bytearray()
            deadline = time.monotonic() + 5
            while len(data) < n and time.monotonic() < deadline:
                data += port.read(n - len(data))
            return bytes(data)

    a = first_bytes(3000)
    assert len(a) == 3000
    assert first_bytes(3000) == a


def test_command_round_trip_over_the_pty() -> None:
    with serial.serial_for_url("sim+pty://?seed=4&speed=20", timeout=0.1) as port:
        port.write(Encoder(Framing.STREAM, first_seq=100).encode(Command(0x4242, Ping(b"knot"))))
        frames = _read_until(
            port,
            StreamDecoder(),
            lambda fr: any(isinstance(f.message, Response) for f in fr),
            timeout=3,
        )
    (response,) = [f.message for f in frames if isinstance(f.message, Response)]
    assert response.request_id == 0x4242
    assert response.result == b"knot"


def test_pyserial_asyncio_reads_the_simulator() -> None:
    async def main() -> tuple[int, int]:
        reader, writer = await serial_asyncio.open_serial_connection(url="sim+pty://?seed=6")
        writer.write(START)
        decoder = StreamDecoder()
        frames = []
        try:
            while sum(isinstance(f.message, SampleBlock) for f in frames) < 5:
                frames += decoder.feed(await asyncio.wait_for(reader.read(4096), 5))
        finally:
            writer.close()
        return decoder.stats.errors

    assert asyncio.run(main()) == 0


def test_bad_simulator_url_is_a_serial_exception_with_the_reason() -> None:
    with pytest.raises(serial.SerialException, match="unknown simulator URL key 'bogus'"):
        serial.serial_for_url("sim+pty://?bogus=1")
    with pytest.raises(serial.SerialException, match="drop must be"):
        serial.serial_for_url("sim+pty://?drop=explode")


def test_link_drop_then_reopen_attaches_to_the_same_running_device(tmp_path: Path) -> None:
    link = tmp_path / "by-id"
    url = f"sim+pty://?seed=2&speed=20&faults=link_drop:3%2B1&link={link}"
    port = serial.serial_for_url(url, timeout=0.1)
    try:
        server = port.sim_server
        assert os.readlink(link) == port.slave_path
        with pytest.raises(serial.SerialException):
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                port.read(4096)
        port.close()
        assert server.running, "an unplugged device keeps running"
        port.open()  # waits for the re-enumeration
        assert port.sim_server is server
        assert server.enumerations == 2
        assert os.readlink(link) == port.slave_path
        _read_until(port, StreamDecoder(), lambda fr: len(fr) >= 3)
    finally:
        port.close()
    assert not server.running
