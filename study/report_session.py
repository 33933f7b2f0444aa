"""``knotsense report REC``: one session as a self-contained HTML page.

The page holds the summary, an interactive force plot (zoom, pan, hover)
with every episode shaded, the events table, the calibration applied and the
signal quality. The plot shows the pipeline's detector-rate signals (25 Hz
bins), thinned to at most :data:`MAX_POINTS` min/max pairs so a 2-hour
session still makes a page of a few MB.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from knotsense.host.analysis_options import AnalysisOptions
from knotsense.study.html_page import page, table

__all__ = ["MAX_POINTS", "session_page", "write_session_report"]

MAX_POINTS = 20_000

KIND_COLOURS = {
    "contact": "#bbbbbb",
    "release": "#2ca02c",
    "rocking": "#1f77b4",
    "circling": "#9467bd",
    "overpressure": "#d62728",
}


def thin(t: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[Any, Any]:
    """At most *max_points* points that keep each slice's minimum and maximum."""
    n = t.size
    if n <= max_points:
        return t, y
    k = int(np.ceil(n / (max_points // 2)))
    m = n // k * k
    tt = t[:m].reshape(-1, k)
    yy = np.nan_to_num(y[:m], nan=np.nanmean(y) if np.isfinite(y).any() else 0.0).reshape(-1, k)
    lo, hi = yy.argmin(axis=1), yy.argmax(axis=1)
    first, second = np.minimum(lo, hi), np.maximum(lo, hi)
    rows = np.arange(tt.shape[0])
    t2 = np.column_stack([tt[rows, first], tt[rows, second]]).ravel()
    y2 = np.column_stack([yy[rows, first], yy[rows, second]]).ravel()
    return t2, y2


def force_plot(signals: Any, events: list[dict[str, Any]], config: Any) -> Any:
    """The Bokeh figure: total and level, threshold, shaded episodes."""
    from bokeh.models import BoxAnnotation, ColumnDataSource, HoverTool, Span
    from bokeh.plotting import figure

    fig = figure(
        height=380,
        sizing_mode="stretch_width",
        x_axis_label="session time (s)",
        y_axis_label="total force (N)",
        tools="xpan,xwheel_zoom,box_zoom,reset,save",
        active_scroll="xwheel_zoom",
        name="force_plot",
    )
    t = np.asarray(signals.t, dtype=float)
    for name, values, colour, width in (
        ("total", signals.total, "#999999", 1),
        ("level", signals.level, "#111111", 2),
    ):
        tx, vy = thin(t, np.asarray(values, dtype=float))
        source = ColumnDataSource({"t": tx, "f": vy})
        fig.line("t", "f", source=source, color=colour, line_width=width, legend_label=name)
    if config.release_threshold is not None:
        fig.add_layout(
            Span(
                location=config.release_threshold,
                dimension="width",
                line_dash="dashed",
                line_color=KIND_COLOURS["release"],
            )
        )
    for e in events:
        if e["kind"] == "contact":
            continue
        fig.add_layout(
            BoxAnnotation(
                left=e["start"],
                right=e["end"],
                fill_alpha=0.15,
                fill_color=KIND_COLOURS.get(e["kind"], "#ff7f0e"),
            )
        )
    fig.add_tools(HoverTool(tooltips=[("t", "@t{0.00} s"), ("force", "@f{0.0} N")]))
    fig.legend.location = "top_left"
    fig.legend.click_policy = "hide"
    return fig


def _calibration_rows(meta: dict[str, Any]) -> list[tuple[str, Any]]:
    cal = meta.get("calibration")
    if not isinstance(cal, dict):
        return [("calibration", "none recorded")]
    device = cal.get("device") if isinstance(cal.get("device"), dict) else {}
    rows: list[tuple[str, Any]] = [
        ("sensor", device.get("sensor")),
        ("device serial", device.get("serial")),
        ("date", cal.get("date")),
        ("verdict", cal.get("verdict")),
        ("checksum", cal.get("checksum")),
    ]
    for i, ch in enumerate(cal.get("channels") or []):
        model = ch.get("model") if isinstance(ch, dict) else None
        kind = model.get("kind") if isinstance(model, dict) else None
        rows.append((f"channel {i} model", kind))
    return rows


def session_page(path: str | os.PathLike[str], options: AnalysisOptions | None = None) -> str:
    """The HTML of the report for one session file."""
    from knotsense.study.session_result import device_fields, load_and_analyse

    table_, config, analysis = load_and_analyse(path, options)
    meta = dict(table_.meta)
    result = analysis.to_dict()
    s = result["summary"]
    q = s["signal_quality"]
    device = device_fields(meta)
    rel, rock, over = s["releases"], s["rocking"], s["overpressure"]
    summary_rows = [
        ("device", f"{device['device_serial']} {device['device_model'] or ''}".strip()),
        ("firmware", device["firmware"]),
        ("start", meta.get("start_time")),
        ("duration (s)", s["duration_s"]),
        ("contacts", s["contacts"]["count"]),
        ("releases", f"{rel['count']} at >= {rel['threshold_n']:g} N held >= {rel['hold_s']:g} s"),
        ("hold times (s)", ", ".join(f"{v:.1f}" for v in rel["hold_times_s"]) or None),
        ("time in release band (s)", s["time_in_release_band_s"]),
        ("rocking", f"{rock['count']} episode(s), {rock['time_s']:.1f} s"),
        ("overpressure", "not checked" if over["max_force_n"] is None else over["count"]),
    ]
    events = result["events"]
    event_rows = [
        (
            e["kind"],
            e["start"],
            e["end"],
            e["duration"],
            e.get("mean_force"),
            e.get("frequency"),
            e.get("cycles"),
            e.get("peak_force"),
        )
        for e in events
    ]
    quality_rows = [(k, v) for k, v in q.items()]
    sections = [
        ("Summary", table(("", "value"), summary_rows, "summary")),
        (
            "Events",
            table(
                (
                    "kind",
                    "start (s)",
                    "end (s)",
                    "duration (s)",
                    "mean force (N)",
                    "frequency (Hz)",
                    "cycles",
                    "peak (N)",
                ),
                event_rows,
                "events",
            ),
        ),
        ("Calibration", table(("", "value"), _calibration_rows(meta), "calibration")),
        ("Signal quality", table(("", "value"), quality_rows, "quality")),
    ]
    title = f"knotsense session report: {Path(path).name}"
    return page(title, sections, force_plot(analysis.signals, events, config))


def write_session_report(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: AnalysisOptions | None = None,
) -> Path:
    """Write the session report of *path* to *out* (HTML); returns *out*."""
    target = Path(out)
    target.write_text(session_page(path, options), encoding="utf-8")
    return target
