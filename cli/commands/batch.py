"""``knotsense batch SOURCES... -o OUT/``: many sessions into a Parquet dataset, on Dask."""

from __future__ import annotations

import argparse
import sys
from typing import Any

COMMAND = "batch"
HELP = "analyse many recordings on a Dask cluster into a Parquet dataset (sessions, events)"


def configure(parser: argparse.ArgumentParser) -> None:
    from knotsense.cli.common import add_detector_options, add_json_flag, positive_int

    parser.add_argument(
        "sources", nargs="+", metavar="SOURCE", help="recordings: files, folders, globs"
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="the dataset folder (sessions/, events/)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="an existing Dask scheduler (tcp://HOST:8786); default: a local "
        "cluster, one worker process per core",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="worker processes of the local cluster (default: one per core)",
    )
    parser.add_argument(
        "--force", action="store_true", help="analyse sessions already in the dataset again"
    )
    add_detector_options(parser)
    add_json_flag(parser)


def _progress(as_json: bool) -> tuple[Any, Any]:
    if as_json:
        return None, (lambda: None)
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        bar = Progress(
            "sessions", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True
        )
        bar.start()
        task = bar.add_task("batch", total=None)

        def hook(done: int, total: int, status: dict[str, Any]) -> None:
            bar.update(task, completed=done, total=total)

        return hook, bar.stop

    def plain(done: int, total: int, status: dict[str, Any]) -> None:
        what = f"failed: {status['error']}" if "error" in status else "ok"
        print(f"[{done}/{total}] {status['source']}: {what}", file=sys.stderr, flush=True)

    return plain, (lambda: None)


def run(args: argparse.Namespace) -> int:
    from knotsense.cli.common import print_json
    from knotsense.cli.targets import output_folder
    from knotsense.host.analysis_options import AnalysisOptions
    from knotsense.study.batch import run_batch

    args.output = output_folder(args.output, "-o")
    hook, close = _progress(args.json)
    try:
        result = run_batch(
            args.sources,
            args.output,
            options=AnalysisOptions.from_namespace(args),
            scheduler=args.scheduler,
            workers=args.workers,
            force=args.force,
            progress=hook,
        )
    finally:
        close()
    if args.json:
        print_json(result.to_dict())
    else:
        print(
            f"{args.output}: {len(result.done)} session(s) analysed, "
            f"{len(result.skipped)} already there, {len(result.failed)} failed, "
            f"{result.events} event(s) written"
        )
    for failure in result.failed:
        print(f"knotsense batch: {failure.source}: {failure.reason}", file=sys.stderr)
    return 1 if result.failed else 0
