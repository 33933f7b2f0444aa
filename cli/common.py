"""Argument and output helpers shared by all subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from knotsense.errors import ConfigurationError


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """``--json``: print exactly one JSON object on stdout instead of text."""
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def print_json(obj: Any) -> None:
    """Print one JSON object on one line of stdout."""
    sys.stdout.write(json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n")


def existing_file(text: str) -> Path:
    """An argparse ``type=`` for a file that must exist and be a regular file."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: not a regular file")
    return path


def positive_float(text: str) -> float:
    """An argparse ``type=`` for a strictly positive number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def require(condition: bool, message: str) -> None:
    """Raise a one-line :class:`ConfigurationError` unless *condition* holds."""
    if not condition:
        raise ConfigurationError(message)


# --- analysis options shared by `analyze` and `plot` (dsp imported lazily) ---


def positive_int(text: str) -> int:
    """An argparse ``type=`` for a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text!r}")
    return value


def position_list(text: str) -> tuple[tuple[float, float], ...]:
    """An argparse ``type=`` for channel positions in mm: ``18,0;0,18;-18,0;0,-18``."""
    try:
        pairs = [part.split(",") for part in text.split(";") if part.strip()]
        positions = tuple((float(a), float(b)) for a, b in pairs)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"positions must look like 18,0;0,18;-18,0 (mm), not {text!r}"
        ) from None
    if not positions:
        raise argparse.ArgumentTypeError(f"positions must look like 18,0;0,18 (mm), not {text!r}")
    return positions


def add_detector_options(parser: argparse.ArgumentParser) -> None:
    """Detector options (DESIGN.md defaults) for every command that analyses sessions.

    Release threshold, hold, gap and maximum force left out come from the
    recording (what ``knotsense record`` analysed it with), else the defaults.
    """
    group = parser.add_argument_group("detection (DESIGN.md defaults)")
    group.add_argument(
        "--release-threshold",
        type=positive_float,
        metavar="N",
        help="release level in N (default: the recording's; required for a CSV)",
    )
    group.add_argument(
        "--hold",
        type=positive_float,
        metavar="S",
        help="seconds a release must last (default: the recording's, else 60)",
    )
    group.add_argument(
        "--gap",
        type=float,
        metavar="S",
        help="dips up to this long do not end a release (default: the recording's, else 2)",
    )
    group.add_argument(
        "--max-force",
        type=positive_float,
        metavar="N",
        help="the user's maximum: above it for over 1 s is overpressure "
        "(default: the recording's, else not checked)",
    )
    group.add_argument(
        "--contact-floor",
        type=positive_float,
        default=5.0,
        metavar="N",
        help="contact above this total force (default 5)",
    )
    group.add_argument(
        "--rocking-min-freq",
        type=positive_float,
        default=0.4,
        metavar="HZ",
        help="lowest rocking frequency (default 0.4)",
    )
    group.add_argument(
        "--rocking-max-freq",
        type=positive_float,
        default=3.0,
        metavar="HZ",
        help="highest rocking frequency (default 3)",
    )
    group.add_argument(
        "--rocking-min-p2p",
        type=float,
        default=8.0,
        metavar="N",
        help="minimum rocking peak-to-peak in N (default 8)",
    )
    group.add_argument(
        "--rocking-rel-p2p",
        type=float,
        default=0.15,
        metavar="FRAC",
        help="minimum rocking peak-to-peak as a fraction of the mean force (default 0.15)",
    )
    group.add_argument(
        "--rocking-cycles",
        type=int,
        default=3,
        metavar="N",
        help="consecutive cycles that make rocking (default 3)",
    )
    group.add_argument(
        "--positions",
        type=position_list,
        metavar="X,Y;X,Y...",
        help="channel positions in mm, one pair per channel: rocking axis and circling "
        "(default: the recording's device info; a CSV has none)",
    )


def add_analysis_options(parser: argparse.ArgumentParser) -> None:
    """A session file plus the detector options, for commands that analyse one file."""
    parser.add_argument(
        "file",
        metavar="FILE",
        help="a recording (.ksr), a CSV table (t, forces in N) or an XDF file with a "
        "knotsense Force stream (.xdf, e.g. from LabRecorder; docs/lsl.md)",
    )
    add_detector_options(parser)
    parser.add_argument(
        "--calibration",
        type=existing_file,
        metavar="JSON",
        help="per-channel calibration (Calibration.to_dict JSON): use the raw* "
        "columns instead of the force columns",
    )


def analysis_inputs(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """Load ``args.file`` and build the pipeline config from the options.

    Returns ``(table, x, config)``: *x* is what the pipeline gets (the forces,
    or the raw counts when ``--calibration`` puts a calibration in *config*).
    """
    from knotsense.cli.targets import input_file
    from knotsense.dsp.calibration_models import Calibration
    from knotsense.errors import CalibrationError, SessionFileError
    from knotsense.host.analysis_options import AnalysisOptions
    from knotsense.host.tables import load_force_table

    args.file = input_file(
        args.file, "a recording (.ksr), a CSV table or an XDF file (.xdf)", session=True
    )
    options = AnalysisOptions.from_namespace(args)
    table = load_force_table(args.file)
    calibration = None
    x = table.forces
    if args.calibration is not None:
        try:
            calibration = Calibration.from_dict(json.loads(Path(args.calibration).read_text()))
        except (OSError, ValueError) as exc:
            raise CalibrationError(f"{args.calibration}: cannot read calibration: {exc}") from None
        if table.raw is None:
            raise SessionFileError(
                f"{args.file}: a calibration was given but there are no raw* columns"
            )
        x = table.raw
    elif table.forces.shape[1] == 0:
        raise SessionFileError(f"{args.file}: only raw* columns; give --calibration to use them")
    config = options.config(table.meta, calibration, source=str(args.file))
    return table, x, config


# --- device commands ---------------------------------------------------------


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """The positional device URL (DESIGN.md "Device URLs")."""
    parser.add_argument(
        "url",
        metavar="URL",
        help="device URL: /dev/ttyACM0, serial:///dev/ttyACM0?baud=921600, "
        "ble://AA:BB:CC:DD:EE:FF, ble://?name=KnotSense-12AB, sim://?scenario=NAME&seed=N, "
        "sim+pty://?..., sim+ble://?..., replay://FILE.ksr",
    )


def run_async(coro: Any) -> Any:
    """Run a coroutine to completion on a fresh event loop (one per command)."""
    import asyncio

    return asyncio.run(coro)


def channel_list(text: str) -> list[int]:
    """An argparse ``type=`` for ``0,1,3``."""
    try:
        channels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"channels must be like 0,1,3, not {text!r}") from None
    if not channels or min(channels) < 0:
        raise argparse.ArgumentTypeError(f"channels must be like 0,1,3, not {text!r}")
    return channels
