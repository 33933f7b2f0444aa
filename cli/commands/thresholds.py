"""``knotsense thresholds URL --release N [--max N]``: program the device's detector, then verify.

The device's stored calibration record turns the release band (N) into raw
per-channel thresholds (knotsense.calibration.thresholds). Verification loads
the device at each threshold -5 % and +5 % and checks its events fire only
above: on a simulator this command builds a scripted stand (firmware_sim.stand),
hands it to calibration.thresholds to script the loads, and runs it on the same
unit (same serial and NVM file); on hardware the operator is
prompted (``--verify manual``), or ``--verify none`` skips it.
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from knotsense.cli.common import add_device_argument, add_json_flag, positive_float, print_json
from knotsense.errors import CalibrationError, ConfigurationError

COMMAND = "thresholds"
HELP = "program the device's release (and overpressure) thresholds from its calibration, and verify"


def configure(parser: argparse.ArgumentParser) -> None:
    add_device_argument(parser)
    parser.add_argument(
        "--release", type=positive_float, required=True, metavar="N", help="release threshold, N"
    )
    parser.add_argument(
        "--release-off",
        type=positive_float,
        metavar="N",
        help="release ends below this (default 0.9 x release)",
    )
    parser.add_argument(
        "--max", type=positive_float, metavar="N", help="overpressure above this, N"
    )
    parser.add_argument(
        "--hold",
        type=int,
        default=60,
        metavar="S",
        help="RELEASE_HOLD_REACHED after S s (default 60)",
    )
    parser.add_argument(
        "--debounce-ms", type=int, default=500, metavar="MS", help="debounce (default 500)"
    )
    parser.add_argument(
        "--verify",
        default="auto",
        choices=("auto", "stand", "manual", "none"),
        help="how to verify (auto: stand on a simulator, manual otherwise)",
    )
    parser.add_argument(
        "--force", action="store_true", help="use a stored record made for another serial"
    )
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from knotsense.cli.targets import device_url

    device_url(args.url)
    result = asyncio.run(_go(args))
    if args.json:
        print_json(result)
    else:
        t = result["thresholds"]
        print(
            f"thresholds written to {result['serial']}: release_on {t['release_on']} mN, "
            f"release_off {t['release_off']} mN, overpressure_on {t['overpressure_on']}"
        )
        for c in result["checks"]:
            print(
                f"  {c['check']}: {'fired' if c['fired'] else 'silent'} -> "
                f"{'ok' if c['ok'] else 'FAIL'}"
            )
    if not all(c["ok"] for c in result["checks"]):
        bad = [c["check"] for c in result["checks"] if not c["ok"]]
        raise CalibrationError(f"threshold verification failed: {'; '.join(bad)}")
    return 0


def _is_sim(url: str) -> bool:
    return url.split("://", 1)[0].lower() in ("sim", "sim+pty", "sim+ble")


async def _go(args: argparse.Namespace) -> dict[str, Any]:
    from knotsense.calibration import thresholds as th
    from knotsense.calibration.record import parse_record
    from knotsense.host.device import AsyncDevice

    device = await AsyncDevice.connect(args.url, reconnect=None, command_timeout=2.0)
    async with device:
        info = await device.get_info()
        cal_id, blob = await device.read_calibration()
        if not cal_id:
            raise CalibrationError(
                f"{info.serial_number} holds no calibration: run knotsense calibrate first"
            )
        record = parse_record(
            blob, serial=info.serial_number, force=args.force, where="the device's calibration"
        )
        thresholds = th.program_thresholds(
            record,
            args.release,
            release_off_n=args.release_off,
            max_n=args.max,
            hold_s=args.hold,
            debounce_ms=args.debounce_ms,
        )
        await device.write_thresholds(thresholds)
        checks = th.verification_checks(args.release, args.max)
        mode = args.verify
        if mode == "auto":
            mode = "stand" if _is_sim(args.url) else "manual"
        results: list[Any] = []
        if mode == "manual":
            results = await th.verify_manual(device, checks, input)
    if mode == "stand":
        results = await _verify_stand(args, info, thresholds, checks)
    return {
        "serial": info.serial_number,
        "thresholds": {
            "release_on": thresholds.release_on,
            "release_off": thresholds.release_off,
            "overpressure_on": thresholds.overpressure_on,
            "channels": [[c.zero, c.weight_q16] for c in thresholds.channels],
        },
        "checks": [{"check": r.check.label, "fired": r.fired, "ok": r.ok} for r in results],
    }


async def _verify_stand(
    args: argparse.Namespace, info: Any, thresholds: Any, checks: list[Any]
) -> list[Any]:
    """The same simulated unit (serial, NVM file) under a scripted stand."""
    from knotsense.calibration import thresholds as th
    from knotsense.firmware_sim.stand import SimStand
    from knotsense.host.device import AsyncDevice

    if not _is_sim(args.url):
        raise ConfigurationError("--verify stand needs a simulator URL")
    query = dict(parse_qsl(urlsplit(args.url).query.replace("+", "%2B")))
    kind = info.channels[0].kind if info.channels else None
    sensor = "fsr" if getattr(kind, "name", "") == "FSR" else "load_cell"
    stand = SimStand(sensor=sensor, channels=info.channel_count)
    th.script_stand(stand, checks)
    url = stand.url(seed=int(query.get("seed", 0)), serial=info.serial_number, nvm=query.get("nvm"))
    device = await AsyncDevice.connect(url, reconnect=None, command_timeout=2.0)
    async with device:
        await device.get_info()
        if await device.read_thresholds() != thresholds:
            await device.write_thresholds(
                thresholds
            )  # no NVM file: the same unit, programmed again
        return await th.verify_on_schedule(device, checks, th.schedule_windows(stand))
