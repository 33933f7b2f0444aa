"""The calibration report figure: per channel the curve, residuals, hysteresis loop, verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from knotsense.calibration.bench import load_shares
from knotsense.dsp.calibration_models import model_from_dict
from knotsense.errors import CalibrationError

COLORS = {"up": "tab:blue", "down": "tab:orange", "zero": "tab:gray", "creep": "tab:purple"}


def plot_report(record: dict[str, Any], out: str | Path) -> Path:
    """Write the report PNG for a checked record (needs its bench ``points``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = record.get("points") or []
    if not points:
        raise CalibrationError("the record has no bench points to plot (a device copy?)")
    chans = record["channels"]
    c = len(chans)
    positions = [tuple(p) for p in record["bench"].get("positions_mm") or []]
    fig, axes = plt.subplots(c, 3, figsize=(13, 3.1 * c + 0.8), squeeze=False)
    dev = record["device"]
    fig.suptitle(
        f"knotsense calibration: {dev['serial']} "
        f"({dev.get('sensor', '')}, fw {dev.get('firmware', '')}) "
        f"{record['date']}  verdict: {record['verdict'].upper()}",
        fontsize=12,
        color="darkgreen" if record["verdict"] == "pass" else "darkred",
    )
    for ch, entry in enumerate(chans):
        model = model_from_dict(entry["model"])
        ax_c, ax_r, ax_h = axes[ch]
        xs, fs, ds, series = [], [], [], []
        for p in points:
            if p["direction"] == "creep":
                continue
            share = load_shares(positions, tuple(p.get("position_mm", (0, 0))), c)[ch]
            xs.append(p["raw"][ch])
            fs.append(p["reference_n"] * share)
            ds.append(p["direction"])
            series.append(p["series"])
        x, f = np.array(xs), np.array(fs)
        grid = np.linspace(x.min(), x.max(), 200)
        ax_c.plot(grid, model.apply(grid), "k-", lw=1, label=f"{entry['model']['kind']} fit")
        for d in ("up", "down", "zero"):
            m = np.array([v == d for v in ds])
            if m.any():
                ax_c.plot(x[m], f[m], "o", ms=3.5, color=COLORS[d], label=d)
        ax_c.set_xlabel("counts")
        ax_c.set_ylabel(f"ch{ch} force (N)")
        ax_c.legend(fontsize=7, loc="upper left")
        loaded = f > 0
        res = (model.apply(x[loaded]) - f[loaded]) / f[loaded] * 100
        for d in ("up", "down"):
            m = np.array([v == d for v in ds])[loaded]
            if m.any():
                ax_r.plot(f[loaded][m], res[m], "o", ms=3.5, color=COLORS[d], label=d)
        ax_r.axhline(0, color="k", lw=0.8)
        lim = record.get("limits", {}).get("interpolation_pct_reading")
        if lim:
            ax_r.axhspan(-lim, lim, color="tab:green", alpha=0.08, label=f"+/-{lim:g} %")
        ax_r.set_xlabel("reference force (N)")
        ax_r.set_ylabel("error (% of reading)")
        ax_r.legend(fontsize=7)
        # Hysteresis loop: error in N along the series that went up and down.
        loops = sorted({s for s, d in zip(series, ds, strict=True) if d == "down"})
        for s in loops:
            for d in ("up", "down"):
                m = np.array([(sv == s and dv == d) for sv, dv in zip(series, ds, strict=True)])
                order = np.argsort(f[m])
                ax_h.plot(
                    f[m][order],
                    (model.apply(x[m]) - f[m])[order],
                    "o-",
                    ms=3,
                    color=COLORS[d],
                    label=f"series {s} {d}",
                )
        if not loops:
            ax_h.text(0.5, 0.5, "no descending series", ha="center", transform=ax_h.transAxes)
        ax_h.set_xlabel("reference force (N)")
        ax_h.set_ylabel("error (N)")
        figs = entry.get("figures", {})
        lines = [f"ch{ch}: {entry['verdict'].upper()}"]
        for name, v in figs.items():
            if v.get("pct_reading") is not None or v.get("pct_fs") is not None:
                pr = "-" if v.get("pct_reading") is None else f"{v['pct_reading']:.2f}"
                pf = "-" if v.get("pct_fs") is None else f"{v['pct_fs']:.2f}"
                lines.append(f"{name[:6]} {pr}%R {pf}%FS")
        ax_h.text(
            1.02,
            1.0,
            "\n".join(lines),
            transform=ax_h.transAxes,
            va="top",
            fontsize=7,
            family="monospace",
            color="darkgreen" if entry["verdict"] == "pass" else "darkred",
        )
        if loops:
            ax_h.legend(fontsize=7)
    fig.tight_layout(rect=(0, 0, 0.9, 0.97))
    out = Path(out)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
