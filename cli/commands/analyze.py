"""``knotsense analyze FILE``: releases, rocking, circling, overpressure and contacts."""

from __future__ import annotations

import argparse

from knotsense.cli.common import add_analysis_options, add_json_flag, print_json

COMMAND = "analyze"
HELP = "detect releases, rocking (and its axis), circling, overpressure, contacts in a session"


def configure(parser: argparse.ArgumentParser) -> None:
    add_analysis_options(parser)
    add_json_flag(parser)


def _text(result: dict, path: str) -> str:
    s = result["summary"]
    rel, rock, over, q = s["releases"], s["rocking"], s["overpressure"], s["signal_quality"]
    lines = [
        f"{path}: {s['duration_s']:.1f} s, {q['samples']} samples at ~{q['sample_rate_hz']:g} Hz",
        f"  contacts      {s['contacts']['count']} ({s['contacts']['time_s']:.1f} s on the knob)",
        f"  releases      {rel['count']} at >= {rel['threshold_n']:g} N held >= {rel['hold_s']:g} s"
        f" (gap {rel['gap_s']:g} s); {s['time_in_release_band_s']:.1f} s in the release band",
    ]
    for e in result["events"]:
        if e["kind"] == "release":
            lines.append(
                f"    {e['start']:9.2f} - {e['end']:9.2f} s  hold {e['duration']:6.1f} s"
                f"  mean {e['mean_force']:6.1f} N"
            )
    lines.append(f"  rocking       {rock['count']} episode(s), {rock['time_s']:.1f} s")
    for e in result["events"]:
        if e["kind"] == "rocking":
            axis = (
                f"  axis {e['axis']:5.1f} deg, {e['extent']:.1f} mm"
                if e.get("axis") is not None
                else ""
            )
            lines.append(
                f"    {e['start']:9.2f} - {e['end']:9.2f} s  {e['frequency']:.2f} Hz"
                f"  {e['cycles']} cycles  {e['peak_to_peak']:.1f} N p-p{axis}"
            )
    circ = s.get("circling", {"count": 0, "time_s": 0.0})
    lines.append(f"  circling      {circ['count']} episode(s), {circ['time_s']:.1f} s")
    for e in result["events"]:
        if e["kind"] == "circling":
            lines.append(
                f"    {e['start']:9.2f} - {e['end']:9.2f} s  {e['turns']:.1f} turns"
                f" {e['direction']}  radius {e['radius']:.1f} mm  {e['rate']:.2f} turns/s"
            )
    if over["max_force_n"] is None:
        lines.append("  overpressure  not checked (no --max-force)")
    else:
        lines.append(
            f"  overpressure  {over['count']} above {over['max_force_n']:g} N, "
            f"{over['time_s']:.1f} s"
        )
    lines.append(
        f"  quality       {q['gaps']} gap(s) ({q['gap_time_s']:.2f} s), "
        f"{q['spikes_removed']} spike(s) removed, {q['nan_samples']} missing, "
        f"{q['saturated_samples']} saturated"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from knotsense.cli.common import analysis_inputs
    from knotsense.dsp.pipeline import analyze

    table, x, config = analysis_inputs(args)
    result = analyze(table.t, x, config).to_dict()
    if args.json:
        print_json(result)
    else:
        print(_text(result, str(args.file)))
    return 0
