"""What ``knotsense record`` shows while it records.

:class:`LiveState` is fed stream items and pipeline outputs and knows what a
person wants to see; two views render it: :class:`RichView` (a live terminal
panel, when stdout is a terminal) and :class:`LineView` (a plain line every
few seconds, for logs and pipes).
"""

from __future__ import annotations

import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from knotsense.dsp.detectors import Episode, Onset
from knotsense.dsp.pipeline import PipelineOutput
from knotsense.host.device import Gap, LinkChange, Notice, Samples
from knotsense.protocol import DeviceEvent, EventCode


@dataclass
class LiveState:
    """Everything the live view shows, updated as data arrives.

    Attributes:
        session_start: host time of the first sample (unix seconds).
        unit: "N" when forces are calibrated, "counts" otherwise.
    """

    channels: int
    unit: str
    release_threshold: float | None = None
    hold_s: float = 60.0
    contact_floor: float = 5.0
    session_start: float | None = None
    now_s: float = 0.0
    latest: np.ndarray | None = None
    total: float = float("nan")
    level: float = float("nan")
    samples: int = 0
    gaps: int = 0
    samples_lost: int = 0
    link_losses: int = 0
    reboots: int = 0
    in_contact: bool = False
    release_started: float | None = None
    release_reached: bool = False
    releases_done: int = 0
    rocking_since: float | None = None
    rocking_episodes: int = 0
    overpressure: bool = False
    messages: deque[str] = field(default_factory=lambda: deque(maxlen=6))
    _rate_window: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))

    def on_item(self, item: Any) -> None:
        """Take one stream item from the device."""
        if isinstance(item, Samples):
            if self.session_start is None and item.host_s.size:
                self.session_start = float(item.host_s[0])
            self.samples += item.raw.shape[0]
            self.latest = item.raw[-1] if item.raw.size else self.latest
            if item.host_s.size:
                self.now_s = float(item.host_s[-1]) - (self.session_start or 0.0)
                self._rate_window.append((float(item.host_s[-1]), self.samples))
        elif isinstance(item, Gap):
            self.gaps += 1
            self.samples_lost += item.samples_lost
            self.say(f"gap: {item.samples_lost} samples lost ({item.reason})")
        elif isinstance(item, LinkChange):
            if item.kind == "lost":
                self.link_losses += 1
            elif item.kind == "rebooted":
                self.reboots += 1
            self.say(f"link {item.kind} {item.detail}".strip())
        elif isinstance(item, Notice) and isinstance(item.message, DeviceEvent):
            code = item.message.code
            name = code.name if isinstance(code, EventCode) else str(code)
            self.say(f"device event {name.lower()}")

    def on_output(self, out: PipelineOutput, forces: np.ndarray | None) -> None:
        """Take one pipeline output (bins and detector events)."""
        if out.t.size:
            self.total = float(out.total[-1])
            self.level = float(out.level[-1])
            self.in_contact = bool(self.level > self.contact_floor)
        if forces is not None and forces.size:
            self.latest = forces[-1]
        for event in out.events:
            if isinstance(event, Onset):
                if event.kind == "release":
                    self.release_started = event.start
                    self.release_reached = True
                    self.say(f"release reached (since {event.start:.1f} s)")
                elif event.kind == "rocking":
                    self.rocking_since = event.start
                    self.say(f"rocking from {event.start:.1f} s")
                elif event.kind == "overpressure":
                    self.overpressure = True
                    self.say("OVERPRESSURE")
            elif isinstance(event, Episode):
                if event.kind == "release":
                    self.releases_done += 1
                    self.release_started = None
                    self.release_reached = False
                    self.say(f"release closed: {event.duration:.0f} s")
                elif event.kind == "rocking":
                    self.rocking_episodes += 1
                    self.rocking_since = None
                elif event.kind == "overpressure":
                    self.overpressure = False

    def say(self, text: str) -> None:
        self.messages.append(f"{self.now_s:7.1f} s  {text}")

    @property
    def rate_hz(self) -> float:
        """Samples per second over the recent window (data time)."""
        if len(self._rate_window) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._rate_window[0], self._rate_window[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    @property
    def hold_s_now(self) -> float | None:
        """Seconds into the current release-level episode, if one is confirmed."""
        if self.release_started is None:
            return None
        return max(0.0, self.now_s - self.release_started)

    def state_text(self) -> str:
        if self.unit != "N":
            return "uncalibrated"
        if self.overpressure:
            return "OVERPRESSURE"
        hold = self.hold_s_now
        if hold is not None:
            return f"release {hold:.0f} s"
        if self.rocking_since is not None:
            return "rocking"
        return "contact" if self.in_contact else "no contact"


class LineView:
    """A plain status line every *every_s* seconds of data time."""

    def __init__(
        self, state: LiveState, stream: TextIO | None = None, every_s: float = 5.0
    ) -> None:
        self.state = state
        # Looked up now, not when the module was imported (sys.stdout may be replaced).
        self.stream = sys.stdout if stream is None else stream
        self.every_s = every_s
        self._next = 0.0
        self._printed = 0

    def __enter__(self) -> LineView:
        return self

    def __exit__(self, *exc: object) -> None:
        self._flush_messages()

    def refresh(self, force: bool = False) -> None:
        s = self.state
        self._flush_messages()
        if not force and s.now_s < self._next:
            return
        self._next = s.now_s + self.every_s
        total = f"{s.total:7.1f} N" if s.unit == "N" and np.isfinite(s.total) else "      -"
        print(
            f"{s.now_s:7.1f} s  total {total}  {s.state_text():<14} rate {s.rate_hz:6.1f} Hz  "
            f"samples {s.samples}  gaps {s.gaps}  lost {s.samples_lost}",
            file=self.stream,
            flush=True,
        )

    def _flush_messages(self) -> None:
        messages = list(self.state.messages)
        for line in messages[self._printed :] if self._printed <= len(messages) else messages:
            print(line, file=self.stream, flush=True)
        self._printed = len(messages)


class RichView:
    """A live terminal panel: forces, state with hold timer, rocking, link quality."""

    def __init__(self, state: LiveState, link_stats: Any, title: str, console: Any = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.state = state
        self.link_stats = link_stats
        self.title = title
        console = Console() if console is None else console
        self._live = Live(self._render(), console=console, refresh_per_second=8, transient=False)
        self._last = 0.0

    def __enter__(self) -> RichView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.update(self._render())
        self._live.__exit__(None, None, None)

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last > 0.1:
            self._last = now
            self._live.update(self._render())

    def _render(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        s = self.state
        stats = self.link_stats() if callable(self.link_stats) else {}
        head = Table.grid(padding=(0, 2))
        total = f"{s.total:.1f} N" if s.unit == "N" and np.isfinite(s.total) else "-"
        head.add_row("time", f"{s.now_s:.1f} s", "total", total, "state", s.state_text())
        if s.release_threshold is not None:
            hold = s.hold_s_now or 0.0
            head.add_row(
                "release",
                f">= {s.release_threshold:g} N",
                "hold",
                f"{hold:.0f} / {s.hold_s:.0f} s",
                "done",
                str(s.releases_done),
            )
        head.add_row(
            "rocking",
            "yes" if s.rocking_since is not None else "no",
            "episodes",
            str(s.rocking_episodes),
            "",
            "",
        )
        bars = Table.grid(padding=(0, 1))
        latest = s.latest if s.latest is not None else np.zeros(s.channels)
        top = max(float(np.max(np.abs(latest))) if latest.size else 1.0, 1e-9)
        for ch, value in enumerate(np.asarray(latest, dtype=float).tolist()):
            bars.add_row(
                f"ch{ch}",
                ProgressBar(total=top, completed=abs(value), width=40),
                f"{value:10.1f} {s.unit}",
            )
        link = Table.grid(padding=(0, 2))
        link.add_row(
            "rate",
            f"{s.rate_hz:.1f} Hz",
            "gaps",
            str(s.gaps),
            "lost",
            str(s.samples_lost),
            "crc errors",
            str(stats.get("crc_errors", 0)),
            "reconnects",
            str(stats.get("reconnects", 0)),
        )
        log = "\n".join(s.messages) or " "
        return Panel(Group(head, bars, link, log), title=self.title)
