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
        type=Path,
        metavar="REC|OUT",
        help="a session file (.ksr, .csv, .xdf) or a `knotsense batch` folder",
    )
    parser.add_argument(
        "-o", "--output", required=True, type=Path, metavar="HTML", help="the page to write"
    )
    add_detector_options(parser)


def run(args: argparse.Namespace) -> int:
    from knotsense.cli.common import require
    from knotsense.host.analysis_options import AnalysisOptions

    source: Path = args.source
    require(source.exists(), f"{source}: no such file or folder")
    require(
        args.output.suffix.lower() in (".html", ".htm"),
        f"{args.output}: the report is an HTML page: name it .html",
    )
    if source.is_dir():
        from knotsense.study.report_study import write_study_report

        write_study_report(source, args.output)
    else:
        from knotsense.study.report_session import write_session_report

        write_session_report(source, args.output, AnalysisOptions.from_namespace(args))
    print(f"wrote {args.output}")
    return 0
