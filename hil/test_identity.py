"""Identity: DeviceInfo is complete and consistent with what the device streams."""

from __future__ import annotations

import numpy as np
import pytest

from knotsense.hil.plugin import start_stream
from knotsense.hil.target import Client
from knotsense.protocol import PROTOCOL_VERSION, DeviceInfo, SensorKind, StatusFlags


def test_info_is_complete(device_info: DeviceInfo) -> None:
    info = device_info
    assert info.protocol_major == PROTOCOL_VERSION, "protocol major version differs from the host's"
    assert info.serial_number.strip(), "empty serial number"
    assert info.model.strip(), "empty model name"
    assert len(info.firmware_version) == 3 and all(v >= 0 for v in info.firmware_version)
    assert 1 <= info.adc_bits <= 32
    assert 1 <= info.channel_count <= 8
    assert info.sample_rates, "no sample rate advertised"
    assert list(info.sample_rates) == sorted(set(info.sample_rates)), "rates not ascending/unique"
    assert all(0 < r <= 65535 for r in info.sample_rates)
    for ch in info.channels:
        assert isinstance(ch.kind, SensorKind), f"unknown sensor kind {ch.kind}"
        assert abs(ch.x_mm) < 500 and abs(ch.y_mm) < 500, "sensor position off the knob"


def test_info_is_stable_and_matches_status(hil_client: Client, device_info: DeviceInfo) -> None:
    dev = hil_client.device
    again = dev.get_info()
    assert again == device_info, "GET_INFO answers differ between two calls"
    status = dev.get_status()
    calibrated = bool(status.flags & StatusFlags.CALIBRATED)
    assert calibrated == (device_info.calibration_id != 0), (
        "Status CALIBRATED flag disagrees with DeviceInfo.calibration_id"
    )
    assert 0 <= status.battery_pct <= 100 or status.battery_pct == 0xFF


def test_stream_matches_info(hil_client: Client, device_info: DeviceInfo, bench_report) -> None:
    """Every advertised rate streams at its period with every channel in ADC range."""
    info = device_info
    lo, hi = -(1 << (info.adc_bits - 1)), (1 << info.adc_bits) - 1
    rates = []
    try:
        for rate in info.sample_rates:
            handle = start_stream(hil_client, rate)
            config = handle.config
            assert config.streaming
            assert config.rate_hz == rate
            assert config.period_ns == round(1e9 / rate)
            assert config.channel_mask == (1 << info.channel_count) - 1
            assert config.samples_per_block >= 1
            seconds = max(0.5, 4.0 / rate * config.samples_per_block)
            cap = handle.capture(seconds, wall_limit=30.0)
            assert cap.samples, f"no samples at {rate} Hz"
            for block in cap.samples:
                assert block.channel_mask == config.channel_mask
                assert block.raw.shape[1] == info.channel_count
                assert block.raw.shape[0] <= config.samples_per_block
            raw = cap.raw()
            assert raw.min() >= lo and raw.max() <= hi, "sample outside the ADC's range"
            # Device timestamps step by the advertised period inside each block.
            # (within blocks, and between consecutive blocks by sample index)
            t_us, index = (
                cap.device_us(),
                np.concatenate([b.sample_index + np.arange(len(b.device_us)) for b in cap.samples]),
            )
            assert np.all(np.diff(index) == 1), "sample indices not contiguous on a clean link"
            assert abs(float(np.median(np.diff(t_us))) - 1e6 / rate) <= 1.0
            rates.append(str(rate))
    finally:
        hil_client.device.stop_stream()
    bench_report.add("Identity", "rates streamed", ", ".join(rates) + " Hz")


def test_bad_stream_config_is_refused(hil_client: Client, device_info: DeviceInfo) -> None:
    """An unadvertised rate or a channel that does not exist is refused; streaming still works."""
    from knotsense.errors import CommandError

    dev = hil_client.device
    dev.stop_stream()
    bad_rate = max(device_info.sample_rates) + 1
    with pytest.raises(CommandError):
        dev.configure_stream(bad_rate)
    if device_info.channel_count < 8:
        with pytest.raises(CommandError):
            dev.configure_stream(max(device_info.sample_rates), 1 << device_info.channel_count)
    config = dev.configure_stream(max(device_info.sample_rates))
    assert config.rate_hz == max(device_info.sample_rates)
