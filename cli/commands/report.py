"""``knotsense report REC|OUT/ -o report.html``: a self-contained HTML page."""

from __future__ import annotations

import argparse
from pathlib import Path

COMMAND = "report"
HELP = "write a self-contained HTML report of a session, or of a batch dataset folder"


def configure(parser: argparse.ArgumentParser) -> None:
    from knotsense.cli.common import add_detector_options

    parser.add_argument(
        "source",
        metavar="REC|OUT",
        help="a session file (.ksr, .csv, .xdf) or a `knotsense batch` folder",
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="HTML", help="the page to write"
    )
    add_detector_options(parser)


def run(args: argparse.Namespace) -> int:
    from knotsense.cli.common import require
    from knotsense.cli.targets import Kind, input_file, kind_of, output_file
    from knotsense.host.analysis_options import AnalysisOptions

    output = output_file(args.output, "-o", "an HTML file to write")
    require(
        output.suffix.lower() in (".html", ".htm"),
        f"{output}: the report is an HTML page: name it .html",
    )
    expected = "a session file (.ksr, .csv, .xdf) or a `knotsense batch` folder"
    if kind_of(args.source) is Kind.MISSING:
        require(False, f"{args.source}: no such file or folder (expected {expected})")
    source = (
        Path(args.source)
        if kind_of(args.source) is Kind.DIRECTORY
        else input_file(args.source, expected, session=True)
    )
    if source.is_dir():
        from knotsense.study.report_study import write_study_report

        write_study_report(source, output)
    else:
        from knotsense.study.report_session import write_session_report

        write_session_report(source, output, AnalysisOptions.from_namespace(args))
    print(f"wrote {output}")
    return 0
