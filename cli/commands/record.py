"""``knotsense record URL -o FILE``: log a session, with a live view, losslessly."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from knotsense.cli.common import (
    add_device_argument,
    add_json_flag,
    channel_list,
    positive_float,
    print_json,
    run_async,
)

COMMAND = "record"
HELP = "record a session from a device (live view on a terminal; Ctrl-C stops cleanly)"


def configure(parser: argparse.ArgumentParser) -> None:
    add_device_argument(parser)
    parser.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="the recording to write (.ksr)"
    )
    parser.add_argument(
        "--duration",
        type=positive_float,
        metavar="S",
        help="stop after this many seconds of session time (default: Ctrl-C)",
    )
    parser.add_argument("--rate", type=int, metavar="HZ", help="sample rate (default: device's)")
    parser.add_argument(
        "--channels", type=channel_list, metavar="0,1,..", help="channels to stream (default: all)"
    )
    parser.add_argument(
        "--calibration",
        metavar="JSON",
        help="calibration to apply (default: the one stored on the device)",
    )
    parser.add_argument(
        "--release-threshold",
        type=positive_float,
        metavar="N",
        help="release level in N (default: the device's stored threshold)",
    )
    parser.add_argument(
        "--hold",
        type=positive_float,
        default=60.0,
        metavar="S",
        help="release hold time (default 60)",
    )
    parser.add_argument(
        "--max-force", type=positive_float, metavar="N", help="overpressure above this force"
    )
    lab = parser.add_argument_group("Lab Streaming Layer (needs knotsense[lsl]; docs/lsl.md)")
    lab.add_argument(
        "--lsl",
        action="store_true",
        help="publish LSL outlets while recording: Force (N or counts) and Markers (JSON events)",
    )
    lab.add_argument("--lsl-name", default="", metavar="NAME", help="Force stream name")
    lab.add_argument(
        "--lsl-source-id",
        default="",
        metavar="ID",
        help="Force stream source id (default knotsense:SERIAL:force)",
    )
    lab.add_argument(
        "--lsl-wait",
        type=float,
        default=0.0,
        metavar="S",
        help="wait up to S seconds for an inlet (LabRecorder) before streaming (default 0)",
    )
    lab.add_argument(
        "--lsl-linger",
        type=float,
        default=1.0,
        metavar="S",
        help="at the end, keep the outlets up to S seconds for a connected inlet (default 1)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing FILE")
    parser.add_argument(
        "--plain", action="store_true", help="plain status lines even on a terminal"
    )
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from knotsense.cli.targets import device_url, output_file
    from knotsense.dsp.pipeline import PipelineConfig
    from knotsense.host.record import load_calibration_record, record_session

    device_url(args.url)
    output_file(args.output, "-o", "a file name for the recording (.ksr)")

    config = PipelineConfig(
        release_threshold=args.release_threshold, hold=args.hold, max_force=args.max_force
    )
    record = None if args.calibration is None else load_calibration_record(args.calibration)
    lsl = None
    if args.lsl:
        from knotsense.host.lsl import LslOptions, import_pylsl

        import_pylsl()  # a missing extra fails before the device is touched
        lsl = LslOptions(
            name=args.lsl_name,
            source_id=args.lsl_source_id,
            wait_s=args.lsl_wait,
            linger_s=args.lsl_linger,
        )
    elif args.lsl_name or args.lsl_source_id or args.lsl_wait or args.lsl_linger != 1.0:
        from knotsense.errors import ConfigurationError

        raise ConfigurationError(
            "--lsl-name, --lsl-source-id, --lsl-wait and --lsl-linger need --lsl"
        )
    result = run_async(
        record_session(
            args.url,
            args.output,
            duration_s=args.duration,
            rate_hz=args.rate,
            channels=args.channels,
            pipeline_config=config,
            calibration_record=record,
            overwrite=args.overwrite,
            view_factory=_view_factory(args),
            lsl=lsl,
        )
    )
    if args.json:
        print_json(
            {
                "file": str(result.path),
                "duration_s": round(result.duration_s, 3),
                "samples": result.samples,
                "stopped_by": result.stopped_by,
                "stats": result.stats,
                "summary": result.summary,
            }
        )
    else:
        print(summary_text(result), file=sys.stdout if not args.json else sys.stderr)
    return 0


def _view_factory(args: argparse.Namespace) -> Any:
    from knotsense.host.live import LineView, RichView

    if args.json:
        return None
    if sys.stdout.isatty() and not args.plain:
        return lambda state, device: RichView(state, lambda: device.stats, f"recording {args.url}")
    return lambda state, device: LineView(state)


def summary_text(result: Any) -> str:
    """The end-of-session summary a person reads."""
    s, st = result.summary, result.stats
    rel, rock = s["releases"], s["rocking"]
    lines = [
        f"recorded {result.path}: {result.duration_s:.1f} s, {result.samples} samples "
        f"({result.stopped_by})",
        f"  link      frames {st['frames']}, gaps {st['gaps']} ({st['samples_lost']} samples), "
        f"crc errors {st['crc_errors']}, reconnects {st['reconnects']}, reboots {st['reboots']}",
        f"  contacts  {s['contacts']['count']}",
    ]
    if rel.get("threshold_n") is not None:
        lines.append(
            f"  releases  {rel['count']} at >= {rel['threshold_n']:g} N, "
            f"{s['time_in_release_band_s']:.1f} s in the release band"
        )
    else:
        lines.append("  releases  not detected (no calibration or release threshold)")
    lines.append(f"  rocking   {rock['count']} episode(s), {rock['time_s']:.1f} s")
    return "\n".join(lines)
