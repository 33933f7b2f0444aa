"""Device time to host time: the u32 microsecond wrap and drift estimation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from knotsense.host.clock import WRAP_US, ClockMapper, DeviceClock


def test_unwrap_across_one_and_several_wraps() -> None:
    clock = DeviceClock()
    t = np.arange(0, 3 * WRAP_US + 10**9, 250_000_000, dtype=np.int64)  # 250 s steps
    out = clock.unwrap(t & 0xFFFFFFFF)
    np.testing.assert_array_equal(out, t)


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(0, WRAP_US - 1),
    steps=st.lists(st.integers(0, 2_000_000_000), min_size=1, max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=6),
)
def test_unwrap_does_not_depend_on_chunking(start: int, steps: list[int], cuts: list[int]) -> None:
    true = start + np.cumsum([0, *steps], dtype=np.int64)
    wrapped = true & 0xFFFFFFFF
    edges = sorted({0, len(true), *(c for c in cuts if c < len(true))})
    clock = DeviceClock()
    parts = [clock.unwrap(wrapped[a:b]) for a, b in itertools.pairwise(edges)]
    np.testing.assert_array_equal(np.concatenate(parts), true - (start - (start & 0xFFFFFFFF)))


def test_unwrap_scalar_empty_and_reset() -> None:
    clock = DeviceClock()
    assert clock.unwrap([]).size == 0
    assert clock.unwrap(WRAP_US - 5).tolist() == [WRAP_US - 5]
    assert clock.unwrap(3).tolist() == [WRAP_US + 3]  # wrapped
    clock.reset()  # a reboot: the counter starts over
    assert clock.unwrap(20_000).tolist() == [20_000]
    clock.reset(base_us=10**12)
    assert clock.unwrap(7).tolist() == [10**12 + 7]


def synthetic(hours: float, ppm: float, *, seed: int = 1, rate: float = 4.0, spikes: bool = True):
    """Block arrivals over *hours*: device clock *ppm* fast, latency 2 ms + exp(5 ms) + spikes."""
    rng = np.random.default_rng(seed)
    host_true = np.arange(0.0, hours * 3600.0, 1.0 / rate)  # true host time of each stamp
    device = host_true * (1 + ppm * 1e-6) + 123.456  # device seconds (arbitrary epoch)
    latency = 0.002 + rng.exponential(0.005, host_true.size)
    if spikes:
        hit = rng.random(host_true.size) < 0.01
        latency[hit] += rng.uniform(0.05, 0.5, hit.sum())  # USB / BLE stalls
    return device, 1_700_000_000.0 + host_true, latency


@pytest.mark.parametrize("ppm", [-45.0, 0.0, 25.0, 60.0])
def test_an_hour_maps_within_a_millisecond(ppm: float) -> None:
    device, host_true, latency = synthetic(1.0, ppm)
    mapper = ClockMapper()
    mapped_first = []
    for k in range(0, device.size, 50):  # fed in chunks, as blocks arrive
        mapper.add(device[k : k + 50], host_true[k : k + 50] + latency[k : k + 50])
        mapped_first.append(mapper.map(device[k]) - host_true[k])
    err = mapper.map(device) - host_true
    # The estimate: device fast by ppm -> host = device * (1 - ppm): drift_ppm ~ -ppm.
    assert mapper.drift_ppm == pytest.approx(-ppm, abs=1.0)
    # After the fit the whole hour maps within ~1 ms. The constant 2 ms latency floor
    # cannot be seen from the host (no frame arrives faster); apart from it:
    assert np.abs(err - 0.002).max() < 1.0e-3
    assert np.ptp(err) < 0.5e-3  # no drift left over the hour
    # Live, once a few windows are in, the running estimate stays within a few ms.
    assert np.abs(np.asarray(mapped_first[20:]) - 0.002).max() < 3e-3
    assert mapper.ready


def test_without_drift_correction_an_hour_would_be_off() -> None:
    device, host_true, _latency = synthetic(1.0, 40.0, spikes=False)
    naive = device[-1] - device[0] - (host_true[-1] - host_true[0])
    assert naive > 0.14  # 40 ppm of an hour: 144 ms that the mapper removes


def test_offset_before_the_first_window_is_the_lowest_latency() -> None:
    mapper = ClockMapper(window_s=2.0)
    assert not mapper.ready and mapper.map(5.0) == 5.0
    mapper.add([10.0, 10.5], [1000.020, 1000.506])
    assert mapper.ready
    assert mapper.map(10.0) == pytest.approx(1000.006)


def test_reset_epoch_keeps_the_drift() -> None:
    device, host_true, latency = synthetic(0.5, 30.0, spikes=False)
    mapper = ClockMapper()
    mapper.add(device, host_true + latency)
    drift = mapper.drift_ppm
    mapper.reset_epoch()  # reboot: the device clock restarts near 0
    assert mapper.drift_ppm == drift and not mapper.ready
    mapper.add([0.02], [host_true[-1] + 1.0])
    assert mapper.map(0.02) == pytest.approx(host_true[-1] + 1.0)
