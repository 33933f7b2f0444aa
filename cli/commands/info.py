"""``knotsense info URL|FILE``: a device's identity and state, or what a recording holds.

Given a device URL it asks the device (identity, stream configuration, status,
calibration id, ping). Given a recording (``.ksr``, recognised by its magic
bytes) or a CSV table it opens nothing and prints what the file holds; see
:mod:`knotsense.cli.describe`. Any other path is refused in one line.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from knotsense.cli.common import add_json_flag, print_json, run_async
from knotsense.cli.targets import DEVICE_EXAMPLES, FILE_SUFFIXES, Kind, kind_of
from knotsense.errors import ConfigurationError

COMMAND = "info"
HELP = "show a device's identity, stream, status and calibration, or what a recording holds"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "url",
        metavar="URL|FILE",
        help="a device URL (/dev/ttyACM0, ble://..., sim://?..., replay://FILE.ksr) to ask the "
        "device, or a recording (.ksr) or CSV table to show what it holds",
    )
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per device command")
    parser.add_argument(
        "--salvage",
        action="store_true",
        help="recordings: skip corrupt regions instead of failing",
    )
    add_json_flag(parser)


async def _query(url: str, timeout: float) -> dict[str, Any]:
    from knotsense.errors import CommandError
    from knotsense.host.device import AsyncDevice

    device = await AsyncDevice.connect(url, command_timeout=timeout, reconnect=None)
    async with device:
        info = await device.get_info()
        config = await device.get_stream_config()
        try:
            status = await device.get_status()
        except CommandError:  # a replay has no live status
            status = None
        rtt = await device.ping(b"knotsense")
        return {"info": info, "stream_config": config, "status": status, "ping_s": rtt}


def _file(args: argparse.Namespace, kind: Any) -> int:
    """``info`` on a recording or a table: what the file holds."""
    from knotsense.cli import describe

    if kind is Kind.TABLE:
        result = describe.table_info(Path(args.url))
        text = describe.table_text
    else:
        result = describe.recording_info(Path(args.url), salvage=args.salvage)
        text = describe.recording_text
    if args.json:
        print_json(result)
    else:
        print(text(result))
    return 0


def run(args: argparse.Namespace) -> int:
    from knotsense.host.recording import SUFFIX, jsonable

    kind = kind_of(args.url)
    if kind in (Kind.RECORDING, Kind.TABLE) or (
        kind is Kind.FILE and args.url.lower().endswith(SUFFIX)
    ):  # a .ksr without the magic: the reader says what is wrong with it
        return _file(args, kind)
    if kind in (Kind.FILE, Kind.DIRECTORY) or (
        kind is Kind.MISSING and Path(args.url).suffix.lower() in FILE_SUFFIXES
    ):
        what = {
            Kind.MISSING: "does not exist",
            Kind.DIRECTORY: "is a directory",
            Kind.FILE: "is neither a recording nor a CSV table",
        }[kind]
        raise ConfigurationError(
            f"info expects a device URL ({DEVICE_EXAMPLES}), a recording (.ksr) or a CSV "
            f"table, but {args.url!r} {what}"
        )
    result = run_async(_query(args.url, args.timeout))
    if args.json:
        print_json(jsonable(result))
        return 0
    info, config, status = result["info"], result["stream_config"], result["status"]
    kinds = ", ".join(
        f"ch{i} {getattr(ch.kind, 'name', ch.kind)} @({ch.x_mm:g},{ch.y_mm:g}) mm"
        for i, ch in enumerate(info.channels)
    )
    print(f"device       {info.model or 'KnotSense'} serial {info.serial_number}")
    print(
        f"firmware     {info.firmware}  hardware rev {info.hw_revision}  "
        f"protocol {info.protocol_major}.{info.protocol_minor}"
    )
    print(f"channels     {info.channel_count}: {kinds}")
    print(
        f"adc          {info.adc_bits} bit, units {getattr(info.units, 'name', info.units)}; "
        f"rates {', '.join(str(r) for r in info.sample_rates)} Hz"
    )
    print(
        f"calibration  {'none' if not info.calibration_id else f'id {info.calibration_id:#010x}'}"
    )
    print(
        f"stream       {config.rate_hz} Hz, mask {config.channel_mask:#04x}, "
        f"{getattr(config.encoding, 'name', config.encoding)}, "
        f"{config.samples_per_block} samples/block, {'on' if config.streaming else 'off'}"
    )
    if status is None:
        print("status       not available")
    else:
        print(
            f"status       battery {status.battery_mv} mV ({status.battery_pct} %), "
            f"{status.temperature_c:.1f} degC, up {status.uptime_s} s, "
            f"dropped {status.frames_dropped}, rx crc errors {status.rx_crc_errors}"
        )
    print(f"ping         {result['ping_s'] * 1000:.1f} ms")
    return 0
