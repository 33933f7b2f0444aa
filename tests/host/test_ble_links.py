"""BLE links at every MTU: the bare default, MTU 23 with fragments, and v1.0 devices.

Issue 13.3: a bare ``sim+ble://`` gets MTU 247 (what current hosts exchange);
``mtu=23`` stays an option and streams thanks to protocol v1.1 fragments; a
link really too small for the framing the device speaks fails at once with one
line. Checked through the API and through the CLI (as a subprocess, so it does
not depend on where the CLI's modules live).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from knotsense.errors import LinkTooSmallError
from knotsense.host.device import AsyncDevice, Samples
from knotsense.host.sync import Device
from knotsense.protocol import MAX_FRAME_SIZE
from knotsense.protocol.fragment import MIN_V1_ATT_MTU

TOO_SMALL = f"BLE link MTU 23 is too small: knotsense v1 needs at least {MIN_V1_ATT_MTU}"


@pytest.fixture(autouse=True)
def _empty_radio() -> Iterator[None]:
    from knotsense.firmware_sim.ble_backend import clear_registry

    yield
    clear_registry()


def test_bare_sim_ble_url_negotiates_mtu_247_and_answers() -> None:
    with Device.connect("sim+ble://?seed=3") as dev:
        info = dev.get_info()
        transport = dev.async_device.transport
        assert transport._client.mtu_size == 247
        assert transport.link_framing.fragmented
        assert transport.max_frame_size == MAX_FRAME_SIZE
    assert info.serial_number == "KS-000003"


async def _stream(url: str, rate: int, n_samples: int) -> tuple[AsyncDevice, int, object]:
    dev = await AsyncDevice.connect(url)
    try:
        config = await dev.start_stream(rate_hz=rate)
        got = 0
        async for item in dev.stream(timeout=10):
            if isinstance(item, Samples):
                got += item.raw.shape[0]
            if got >= n_samples:
                break
        await dev.stop_stream()
        return dev, got, config
    finally:
        await dev.close()


def test_mtu_23_streams_with_frames_across_notifications() -> None:
    dev, got, config = asyncio.run(_stream("sim+ble://?seed=4&mtu=23", 250, 500))
    assert got >= 500
    assert config.max_frame_size == MAX_FRAME_SIZE  # blocks sized for 244 B, not 20 B
    assert config.samples_per_block > 1
    stats = dev.transport.link_framing.stats()
    assert stats["frames"] > 20 and stats["fragments"] > 10 * stats["frames"] // 2
    assert stats["fragments_lost"] == stats["frames_dropped"] == 0
    assert dev.decoder.stats.errors == 0 and dev.decoder.stats.frames_lost == 0


def test_v1_0_device_at_mtu_247_still_works() -> None:
    dev, got, config = asyncio.run(_stream("sim+ble://?seed=4&mtu=247&link=1.0", 80, 100))
    assert got >= 100
    assert not dev.transport.link_framing.fragmented
    assert config.max_frame_size == 244


def test_v1_0_device_at_mtu_23_fails_at_once_in_one_line() -> None:
    started = time.monotonic()
    with pytest.raises(LinkTooSmallError) as info:
        Device.connect("sim+ble://?seed=4&mtu=23&link=1.0")
    assert str(info.value) == TOO_SMALL
    assert time.monotonic() - started < 5.0, "no retries: the MTU will not change"


def test_cli_says_the_link_is_too_small_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "knotsense", "info", "sim+ble://?seed=4&mtu=23&link=1.0"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"knotsense info: error: {TOO_SMALL}"], result.stderr
    assert "attempt" not in result.stderr and "Traceback" not in result.stderr


def test_cli_info_on_a_bare_sim_ble_url() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "knotsense", "info", "sim+ble://?seed=12"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert "serial KS-000012" in result.stdout
