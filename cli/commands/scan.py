"""``knotsense scan``: BLE devices advertising our service, and serial ports that answer a ping."""

from __future__ import annotations

import argparse
from typing import Any

from knotsense.cli.common import add_json_flag, print_json, run_async

COMMAND = "scan"
HELP = "find devices: BLE advertisers of the KnotSense service and serial ports answering a ping"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=5.0, help="BLE scan seconds (default 5)")
    parser.add_argument("--no-ble", action="store_true", help="skip the BLE scan")
    parser.add_argument("--no-serial", action="store_true", help="skip the serial ports")
    parser.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="PATH",
        help="also probe this serial port or URL (repeatable)",
    )
    add_json_flag(parser)


async def _scan_ble(timeout: float) -> tuple[list[dict[str, Any]], str | None]:
    """Advertisers of the KnotSense service; (devices, why BLE is unavailable)."""
    try:
        from bleak import BleakScanner

        from knotsense.protocol.gatt import ADVERTISED_NAME_PREFIX, SERVICE_UUID
    except ImportError as exc:
        return [], f"bleak is not installed ({exc})"
    try:
        found = await BleakScanner.discover(timeout=timeout, return_adv=True)
    except Exception as exc:
        return [], f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no adapter'}"
    devices = []
    for device, adv in found.values():
        name = adv.local_name or device.name or ""
        if SERVICE_UUID in [u.lower() for u in adv.service_uuids] or name.startswith(
            ADVERTISED_NAME_PREFIX
        ):
            devices.append({"url": f"ble://{device.address}", "name": name, "rssi": adv.rssi})
    return devices, None


async def _probe(url: str) -> dict[str, Any] | None:
    """Connect to a serial port and ping it; the device's identity if it answers."""
    from knotsense.errors import KnotsenseError
    from knotsense.host.device import AsyncDevice

    try:
        device = await AsyncDevice.connect(url, command_timeout=0.3, retries=1, reconnect=None)
    except KnotsenseError:
        return None
    try:
        async with device:
            info = await device.get_info()
            return {"url": url, "name": info.model, "serial_number": info.serial_number}
    except KnotsenseError:
        return None


async def _scan(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"ble": [], "serial": [], "ble_unavailable": None}
    if not args.no_ble:
        result["ble"], result["ble_unavailable"] = await _scan_ble(args.timeout)
    if not args.no_serial:
        from serial.tools import list_ports

        ports = [p.device for p in list_ports.comports()] + list(args.port)
        for port in dict.fromkeys(ports):
            answer = await _probe(port)
            if answer is not None:
                result["serial"].append(answer)
    return result


def run(args: argparse.Namespace) -> int:
    from knotsense.cli.targets import device_url

    for port in args.port:
        device_url(port, "--port")
    result = run_async(_scan(args))
    if args.json:
        print_json(result)
        return 0
    if result["ble_unavailable"]:
        print(f"BLE: not scanned: {result['ble_unavailable']}")
    for d in result["ble"]:
        print(f"{d['url']}  {d['name']}  {d['rssi']} dBm")
    for d in result["serial"]:
        print(f"{d['url']}  {d['name']}  serial {d['serial_number']}")
    if not result["ble"] and not result["serial"]:
        print("no devices found")
    return 0
