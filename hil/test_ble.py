"""BLE link: frames fit the negotiated MTU, and the device sizes its blocks for it."""

from __future__ import annotations

import pytest

from knotsense.hil.plugin import StreamHandle
from knotsense.hil.target import Client
from knotsense.protocol import MAX_FRAME_SIZE, MIN_FRAME_SIZE, SampleBlock


@pytest.mark.ble
def test_frames_fit_the_negotiated_mtu(fresh_stream: StreamHandle, hil_client: Client) -> None:
    link_limit = hil_client.adev.transport.max_frame_size
    config = fresh_stream.config
    assert MIN_FRAME_SIZE <= link_limit <= MAX_FRAME_SIZE
    assert config.max_frame_size == link_limit, (
        f"device builds frames for {config.max_frame_size} B, the link carries {link_limit} B"
    )
    fits = SampleBlock.max_samples(link_limit, config.channel_count, int(config.encoding))
    assert 1 <= config.samples_per_block <= fits
    cap = fresh_stream.capture(1.0, wall_limit=30.0)
    assert cap.samples and not cap.gaps
    stats = hil_client.device.stats
    assert stats["oversize"] == 0 and stats["crc_errors"] == 0
