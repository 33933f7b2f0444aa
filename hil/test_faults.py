"""Fault injection (simulator only): every injected fault is detected and reported as the
protocol says, and the counts match what the simulator injected (``device.injected``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from knotsense.hil.measure import Capture
from knotsense.hil.plugin import drain, start_stream
from knotsense.hil.report import BenchReport
from knotsense.hil.target import Client
from knotsense.protocol import EventCode, ResetReason

pytestmark = pytest.mark.simulator_only
PACED = "2"
"""Speed of the devices with timed faults: their fault times are device seconds since power-on."""


def stream_under_fault(
    connect: Callable[..., Client], faults: str, seconds: float, *, paced: bool = False, **kw: str
) -> tuple[Client, Capture]:
    params = {"faults": faults, **kw}
    if paced:
        params["speed"] = PACED
    client = connect(**params)
    info = client.device.get_info()
    handle = start_stream(client, max(info.sample_rates))
    cap = handle.capture(seconds, wall_limit=90.0)
    client.device.stop_stream()
    drain(client, 0.3)
    return client, cap


def test_bit_errors_drops_and_duplicates_are_counted(
    sim_client: Callable[..., Client], bench_report: BenchReport
) -> None:
    client, cap = stream_under_fault(sim_client, "bit_errors:2e-5,drop:0.01,dup:0.01", 5.0)
    injected = client.sim.injected
    stats = client.device.stats
    assert injected.frames_corrupted > 0 and injected.frames_dropped > 0
    assert stats["crc_errors"] == injected.frames_corrupted, (stats, injected)
    assert stats["duplicates"] == injected.frames_duplicated, (stats, injected)
    lost = injected.frames_corrupted + injected.frames_dropped
    # A lost frame shows when the next one arrives; the very last may still be pending.
    assert lost - 1 <= stats["frames_lost"] <= lost, (stats, injected)
    assert cap.gaps and {g.reason for g in cap.gaps} == {"frames_lost"}
    blocks = sorted(cap.samples, key=lambda s: s.received_at)
    missing = sum(
        (b.sample_index - a.sample_index - len(a.device_us)) & 0xFFFFFFFF
        for a, b in itertools.pairwise(blocks)
    )
    assert sum(g.samples_lost for g in cap.gaps) == missing, (
        "Gap items do not add up to the missing samples"
    )
    bench_report.add(
        "Fault injection",
        "bit errors / drops / duplicates",
        f"crc {stats['crc_errors']}={injected.frames_corrupted}, "
        f"lost {stats['frames_lost']}~{lost}, "
        f"dup {stats['duplicates']}={injected.frames_duplicated}",
        f"{len(cap.gaps)} gaps, {missing} samples",
    )


def test_watchdog_reboot_is_detected_and_stream_resumes(
    sim_client: Callable[..., Client], bench_report: BenchReport
) -> None:
    client, cap = stream_under_fault(sim_client, "reboot_at:3", 6.0, paced=True)
    assert client.sim.injected.reboots == 1
    assert [link.kind for link in cap.links] == ["rebooted"] or "rebooted" in [
        link.kind for link in cap.links
    ], cap.links
    boots = cap.events(EventCode.BOOT)
    assert boots and boots[-1].arg == ResetReason.WATCHDOG
    assert client.device.stats["reboots"] == 1
    # Streaming resumed: samples with a restarted index after the reboot.
    restarted = [s for s in cap.samples if s.sample_index == 0]
    assert len(restarted) >= 2, "the stream did not restart after the reboot"
    bench_report.add(
        "Fault injection", "watchdog reboot", "detected, BOOT WATCHDOG, stream resumed"
    )


def test_transmit_overflow_is_reported(
    sim_client: Callable[..., Client], bench_report: BenchReport
) -> None:
    client, cap = stream_under_fault(sim_client, "slow_reader:3000@2+2", 6.0, paced=True)
    injected = client.sim.injected
    assert injected.overflow_drops > 0
    events = cap.events(EventCode.BUFFER_OVERFLOW)
    assert events, "no BUFFER_OVERFLOW event"
    assert sum(e.value for e in events) == injected.overflow_drops
    assert any(g.reason == "overflow" for g in cap.gaps), f"no overflow gap: {cap.gaps}"
    status = client.device.get_status()
    assert status.frames_dropped == injected.overflow_drops
    assert client.device.stats["frames_lost"] >= injected.overflow_drops
    in_gaps = sum(g.samples_lost for g in cap.gaps if g.reason == "overflow")
    bench_report.add(
        "Fault injection",
        "transmit overflow (slow reader)",
        f"{injected.overflow_drops} frames dropped, reported by {len(events)} event(s)",
        f"{in_gaps} samples in overflow gaps",
    )


def test_link_drop_reconnects_mid_stream(
    sim_client: Callable[..., Client], bench_report: BenchReport
) -> None:
    client, cap = stream_under_fault(sim_client, "link_drop:2+1", 5.0, paced=True)
    kinds = [link.kind for link in cap.links]
    assert "lost" in kinds and "restored" in kinds, kinds
    assert kinds.index("lost") < kinds.index("restored")
    assert client.sim.injected.link_drops == 1
    stats = client.device.stats
    assert stats["link_losses"] >= 1 and stats["reconnects"] >= 1
    assert any(g.reason == "link" for g in cap.gaps), f"no link gap: {cap.gaps}"
    after_restore = [s for s in cap.samples if s.received_at > cap.links[-1].at]
    assert after_restore, "no samples after the link came back"
    lost = sum(g.samples_lost for g in cap.gaps)
    bench_report.add(
        "Fault injection", "link drop 1 s", f"lost and restored, {lost} samples in gaps"
    )
