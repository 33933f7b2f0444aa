"""SimConfig, the sim:// URL and the fault grammar."""

from __future__ import annotations

import math

import pytest

from knotsense.errors import ConfigurationError
from knotsense.firmware_sim.config import ChannelFault, FaultConfig, SimConfig, Window
from knotsense.protocol import Framing


def test_url_full() -> None:
    c = SimConfig.from_url(
        "sim://?scenario=quiet_baseline&seed=7&speed=50&serial=KS-X1&sensor=fsr&channels=3"
        "&rate=100&max_frame_size=120&nvm=/tmp/x.json&faults=drop:0.01,reboot_at:30"
    )
    assert (c.scenario, c.seed, c.speed, c.serial, c.sensor, c.channels) == (
        "quiet_baseline",
        7,
        50.0,
        "KS-X1",
        "fsr",
        3,
    )
    assert (c.rate_hz, c.max_frame_size, c.nvm_path) == (100, 120, "/tmp/x.json")
    assert c.faults.drop == 0.01 and c.faults.reboots == (30.0,)
    assert c.framing is Framing.STREAM


def test_schemes_and_defaults() -> None:
    assert SimConfig.from_url("sim+ble://?mtu=185").framing is Framing.PACKET
    assert SimConfig.from_url("sim+ble://?mtu=185").max_frame_size == 182
    assert SimConfig.from_url("sim+pty://").framing is Framing.STREAM
    assert SimConfig.from_url("sim://?seed=3").serial == "KS-000003"
    assert SimConfig.from_url("sim://?speed=max").speed is None


@pytest.mark.parametrize(
    "url",
    [
        "sim://?bogus=1",
        "sim://?seed=x",
        "sim://?channels=9",
        "sim://?faults=drop:2",
        "sim://?faults=nope:1",
        "sim://?faults=stuck",
        "sim://?speed=-1",
        "sim://?framing=carrier-pigeon",
        "serial:///dev/ttyACM0",
        "sim://host/path",
    ],
)
def test_bad_urls_are_one_line_errors(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        SimConfig.from_url(url)
    assert "\n" not in str(info.value)


def test_fault_grammar_round_trip() -> None:
    text = (
        "bit_errors:1e-05,drop:0.01,dup:0.02,burst:0.001x5,link_drop:10+3,link_drop:40+1,"
        "reboot_at:30,stuck:2@5,saturate:1,slow_reader:2000@3+4,tx_buffer:1024"
    )
    f = FaultConfig.parse(text)
    assert f.burst_length == 5 and f.link_drops == (Window(10, 3), Window(40, 1))
    assert f.stuck == (ChannelFault(2, 5.0),) and f.saturate == (ChannelFault(1, 0.0),)
    assert f.slow_reader == Window(3, 4) and f.tx_buffer == 1024
    assert FaultConfig.parse(f.to_string()) == f
    # A literal "+" survives the URL query.
    c = SimConfig.from_url("sim://?faults=link_drop:10+3")
    assert c.faults.link_drops == (Window(10, 3),)
    assert SimConfig.from_url("sim://?" + SimConfig(seed=2, faults=f).to_query()).faults == f


def test_merge_and_open_window() -> None:
    a = FaultConfig.parse("drop:0.1,reboot_at:5")
    b = FaultConfig.parse("dup:0.2,reboot_at:9,slow_reader:100")
    m = a.merged(b)
    assert (m.drop, m.dup, m.reboots) == (0.1, 0.2, (5.0, 9.0))
    assert m.slow_reader is not None and math.isinf(m.slow_reader.duration)
