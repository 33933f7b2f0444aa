"""Session plots: forces, the release band, episodes (rocking axes, circling) and gaps.

matplotlib with the Agg backend (no display needed). Plots the decimated
signals the pipeline produced, so an hour at 1 kHz draws as fast as a minute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["plot_analysis"]

COLOURS = {
    "release": "#2e9d4a",
    "band": "#3b6fb6",
    "rocking": "#f08c00",
    "overpressure": "#d62728",
    "circling": "#7b3fa0",
    "gap": "#666666",
}


def _broken(t: NDArray[np.float64], y: NDArray[np.float64], max_step: float) -> tuple:
    """Insert NaN rows where t jumps, so lines are not drawn across gaps."""
    if t.size < 2:
        return t, y
    cut = np.flatnonzero(np.diff(t) > max_step) + 1
    return np.insert(t, cut, np.nan), np.insert(y, cut, np.nan, axis=0)


def _gaps(t: NDArray[np.float64], min_gap: float) -> list[tuple[float, float]]:
    steps = np.diff(t)
    idx = np.flatnonzero(steps > min_gap)
    return [(float(t[i]), float(t[i + 1])) for i in idx]


def plot_analysis(
    out: str | Path,
    t: NDArray[np.float64],
    analysis: Any,
    config: Any,
    names: tuple[str, ...] = (),
    title: str = "",
) -> Path:
    """Draw *analysis* (a ``knotsense.dsp.pipeline.Analysis``) of samples at times *t* to *out*."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    sig = analysis.signals
    summary = analysis.summary.to_dict()
    fig, (ax, axo) = plt.subplots(
        2, 1, figsize=(16, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]}
    )
    step = 3.0 / config.detector_rate
    thr = config.release_threshold
    top = config.max_force
    # Release band first, so everything else draws over it.
    if thr is not None:
        hi = top if top is not None else thr * 1.2
        ax.axhspan(thr, hi, color=COLOURS["band"], alpha=0.08, lw=0)
        ax.axhline(thr, color=COLOURS["band"], lw=1, ls="--")
    if top is not None:
        ax.axhline(top, color=COLOURS["overpressure"], lw=1, ls="--")
    for e in analysis.episodes:
        if e.kind in ("release", "rocking", "overpressure", "circling"):
            alpha = {"release": 0.18, "rocking": 0.35, "overpressure": 0.35, "circling": 0.3}
            alpha = alpha[e.kind]
            target = (ax, axo) if e.kind in ("rocking", "circling") else (ax,)
            for a in target:
                a.axvspan(e.start, e.end, color=COLOURS[e.kind], alpha=alpha, lw=0)
    gaps = _gaps(np.asarray(t, dtype=np.float64), max(config.quality_gap, 0.1))
    for a, b in gaps:
        for axis in (ax, axo):
            axis.axvspan(a, b, facecolor=COLOURS["gap"], alpha=0.25, lw=0)
    if gaps:  # short gaps are thinner than a pixel: mark them too
        mids = [(a + b) / 2 for a, b in gaps]
        ax.plot(
            mids,
            [0.0] * len(mids),
            ls="none",
            marker="v",
            ms=6,
            color=COLOURS["gap"],
            transform=ax.get_xaxis_transform(),
            clip_on=False,
            zorder=5,
        )
    # Traces.
    ch = sig.channels
    if ch.shape[1] > 1:
        cmap = plt.get_cmap("tab10")
        for i in range(ch.shape[1]):
            label = names[i] if i < len(names) else f"ch{i}"
            tb, yb = _broken(sig.t, ch[:, i], step)
            ax.plot(tb, yb, lw=0.6, alpha=0.7, color=cmap(i % 10), label=label)
    tb, yb = _broken(sig.t, sig.total, step)
    ax.plot(tb, yb, lw=1.0, color="black", label="total")
    tb, yb = _broken(sig.t, sig.level, step)
    ax.plot(tb, yb, lw=1.6, color="#1f4e9c", alpha=0.8, label="level (low-pass)")
    tb, yb = _broken(sig.t, sig.osc, step)
    axo.plot(tb, yb, lw=0.8, color="#444444")
    axo.axhline(0, color="#999999", lw=0.5)
    # Labels on episodes.
    ymax = float(np.nanmax(sig.total)) if sig.total.size else 1.0
    for e in analysis.episodes:
        if e.kind == "release":
            ax.text(
                (e.start + e.end) / 2,
                ymax * 1.04,
                f"release {e.duration:.0f} s",
                ha="center",
                va="bottom",
                fontsize=8,
                color=COLOURS["release"],
            )
        elif e.kind == "rocking":
            lim = axo.get_ylim()[1] if sig.osc.size else 1.0
            axis = f"\n{e.axis:.0f}\N{DEGREE SIGN} {e.extent:.0f} mm" if e.axis is not None else ""
            axo.text(
                (e.start + e.end) / 2,
                lim * 0.8,
                f"{e.frequency:.2f} Hz x{e.cycles}{axis}",
                ha="center",
                va="top",
                fontsize=7,
                color="#a05a00",
            )
        elif e.kind == "circling":
            lim = axo.get_ylim()[0] if sig.osc.size else -1.0
            axo.text(
                (e.start + e.end) / 2,
                lim * 0.8,
                f"{e.turns:.1f} turns {e.direction}",
                ha="center",
                va="bottom",
                fontsize=7,
                color=COLOURS["circling"],
            )
    ax.set_ylim(min(-5.0, float(np.nanmin(sig.total)) if sig.total.size else 0.0), ymax * 1.15)
    ax.set_ylabel("force (N)")
    axo.set_ylabel("oscillation (N)")
    axo.set_xlabel("time (s)")
    ax.set_title(title or "knotsense session")
    handles = ax.get_legend_handles_labels()[0]
    handles += [
        Patch(color=COLOURS["band"], alpha=0.2, label="release band"),
        Patch(color=COLOURS["release"], alpha=0.3, label="release episode"),
        Patch(color=COLOURS["rocking"], alpha=0.4, label="rocking"),
        Patch(color=COLOURS["gap"], alpha=0.4, label="data gap (v)"),
    ]
    if top is not None:
        handles.append(Patch(color=COLOURS["overpressure"], alpha=0.4, label="overpressure"))
    if any(e.kind == "circling" for e in analysis.episodes):
        handles.append(Patch(color=COLOURS["circling"], alpha=0.4, label="circling"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    rel, rock, q = summary["releases"], summary["rocking"], summary["signal_quality"]
    circ = summary.get("circling", {"count": 0, "turns": [], "directions": []})
    holds = ", ".join(f"{h:.0f}" for h in rel["hold_times_s"]) or "-"
    over = summary["overpressure"]
    box = "\n".join(
        [
            f"duration {summary['duration_s']:.0f} s, {summary['contacts']['count']} contact(s)",
            f"releases: {rel['count']} (>= {rel['threshold_n']:g} N for >= {rel['hold_s']:g} s)",
            f"  holds (s): {holds}",
            f"  time in band: {summary['time_in_release_band_s']:.0f} s",
            f"rocking: {rock['count']} episode(s), "
            + (", ".join(f"{f:.2f} Hz" for f in rock["frequencies_hz"][:4]) or "-"),
            "  axes (deg): "
            + (", ".join(f"{a:.0f}" for a in rock.get("axes_deg", [])[:6] if a is not None) or "-"),
            f"circling: {circ['count']} episode(s), "
            + (
                ", ".join(
                    f"{n:.1f} {d}"
                    for n, d in zip(circ["turns"][:4], circ["directions"], strict=False)
                )
                or "-"
            ),
            "overpressure: "
            + (
                "not checked"
                if over["max_force_n"] is None
                else f"{over['count']}, {over['time_s']:.1f} s"
            ),
            f"gaps: {q['gaps']} ({q['gap_time_s']:.1f} s), spikes removed: {q['spikes_removed']}",
        ]
    )
    fig.text(
        0.808,
        0.08,
        box,
        va="bottom",
        ha="left",
        fontsize=8,
        family="monospace",
        bbox={"boxstyle": "round", "facecolor": "#f7f7f7", "edgecolor": "#999999"},
    )
    ax.grid(alpha=0.3)
    axo.grid(alpha=0.3)
    fig.subplots_adjust(left=0.05, right=0.8, top=0.94, bottom=0.08, hspace=0.08)
    path = Path(out)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
