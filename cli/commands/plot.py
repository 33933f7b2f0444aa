"""``knotsense plot FILE -o OUT.png``: a session at a glance."""

from __future__ import annotations

import argparse
from pathlib import Path

from knotsense.cli.common import add_analysis_options

COMMAND = "plot"
HELP = "plot forces, the release band, release/rocking episodes and gaps of a session file"


def configure(parser: argparse.ArgumentParser) -> None:
    add_analysis_options(parser)
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        metavar="OUT.png",
        help="image to write (PNG, SVG or PDF by its suffix)",
    )
    parser.add_argument("--title", default="", help="title (default: the file name)")


def run(args: argparse.Namespace) -> int:
    from knotsense.cli.common import analysis_inputs
    from knotsense.dsp.pipeline import analyze
    from knotsense.errors import ConfigurationError
    from knotsense.host.plotting import plot_analysis

    out = args.output
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise ConfigurationError(f"{out}: output must end in .png, .svg or .pdf")
    if not out.parent.is_dir():
        raise ConfigurationError(f"{out}: directory {out.parent} does not exist")
    table, x, config = analysis_inputs(args)
    analysis = analyze(table.t, x, config)
    names = table.raw_names if config.calibration is not None else table.names
    plot_analysis(out, table.t, analysis, config, names, args.title or Path(args.file).name)
    print(f"wrote {out}")
    return 0
