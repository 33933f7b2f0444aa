"""The bench report: measured figures and test outcomes, as a human summary (markdown).

Tests add figures through the ``bench_report`` fixture; the plugin records
every test's outcome and writes the summary at the end of the session (to
``--hil-report PATH``, and a short version to the terminal). JUnit XML is
pytest's own ``--junitxml PATH``; the summary names the file when there is one.
"""

from __future__ import annotations

import datetime as _dt
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knotsense._version import __version__


@dataclass
class Figure:
    section: str
    name: str
    value: str
    note: str = ""


@dataclass
class Outcome:
    nodeid: str
    outcome: str
    duration_s: float
    detail: str = ""


@dataclass
class BenchReport:
    """Figures and outcomes of one run against one device."""

    device_url: str
    target_label: str
    reference: str | None = None
    destructive_allowed: bool = False
    device_identity: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    junit_xml: str | None = None
    active: bool = False
    """Whether the run collected tests of knotsense.hil (else the plugin stays quiet)."""
    started: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    )

    def add(self, section: str, name: str, value: object, note: str = "") -> None:
        """One measured figure (formatted as given; floats with 4 significant digits)."""
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        self.figures.append(Figure(section, name, text, note))

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def record(self, nodeid: str, outcome: str, duration_s: float, detail: str = "") -> None:
        prev = self.outcomes.get(nodeid)
        # A failing setup or teardown wins over the call's pass.
        if prev is not None and prev.outcome in ("failed", "error") and outcome == "passed":
            return
        if prev is not None and outcome == "passed":
            duration_s += prev.duration_s
        self.outcomes[nodeid] = Outcome(nodeid, outcome, duration_s, detail)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.outcomes.values():
            out[o.outcome] = out.get(o.outcome, 0) + 1
        return out

    @property
    def ran(self) -> int:
        return sum(1 for o in self.outcomes.values() if o.outcome not in ("skipped",))

    def verdict(self) -> str:
        c = self.counts()
        if not self.ran:
            return "NOTHING RAN (a run that proves nothing fails)"
        if c.get("failed") or c.get("error"):
            return "FAIL"
        return "PASS"

    def markdown(self) -> str:
        c = self.counts()
        lines = [
            "# knotsense HIL bench report",
            "",
            f"- verdict: **{self.verdict()}** "
            + ", ".join(f"{k} {v}" for k, v in sorted(c.items())),
            f"- device: `{self.device_url}` ({self.target_label})",
            f"- reference gauge: {self.reference or 'none'}",
            f"- destructive tests: {'allowed' if self.destructive_allowed else 'not allowed'}",
            f"- started: {self.started} UTC; knotsense {__version__}; "
            f"Python {platform.python_version()} on {platform.system()} {platform.machine()}",
            "- JUnit XML: "
            + (
                f"`{self.junit_xml}`"
                if self.junit_xml
                else "not written (add `--junitxml PATH` to file one)"
            ),
            "",
        ]
        if self.device_identity:
            lines += ["## Device", "", "| field | value |", "|---|---|"]
            lines += [f"| {k} | {v} |" for k, v in self.device_identity.items()]
            lines.append("")
        sections: dict[str, list[Figure]] = {}
        for fig in self.figures:
            sections.setdefault(fig.section, []).append(fig)
        for name, figs in sections.items():
            lines += [f"## {name}", "", "| figure | value | note |", "|---|---|---|"]
            lines += [f"| {f.name} | {f.value} | {f.note} |" for f in figs]
            lines.append("")
        lines += ["## Tests", "", "| test | outcome | s | detail |", "|---|---|---|---|"]
        for o in self.outcomes.values():
            detail = o.detail.replace("|", "/").replace("\n", " ")[:200]
            lines.append(f"| `{o.nodeid}` | {o.outcome} | {o.duration_s:.2f} | {detail} |")
        lines.append("")
        if self.notes:
            lines += ["## Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        return "\n".join(lines)

    def terminal_lines(self) -> list[str]:
        """A short version for the end of the terminal output."""
        out = [f"device {self.device_url} ({self.target_label}): {self.verdict()}"]
        for fig in self.figures:
            out.append(
                f"  {fig.section} / {fig.name}: {fig.value}"
                + (f"  ({fig.note})" if fig.note else "")
            )
        return out

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.markdown(), encoding="utf-8")
        return path
