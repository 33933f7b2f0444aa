"""Thresholds and the device's threshold events at the right forces.

On a simulator the load is scripted: a scenario of known force steps (written
to a temporary TOML file), thresholds programmed from the unit's static curve
so the load index reads in millinewtons, and the simulated world as the
reference. Every event must fire (1) exactly where the protocol's detector says,
recomputed on the host from the streamed raw samples, and (2) when the
reference force crossed the threshold, within tolerance.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from knotsense.hil.plugin import drain, start_stream
from knotsense.hil.reference import SimReference
from knotsense.hil.report import BenchReport
from knotsense.hil.target import Client, Target
from knotsense.protocol import ChannelWeight, EventCode, ThresholdFlags, Thresholds

RELEASE_ON_N, RELEASE_OFF_N, OVER_N = 120.0, 100.0, 250.0
DEBOUNCE_MS = 255
"""Not a multiple of the sample period: clock jitter of a few us cannot move an event."""
SPEED = "4"
FORCE_TOLERANCE = 0.10
"""Reference force at the crossing vs the threshold: static curve, creep and silicone."""
STEPS = [(4, 0, 1), (3, 80, 1), (4, 160, 2), (4, 320, 2), (4, 160, 2), (4, 0, 2)]
"""(duration s, force N, ramp s) of the scripted load."""
EXPECTED = [
    (EventCode.RELEASE_ENTER, RELEASE_ON_N),
    (EventCode.OVERPRESSURE_ENTER, OVER_N),
    (EventCode.OVERPRESSURE_EXIT, OVER_N),
    (EventCode.RELEASE_EXIT, RELEASE_OFF_N),
]


def scenario_toml(channels: int, sensor: str) -> str:
    lines = [
        'name = "hil_thresholds"',
        f'sensor = "{sensor}"',
        f"channels = {channels}",
        "max_force_n = 400",
        f"release_threshold_n = {RELEASE_ON_N:g}",
    ]
    for duration, force, ramp in STEPS:
        lines += ["", "[[segment]]", 'kind = "step"', f"duration = {duration}"]
        lines += [f"force = {force}", f"ramp_s = {ramp}", "cop_mm = [0, 0]"]
    return "\n".join(lines) + "\n"


def static_thresholds(serial: str, sensor: str, channels: int) -> Thresholds:
    """Zeros and weights from the simulated unit's static curve: L reads in millinewtons."""
    from knotsense.firmware_sim.physics import make_unit

    unit = make_unit(serial, sensor, channels)
    share = 100.0 / channels  # 100 N total, centred: equal shares
    zero = unit.static_counts(np.zeros(channels))
    span = unit.static_counts(np.full(channels, share)) - zero
    weights = [round(65536 * 1000 * share / float(s)) for s in span]
    return Thresholds(
        ThresholdFlags.RELEASE_ENABLED | ThresholdFlags.OVERPRESSURE_ENABLED,
        DEBOUNCE_MS,
        0,
        round(RELEASE_ON_N * 1000),
        round(RELEASE_OFF_N * 1000),
        round(OVER_N * 1000),
        tuple(ChannelWeight(round(float(z)), w) for z, w in zip(zero, weights, strict=True)),
    )


def host_detector(
    th: Thresholds, t_us: np.ndarray, load: np.ndarray
) -> list[tuple[EventCode, int]]:
    """The protocol's detector (docs/protocol.md 10.5) on the host: (code, device time) events."""
    out: list[tuple[EventCode, int]] = []
    debounce = th.debounce_ms * 1000
    release = over = False
    since_r: int | None = None
    since_o: int | None = None
    for t, value in zip(t_us.tolist(), load.tolist(), strict=True):
        cond_r = value < th.release_off if release else value >= th.release_on
        since_r = (since_r if since_r is not None else t) if cond_r else None
        if since_r is not None and t - since_r >= debounce:
            release = not release
            out.append((EventCode.RELEASE_ENTER if release else EventCode.RELEASE_EXIT, t))
            since_r = None
        cond_o = value <= th.overpressure_on if over else value > th.overpressure_on
        since_o = (since_o if since_o is not None else t) if cond_o else None
        if since_o is not None and t - since_o >= debounce:
            over = not over
            out.append((EventCode.OVERPRESSURE_ENTER if over else EventCode.OVERPRESSURE_EXIT, t))
            since_o = None
    return out


@pytest.mark.bench
@pytest.mark.destructive
def test_threshold_events_at_the_right_forces(
    hil_target: Target,
    sim_client: Callable[..., Client],
    tmp_path: Path,
    bench_report: BenchReport,
) -> None:
    if not hil_target.is_sim:  # pragma: no cover - needs a board, a gauge and a load
        pytest.skip("threshold events on hardware need a scripted load; not automated yet")
    base = Target(hil_target.url).query
    sensor, channels = base.get("sensor", "load_cell"), int(base.get("channels", "4"))
    path = tmp_path / "hil_thresholds.toml"
    path.write_text(scenario_toml(channels, sensor), encoding="utf-8")
    # Paced, so that the scripted load waits for the stream to start.
    client = sim_client(scenario=str(path), faults=None, speed=SPEED, rate=None)
    dev = client.device
    info = dev.get_info()
    th = static_thresholds(info.serial_number, sensor, info.channel_count)
    assert dev.write_thresholds(th) == th
    assert dev.read_thresholds() == th
    rate = 80 if 80 in info.sample_rates else min(info.sample_rates)
    handle = start_stream(client, rate)
    total_s = sum(d for d, _, _ in STEPS)
    cap = handle.capture(total_s - client.sim.now - 0.5, wall_limit=120.0)
    dev.stop_stream()
    drain(client, 0.2)
    assert not cap.gaps, "samples lost: the host cannot recompute the detector"
    assert cap.samples and cap.samples[0].device_us[0] < 3.5e6, "the stream started too late"
    reference = SimReference(client.sim)
    raw, t_us = cap.raw(), cap.device_us()
    load = np.array([th.load_index([int(x) for x in row]) for row in raw])
    events = [e for e in cap.events() if e.code in {c for c, _ in EXPECTED}]
    got = [e.code for e in events]
    assert got == [c for c, _ in EXPECTED], f"events {[c.name for c in got]}"
    # (2) at the right force: the reference crossed the threshold when the debounce began
    rows = []
    for e, (code, threshold) in zip(events, EXPECTED, strict=True):
        crossed = reference.force_at_device_us(e.t_us - DEBOUNCE_MS * 1000)
        at_event = reference.force_at_device_us(e.t_us)
        rows.append(
            f"{code.name} {crossed:.1f} N (threshold {threshold:g} N, L {e.value / 1000:.1f} N)"
        )
        assert abs(crossed - threshold) <= FORCE_TOLERANCE * threshold, (
            f"{code.name}: reference {crossed:.1f} N at the crossing, threshold {threshold:g} N"
        )
        assert abs(e.value / 1000 - at_event) <= FORCE_TOLERANCE * at_event + 5.0
    bench_report.add(
        "Thresholds",
        "events vs reference",
        "; ".join(rows),
        f"debounce {DEBOUNCE_MS} ms; tolerance {FORCE_TOLERANCE:.0%}",
    )
    # (1) exactly where the detector of docs/protocol.md 10.5 fires on the streamed samples
    expected_host = host_detector(th, t_us, load)
    assert [c for c, _ in expected_host] == got
    # Sample times on the host are nominal (t_first_us + k * period); the device's carry its
    # clock's jitter, so events are matched by sample, not by microsecond.
    period_us = 1e6 / rate
    late = []
    for e, (code, t_host) in zip(events, expected_host, strict=True):
        t_dev = int(t_us[0]) + ((e.t_us - int(t_us[0])) & 0xFFFFFFFF)
        off = round((t_dev - t_host) / period_us)
        if off or abs(t_dev - t_host) > 50:
            late.append((code.name, t_dev, t_host))
    assert not late, f"events not where the protocol's detector fires (name, device, host): {late}"
