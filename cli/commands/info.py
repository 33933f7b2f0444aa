"""``knotsense info URL``: who the device is, its stream, status and calibration."""

from __future__ import annotations

import argparse
from typing import Any

from knotsense.cli.common import add_device_argument, add_json_flag, print_json, run_async

COMMAND = "info"
HELP = "show a device's identity, stream configuration, status and calibration id"


def configure(parser: argparse.ArgumentParser) -> None:
    add_device_argument(parser)
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per command")
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


def run(args: argparse.Namespace) -> int:
    from knotsense.host.recording import jsonable

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
