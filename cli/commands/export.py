"""``knotsense export SESSION --csv OUT.csv [--parquet OUT.parquet] [--xdf OUT.xdf]``.

Examples::

    knotsense export session.ksr --csv session.csv
    knotsense export session.ksr --parquet session.parquet --json
    knotsense export crashed.ksr --csv out.csv --salvage     # skip corrupt regions
    knotsense export session.ksr --xdf session.xdf --release-threshold 60


Columns: ``t`` (s from session start, host-mapped timeline), ``f0..`` (N, only
with a calibration), ``raw0..`` (counts); missing samples are left out.
XDF (docs/lsl.md): a Force stream (the same channels plus ``total``) and a
Markers stream with the detector events, link marks and gaps, as ``knotsense
record --lsl`` publishes them live.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from knotsense.cli.common import add_json_flag, positive_float, print_json, require

COMMAND = "export"
HELP = "export a recorded session (.ksr) to CSV, Parquet and/or XDF"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", metavar="SESSION", help="recording (.ksr)")
    parser.add_argument("--csv", type=Path, metavar="OUT.csv", help="write a CSV table")
    parser.add_argument(
        "--parquet",
        type=Path,
        metavar="OUT.parquet",
        help="write a Parquet table (needs pyarrow); adds device_time_us and epoch",
    )
    parser.add_argument(
        "--xdf",
        type=Path,
        metavar="OUT.xdf",
        help="write an XDF file (Force + Markers streams, as LabRecorder would)",
    )
    marks = parser.add_argument_group("XDF markers (detector settings; default: the recording's)")
    marks.add_argument(
        "--release-threshold",
        type=positive_float,
        metavar="N",
        help="release level in N (default: the recording's; none: no release markers)",
    )
    marks.add_argument(
        "--hold",
        type=positive_float,
        metavar="S",
        help="release hold (default: the recording's, else 60)",
    )
    marks.add_argument(
        "--max-force",
        type=positive_float,
        metavar="N",
        help="overpressure above this force (default: the recording's, else not checked)",
    )
    parser.add_argument(
        "--salvage",
        action="store_true",
        help="skip corrupt regions inside the recording instead of failing",
    )
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from knotsense.cli.targets import Kind, input_file
    from knotsense.host.export import export_csv, export_parquet
    from knotsense.host.session import load_session

    # a regular file of another kind goes on: the reader says what is wrong with it
    path = input_file(
        args.session, "a recording (.ksr)", frozenset({Kind.RECORDING, Kind.FILE}), session=True
    )

    require(
        args.csv is not None or args.parquet is not None or args.xdf is not None,
        "nothing to do: give --csv OUT.csv, --parquet OUT.parquet and/or --xdf OUT.xdf",
    )
    session = load_session(path, salvage=args.salvage)
    written: dict[str, str] = {}
    if args.csv is not None:
        export_csv(session, args.csv)
        written["csv"] = str(args.csv)
    if args.parquet is not None:
        export_parquet(session, args.parquet)
        written["parquet"] = str(args.parquet)
    if args.xdf is not None:
        from knotsense.dsp.pipeline import PipelineConfig
        from knotsense.host.analysis_options import session_parameter
        from knotsense.host.xdf_session import export_xdf

        def pick(name: str, default: float | None) -> float | None:
            given = getattr(args, name, None)
            if given is not None:
                return given
            recorded = session_parameter(session.metadata, name)
            return default if recorded is None else float(recorded)

        config = PipelineConfig(
            release_threshold=pick("release_threshold", None),
            hold=pick("hold", 60.0),  # type: ignore[arg-type]
            gap=pick("gap", 2.0),  # type: ignore[arg-type]
            max_force=pick("max_force", None),
        )
        export_xdf(session, args.xdf, config)
        written["xdf"] = str(args.xdf)
    notes = []
    damage = session.damage
    if damage.torn_tail_offset is not None:
        notes.append(
            f"torn tail of {damage.torn_tail_bytes} bytes at offset "
            f"{damage.torn_tail_offset} ignored (recording was not closed cleanly)"
        )
    if damage.skipped:
        notes.append(f"salvage skipped {damage.skipped_bytes} corrupt bytes")
    if session.calibration_error:
        notes.append(f"forces not exported: {session.calibration_error}")
    elif session.forces is None:
        notes.append("no calibration in the recording: raw counts only")
    if args.json:
        print_json({"written": written, "notes": notes, "session": session.summary()})
        return 0
    for note in notes:
        print(f"knotsense export: note: {note}", file=sys.stderr)
    for path in written.values():
        print(
            f"wrote {path}: {session.n_samples} samples x {session.n_channels} channels, "
            f"{session.duration_s:.1f} s, {len(session.gaps)} gap(s), "
            f"{session.samples_lost} sample(s) lost"
        )
    return 0
