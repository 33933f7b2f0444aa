"""``knotsense report OUT/``: a batch dataset as one self-contained HTML page.

Distributions a study asks for first: hold times of all releases, releases
per session, time in the release band over the sessions (in start order),
and the sessions table.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from knotsense.study.dataset import read_dataset
from knotsense.study.html_page import page, table

__all__ = ["study_page", "write_study_report"]


def _histogram(values: list[float], title: str, x_label: str, name: str) -> Any:
    from bokeh.plotting import figure

    fig = figure(
        height=260,
        sizing_mode="stretch_width",
        title=title,
        x_axis_label=x_label,
        y_axis_label="count",
        tools="xpan,xwheel_zoom,box_zoom,reset,save",
        name=name,
    )
    data = np.asarray(values, dtype=float)
    if data.size:
        counts, edges = np.histogram(data, bins=min(30, max(5, int(np.sqrt(data.size)) + 1)))
        fig.quad(
            top=counts,
            bottom=0,
            left=edges[:-1],
            right=edges[1:],
            fill_color="#2ca02c",
            line_color="white",
        )
    return fig


def study_page(root: str | os.PathLike[str]) -> str:
    """The HTML of the study report for the dataset at *root*."""
    from bokeh.layouts import column
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure

    sessions = read_dataset(root, "sessions").to_pylist()
    sessions.sort(key=lambda r: (r.get("start_time") or "", r["session_id"]))
    holds = [h for r in sessions for h in (r.get("release_hold_times_s") or [])]
    releases = [float(r["releases"]) for r in sessions]
    band = ColumnDataSource(
        {
            "i": list(range(len(sessions))),
            "band": [r["time_in_band_s"] for r in sessions],
            "serial": [r["device_serial"] for r in sessions],
            "start": [r.get("start_time") or "" for r in sessions],
        }
    )
    over = figure(
        height=260,
        sizing_mode="stretch_width",
        title="time in release band per session",
        x_axis_label="session (in start order)",
        y_axis_label="s",
        tools="xpan,xwheel_zoom,box_zoom,reset,save",
        name="band_plot",
    )
    over.scatter("i", "band", source=band, size=6)
    over.add_tools(
        HoverTool(
            tooltips=[("device", "@serial"), ("start", "@start"), ("in band", "@band{0.0} s")]
        )
    )
    plots = column(
        _histogram(holds, "release hold times", "hold (s)", "holds_plot"),
        _histogram(releases, "releases per session", "releases", "releases_plot"),
        over,
        sizing_mode="stretch_width",
    )
    total = sum(r["duration_s"] for r in sessions)
    overview = [
        ("sessions", len(sessions)),
        ("devices", len({r["device_serial"] for r in sessions})),
        ("hours analysed", round(total / 3600, 3)),
        ("releases", int(sum(releases))),
        ("median hold (s)", float(np.median(holds)) if holds else None),
    ]
    rows = [
        (
            r["device_serial"],
            r.get("start_time"),
            r["duration_s"],
            r["releases"],
            r["time_in_band_s"],
            r["rocking_episodes"],
            r["overpressure_episodes"],
            r["source"],
        )
        for r in sessions
    ]
    sections = [
        ("Overview", table(("", "value"), overview, "overview")),
        (
            "Sessions",
            table(
                (
                    "device",
                    "start",
                    "duration (s)",
                    "releases",
                    "in band (s)",
                    "rocking",
                    "overpressure",
                    "file",
                ),
                rows,
                "sessions",
            ),
        ),
    ]
    return page(f"knotsense study report: {Path(root).name}", sections, plots)


def write_study_report(root: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write the study report of the dataset at *root* to *out* (HTML); returns *out*."""
    target = Path(out)
    target.write_text(study_page(root), encoding="utf-8")
    return target
