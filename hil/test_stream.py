"""Stream integrity at the highest advertised rate: no loss on a clean link, the right rate."""

from __future__ import annotations

import pytest

from knotsense.hil.measure import fmt_ms, rate_figures
from knotsense.hil.plugin import StreamHandle
from knotsense.hil.report import BenchReport
from knotsense.hil.target import Client, Target
from knotsense.protocol import DeviceInfo

RATE_TOLERANCE_PPM = 500.0
"""Sample rate on device timestamps vs nominal: a timer off by more is a firmware bug."""
LOSS_COUNTERS = (
    "seq_gaps",
    "frames_lost",
    "crc_errors",
    "framing_errors",
    "duplicates",
    "seq_resets",
    "message_errors",
    "oversize",
    "version_errors",
)


def test_stream_integrity_at_max_rate(
    fresh_stream: StreamHandle,
    hil_client: Client,
    hil_target: Target,
    device_info: DeviceInfo,
    stream_seconds: float,
    bench_report: BenchReport,
) -> None:
    if hil_target.has_faults:
        pytest.skip("the device URL injects faults: stream integrity needs a clean link")
    config = fresh_stream.config
    rate = config.rate_hz
    assert rate == max(device_info.sample_rates)
    cap = fresh_stream.capture(stream_seconds, wall_limit=max(60.0, 3 * stream_seconds + 30))
    section = f"Stream at {rate} Hz x {config.channel_count} ch"
    span = cap.device_span_s()
    fig = rate_figures(cap, rate, hil_target.host_clock_meaningful)
    bench_report.add(section, "samples / device seconds", f"{cap.n_samples} / {span:.3f} s")
    bench_report.add(
        section,
        "wall time",
        f"{cap.wall_s:.2f} s",
        "virtual-time simulator" if hil_target.virtual_time else "",
    )
    bench_report.add(
        section,
        "rate on device timestamps",
        f"{fig.measured_hz:.4f} Hz",
        f"error {fig.error_ppm:+.1f} ppm (tolerance +/-{RATE_TOLERANCE_PPM:g})",
    )
    if fig.clock_vs_host_ppm is not None:
        bench_report.add(
            section,
            "device clock vs host clock",
            f"{fig.clock_vs_host_ppm:+.1f} ppm",
            "fit over arrival times; includes link latency drift",
        )
        bench_report.add(
            section,
            "block inter-arrival (host)",
            fmt_ms(fig.inter_arrival_ms),
            f"blocks of <= {config.samples_per_block} samples",
        )
        bench_report.add(
            section,
            "arrival lateness jitter (host)",
            fmt_ms(fig.lateness_jitter_ms),
            "arrival minus device time of the block's last sample, minus its minimum",
        )
    else:
        bench_report.add(
            section,
            "host-side jitter",
            "n/a",
            "simulator not at real time behind a real link: wall clock vs device time",
        )
    losses = {k: cap.delta(k) for k in LOSS_COUNTERS}
    bench_report.add(
        section,
        "loss",
        ", ".join(
            f"{k} {v}"
            for k, v in losses.items()
            if k in ("seq_gaps", "frames_lost", "crc_errors", "framing_errors")
        )
        + f", gaps {len(cap.gaps)}",
    )
    assert span >= stream_seconds - 2.0 / rate, f"only {span:.3f} s of samples arrived"
    assert not cap.gaps, f"samples lost on a clean link: {cap.gaps[:3]}"
    assert not cap.links, f"link changes on a clean link: {cap.links[:3]}"
    assert fig.index_continuous, "sample_index not continuous"
    assert all(v == 0 for v in losses.values()), f"link errors on a clean link: {losses}"
    assert cap.n_samples >= rate * stream_seconds - config.samples_per_block
    assert abs(fig.error_ppm) <= RATE_TOLERANCE_PPM, (
        f"rate on device timestamps {fig.measured_hz:.4f} Hz is {fig.error_ppm:+.0f} ppm off {rate}"
    )
    # The device's own counters agree: nothing dropped from its transmit buffer.
    status = hil_client.device.get_status()
    assert status.frames_dropped == 0, f"device dropped {status.frames_dropped} frames"
