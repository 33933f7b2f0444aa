"""The pty link: PtyServer in-process, and ``knotsense sim --pty`` in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import serial

from knotsense.errors import ConfigurationError
from knotsense.firmware_sim.config import SimConfig
from knotsense.firmware_sim.pty_server import PtyServer
from knotsense.protocol import (
    Command,
    Encoder,
    Framing,
    SampleBlock,
    StartStream,
    StreamConfig,
    StreamDecoder,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="ptys are POSIX")

ROOT = Path(__file__).resolve().parents[2]
CLI_ARGS = ("--scenario", "back_session", "--seed", "3", "--speed", "25")


START = Encoder(Framing.STREAM, first_seq=1).encode(Command(1, StartStream()))
"""The device boots with streaming off: this starts it."""


def _read_frames(port: serial.Serial, decoder: StreamDecoder, n: int, timeout: float = 5.0):
    frames = []
    deadline = time.monotonic() + timeout
    while len(frames) < n and time.monotonic() < deadline:
        frames += decoder.feed(port.read(4096))
    assert len(frames) >= n, f"only {len(frames)} frames in {timeout} s"
    return frames


def test_served_pty_is_raw_and_carries_decodable_frames() -> None:
    with PtyServer(SimConfig.from_url("sim://?seed=3")) as server:
        fd = os.open(server.slave_path, os.O_RDONLY | os.O_NOCTTY)
        try:
            attrs = termios.tcgetattr(fd)
        finally:
            os.close(fd)
        assert not attrs[3] & (termios.ECHO | termios.ICANON | termios.ISIG)
        assert not attrs[1] & termios.OPOST
        with serial.Serial(server.slave_path, timeout=0.5) as port:
            port.write(START)
            decoder = StreamDecoder()
            frames = _read_frames(port, decoder, 20)
            while not any(isinstance(f.message, SampleBlock) for f in frames):
                frames += _read_frames(port, decoder, 1)
    assert decoder.stats.crc_errors == 0
    assert decoder.stats.framing_errors == 0
    assert any(isinstance(f.message, SampleBlock) for f in frames)


def test_packet_framing_is_refused_on_a_pty() -> None:
    with pytest.raises(ConfigurationError, match="STREAM"):
        PtyServer(SimConfig(framing=Framing.PACKET))


def test_unpaced_server_waits_for_a_slow_reader_and_loses_nothing() -> None:
    server = PtyServer(SimConfig(seed=5), hold=True).start()
    try:
        with serial.Serial(server.slave_path, timeout=0.2) as port:
            port.write(START)
            server.release()
            time.sleep(0.3)  # the reader dawdles: the server must block, not drop
            virtual_while_idle = server.device.now
            decoder = StreamDecoder()
            frames = []
            for _ in range(5):
                frames += decoder.feed(port.read(2048))
                time.sleep(0.02)
            frames += _read_frames(port, decoder, 10)
    finally:
        server.stop()
    assert virtual_while_idle < 600, "an unread unpaced server ran away"
    assert decoder.stats.frames_lost == 0
    assert decoder.stats.bytes_discarded == 0  # opened before the first byte: nothing partial
    assert server.bytes_lost == 0


def test_paced_server_follows_the_wall_clock_times_speed() -> None:
    with (
        PtyServer(SimConfig(seed=1, speed=20.0)) as server,
        serial.Serial(server.slave_path, timeout=0.05) as port,
    ):
        t0 = time.monotonic()
        v0 = server.device.now
        while time.monotonic() - t0 < 0.5:
            port.read(4096)
        elapsed = time.monotonic() - t0
        advanced = server.device.now - v0
    assert advanced == pytest.approx(20.0 * elapsed, rel=0.15, abs=0.3)


def test_link_drop_hangs_up_and_reenumerates(tmp_path: Path) -> None:
    link = tmp_path / "ttyKNOT"
    config = SimConfig.from_url("sim://?seed=2&speed=20&faults=link_drop:3%2B1")
    seen: list[str] = []
    with PtyServer(config, link_path=link, on_enumerate=seen.append) as server:
        first = server.slave_path
        assert os.readlink(link) == first
        with serial.Serial(first, timeout=0.1) as port, pytest.raises(serial.SerialException):
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                port.read(4096)
        new_path = server.wait_enumerated(3.0, after=1)
        assert server.enumerations == 2
        assert os.readlink(link) == new_path
        with serial.Serial(new_path, timeout=0.2) as port:
            _read_frames(port, StreamDecoder(), 3)
    assert seen == [first, new_path]
    assert not link.exists(), "the stable link goes away with the device"


def test_silent_link_drop_keeps_the_port_open() -> None:
    config = SimConfig.from_url("sim://?seed=2&speed=20&faults=link_drop:0.3%2B0.4")
    with PtyServer(config, drop="silent") as server:
        with serial.Serial(server.slave_path, timeout=0.1) as port:
            decoder = StreamDecoder()
            deadline = time.monotonic() + 0.8  # 16 s device time: drop and return
            while time.monotonic() < deadline:
                decoder.feed(port.read(4096))
            _read_frames(port, decoder, 3)
        assert server.enumerations == 1


def test_stop_shows_as_a_read_error_on_the_reader() -> None:
    server = PtyServer(SimConfig(seed=0, speed=1.0)).start()
    port = serial.Serial(server.slave_path, timeout=0.5)
    try:
        server.stop()
        assert not server.running
        with pytest.raises(serial.SerialException):
            port.read(100)
    finally:
        port.close()


def _stream_config_rate(frames) -> float | None:
    configs = [f.message for f in frames if isinstance(f.message, StreamConfig)]
    return float(configs[-1].rate_hz) if configs else None


def test_cli_pty_subprocess_sample_rate_and_clean_sigterm() -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "knotsense", "sim", "--pty", *CLI_ARGS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/"), (path, proc.stderr.read() if proc.poll() else "")
        blocks: list[SampleBlock] = []
        decoder = StreamDecoder()
        frames = []
        with serial.Serial(path, baudrate=921600, timeout=0.1) as port:
            port.write(START)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                new = decoder.feed(port.read(4096))
                frames += new
                blocks += [f.message for f in new if isinstance(f.message, SampleBlock)]
                if len(blocks) > 2 and (blocks[-1].t_first_us - blocks[0].t_first_us) > 12e6:
                    break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert err == ""
    assert decoder.stats.crc_errors == 0
    first, last = blocks[0], blocks[-1]
    span_s = (last.t_first_us - first.t_first_us) / 1e6
    assert span_s > 12
    measured = (last.sample_index - first.sample_index) / span_s
    nominal = _stream_config_rate(frames) or 1e9 / first.period_ns
    # device timestamps against the nominal rate: the crystal error (tens of
    # ppm) plus timestamp jitter and 1 us quantisation over the span
    assert measured == pytest.approx(nominal, rel=200e-6 + 200e-6 / span_s)
