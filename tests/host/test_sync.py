"""The blocking facade: the same client from plain scripts, with its loop on a thread."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from knotsense.errors import DeviceNotFoundError, DeviceTimeoutError, UnknownSchemeError
from knotsense.host.device import LinkChange, Samples
from knotsense.host.sync import Device
from knotsense.protocol import ThresholdFlags


def loop_threads() -> int:
    return sum(t.name == "knotsense-loop" and t.is_alive() for t in threading.enumerate())


@pytest.mark.parametrize(
    "url",
    ["sim://?scenario=quiet_baseline&seed=21", "sim+pty://?scenario=quiet_baseline&seed=21"],
    ids=["sim", "pty"],
)
def test_blocking_session(url: str) -> None:
    before = loop_threads()
    with Device.connect(url, command_timeout=2.0) as dev:
        info = dev.get_info()
        assert dev.info == info and info.serial_number == "KS-000021"
        assert dev.ping(b"hi") >= 0
        assert dev.get_status().battery_pct > 0
        config = dev.start_stream(rate_hz=250, channels=[1, 3])
        assert config.channel_mask == 0b1010 and config.streaming
        blocks = []
        for item in dev.stream(duration=30.0):
            if isinstance(item, Samples):
                blocks.append(item)
                if len(blocks) == 40:
                    break
        raw = np.concatenate([b.raw for b in blocks])
        spb = blocks[0].raw.shape[0]
        assert raw.shape == (40 * spb, 2)
        idx = [b.sample_index for b in blocks]
        assert idx == list(range(idx[0], idx[0] + 40 * spb, spb))
        assert len(dev.tare(n_samples=8).zeros) == 4
        th = dev.read_thresholds()
        wanted = dataclasses.replace(
            th, flags=ThresholdFlags.RELEASE_ENABLED, release_on=5000, release_off=4000
        )
        assert dev.write_thresholds(wanted) == wanted == dev.read_thresholds()
        dev.write_calibration(b'{"k": 1}', 77)
        assert dev.read_calibration() == (77, b'{"k": 1}')
        dev.stop_stream()
        assert dev.configure_stream(80).rate_hz == 80
        assert dev.stats["gaps"] == 0 and dev.stats["commands"] >= 10
    assert loop_threads() == before  # the loop thread went away with the device


def test_reconnect_through_the_facade() -> None:
    url = "sim://?scenario=quiet_baseline&seed=22&faults=link_drop:3+1"
    with Device.connect(url) as dev:
        dev.start_stream(rate_hz=80)
        kinds = []
        for item in dev.stream(duration=30.0):
            kinds.append(item.kind if isinstance(item, LinkChange) else type(item).__name__)
            if isinstance(item, Samples) and item.sample_index > 80 * 6:
                break
        assert [k for k in kinds if k in ("lost", "restored")] == ["lost", "restored"]
        assert "Gap" in kinds[kinds.index("restored") :]


def test_stream_ends_quietly_when_idle() -> None:
    with Device.connect("sim://?scenario=quiet_baseline&seed=23") as dev:
        items = list(dev.stream(duration=0.3, idle_timeout=0.2))  # not streaming
        assert all(not isinstance(i, Samples) for i in items)
        assert dev.ping() >= 0  # still usable afterwards


@pytest.mark.parametrize(
    ("url", "error"),
    [("/dev/ttyNOPE", DeviceNotFoundError), ("nope://x", UnknownSchemeError)],
)
def test_connect_errors_leave_no_thread(url: str, error: type[Exception]) -> None:
    before = loop_threads()
    with pytest.raises(error):
        Device.connect(url)
    assert loop_threads() == before


def test_commands_time_out() -> None:
    with Device.connect("loop://", command_timeout=0.05, retries=1, reconnect=None) as dev:
        with pytest.raises(DeviceTimeoutError, match="after 2 attempt"):
            dev.get_info()
        assert dev.stats["command_retries"] == 1
