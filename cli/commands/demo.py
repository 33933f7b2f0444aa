"""``knotsense demo``: the main job -- a simulated massage session logged, analysed and plotted."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from knotsense.cli.common import add_json_flag, print_json, run_async

COMMAND = "demo"
HELP = "simulate a massage session, record it, then export, analyse and plot it into one folder"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("knotsense-demo"),
        metavar="DIR",
        help="folder for the results (default knotsense-demo)",
    )
    parser.add_argument(
        "--scenario",
        default="back_session",
        help="simulator scenario (default back_session; see knotsense sim --list-scenarios)",
    )
    parser.add_argument("--seed", type=int, default=3, help="simulator seed (default 3)")
    parser.add_argument("--rate", type=int, default=250, help="sample rate, Hz (default 250)")
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from knotsense.cli.targets import output_folder
    from knotsense.host.demo import run_demo
    from knotsense.host.live import LineView

    output_folder(str(args.output), "-o")

    view = None if args.json else (lambda state, device: LineView(state, every_s=60.0))
    if not args.json:
        print(
            f"simulating {args.scenario} (seed {args.seed}) as fast as the simulator runs ...",
            flush=True,
        )
    result = run_demo(args.output, args.scenario, args.seed, args.rate, view)
    result = run_async(result)
    files = {
        "folder": result.folder,
        "recording": result.recording,
        "csv": result.csv,
        "summary": result.summary,
        "plot": result.plot,
        "truth": result.truth,
    }
    if args.json:
        # "summary" is the analysis summary; the summary file is "summary_file".
        paths = {("summary_file" if k == "summary" else k): str(v) for k, v in files.items()}
        print_json(
            {**paths, "seconds": round(result.seconds, 1), "summary": result.analysis["summary"]}
        )
        return 0
    s = result.analysis["summary"]
    print(
        f"\ndone in {result.seconds:.1f} s: {s['duration_s']:.0f} s of session, "
        f"{s['releases']['count']} release(s), {s['rocking']['count']} rocking episode(s), "
        f"{s['contacts']['count']} contact(s)",
        file=sys.stdout,
    )
    for name, path in files.items():
        print(f"  {name:<10} {path}")
    return 0
