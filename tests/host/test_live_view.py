"""The live view of ``knotsense record``: LineView lines and the RichView panel."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from knotsense.dsp.pipeline import PipelineConfig
from knotsense.host.device import Gap, LinkChange, Samples
from knotsense.host.live import LineView, LiveState, RichView
from knotsense.host.record import record_session

URL = "sim://?scenario=back_session&seed=3&faults=drop:0.05,link_drop:8+1"


def samples(t0: float, n: int, rate: float = 100.0, channels: int = 2) -> Samples:
    t = t0 + np.arange(n) / rate
    return Samples(
        0, 0, (t * 1e6).astype(np.int64), t, np.ones((n, channels), np.int32), 3, 0, 0, t[-1]
    )


def test_live_state_counts_rate_gaps_and_link_changes() -> None:
    state = LiveState(channels=2, unit="counts")
    for k in range(10):
        state.on_item(samples(1000.0 + k * 0.1, 10))
    state.on_item(Gap(1001.0, 1001.5, 50, "frames_lost"))
    state.on_item(LinkChange("lost", 1001.0, "why"))
    state.on_item(LinkChange("rebooted", 1001.6))
    assert state.samples == 100 and state.gaps == 1 and state.samples_lost == 50
    assert state.link_losses == 1 and state.reboots == 1
    assert state.rate_hz == pytest.approx(100.0, rel=0.02)
    assert state.now_s == pytest.approx(0.99)
    assert state.state_text() == "uncalibrated"
    assert any("50 samples lost (frames_lost)" in m for m in state.messages)


def test_line_view_prints_rate_and_gaps() -> None:
    state = LiveState(channels=2, unit="counts")
    out = io.StringIO()
    with LineView(state, out, every_s=0.5) as view:
        for k in range(20):
            state.on_item(samples(1000.0 + k * 0.1, 10))
            if k == 7:
                state.on_item(Gap(1000.8, 1000.9, 10, "link"))
            view.refresh()
    text = out.getvalue()
    lines = [line for line in text.splitlines() if "rate" in line]
    assert len(lines) >= 3  # every 0.5 s of data time
    assert "rate  100.0 Hz" in lines[-1] and "gaps 1" in lines[-1] and "lost 10" in lines[-1]
    assert "gap: 10 samples lost (link)" in text


def _record(tmp_path: Path, view_factory) -> object:
    return asyncio.run(
        record_session(
            URL,
            tmp_path / "s.ksr",
            duration_s=14.0,
            rate_hz=80,
            pipeline_config=PipelineConfig(release_threshold=100.0),
            view_factory=view_factory,
        )
    )


def test_line_view_during_a_recording(tmp_path: Path) -> None:
    out = io.StringIO()
    result = _record(tmp_path, lambda state, device: LineView(state, out, every_s=2.0))
    text = out.getvalue()
    status = [line for line in text.splitlines() if " rate " in line]
    assert len(status) >= 6
    assert "gaps 0" not in status[-1] and "Hz" in status[-1]
    assert "link lost" in text and "link restored" in text
    assert result.stats["reconnects"] == 1 and result.stopped_by == "duration"


def test_rich_view_renders_to_a_console(tmp_path: Path) -> None:
    sink = io.StringIO()
    console = Console(file=sink, force_terminal=True, width=100, color_system=None)
    views: list[RichView] = []

    def factory(state, device):
        view = RichView(state, lambda: device.stats, "recording test", console=console)
        views.append(view)
        return view

    result = _record(tmp_path, factory)
    text = sink.getvalue()
    assert views and result.samples > 0
    assert "recording test" in text
    for word in ("rate", "gaps", "crc errors", "reconnects", "ch0", "ch3", "rocking"):
        assert word in text, word
    assert "release" in text  # a threshold was given: the hold timer row is shown


def test_rich_view_with_an_empty_state() -> None:
    sink = io.StringIO()
    console = Console(file=sink, force_terminal=True, width=80, color_system=None)
    state = LiveState(channels=3, unit="N", release_threshold=90.0)
    with RichView(state, None, "empty", console=console) as view:
        view.refresh(force=True)
    assert "empty" in sink.getvalue() and "no contact" in sink.getvalue()
