"""``knotsense sim``: run the simulated device on a pty, list scenarios, export ground truth.

Examples::

    knotsense sim --list-scenarios
    knotsense sim --scenario back_session --seed 3 --truth truth.json
    knotsense sim --pty --scenario back_session --seed 3        # prints /dev/pts/N first
    knotsense sim --pty --gauge --scenario calibration_bench --speed 50   # device, then gauge
    knotsense sim --ble usb:0 --scenario back_session     # a real advertising BLE peripheral

With ``--pty`` the slave path is the first line of stdout (flushed at once),
so a script can read it and open the port; the device is served until
SIGINT or SIGTERM, after which the command exits 0. A link-drop fault hangs
the port up like an unplugged USB device; when it comes back on a new pty
its path is printed as a further line (``--link PATH`` keeps a stable
symlink, like ``/dev/serial/by-id``).

With ``--ble TRANSPORT`` the device's GATT service runs on a Bumble stack
whose controller is the Bumble transport named (``usb:0`` for a USB dongle,
``hci-socket:0``, ``serial:/dev/ttyACM0``, ``local`` for an in-process virtual
link); the first line of stdout is ``NAME ADDRESS`` once it advertises, and
it is served until SIGINT or SIGTERM (docs/hil.md).

The simulator is imported inside :func:`run` only (DESIGN.md layering).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from urllib.parse import urlencode

from knotsense.errors import ConfigurationError, SimulationError

COMMAND = "sim"
HELP = "run the simulated massager on a pty or BLE, list its scenarios, or export ground truth"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``knotsense sim`` (values are checked in :func:`run`, one-line errors)."""
    parser.add_argument("--pty", action="store_true", help="serve the device on a pseudo-terminal")
    parser.add_argument(
        "--ble",
        metavar="TRANSPORT",
        help="serve the device as a BLE peripheral on a Bumble controller: usb:0, "
        "hci-socket:0, serial:/dev/ttyACM0, ... (needs the bumble extra)",
    )
    parser.add_argument(
        "--ble-link",
        default="1.1",
        choices=("1.0", "1.1"),
        help="with --ble: the BLE link layer (1.1 fragments, default; 1.0 one frame per packet)",
    )
    parser.add_argument(
        "--list-scenarios", action="store_true", help="list the shipped scenarios and exit"
    )
    parser.add_argument(
        "--truth", metavar="OUT.json", help="write the scenario's ground truth and exit"
    )
    parser.add_argument("--scenario", default="back_session", help="scenario name or .toml path")
    parser.add_argument("--seed", default="0", help="seed: fixes every byte (default 0)")
    parser.add_argument(
        "--speed", default="1", help="pacing: 1 real time (default), X times real time, or 'max'"
    )
    parser.add_argument("--faults", default="", metavar="SPEC", help="faults, e.g. link_drop:30+2")
    parser.add_argument("--nvm", metavar="FILE", help="keep the device's NVM in FILE")
    parser.add_argument(
        "--drop",
        default="hangup",
        help="what a link drop does to the pty: hangup (default) or silent",
    )
    parser.add_argument("--link", metavar="PATH", help="keep a stable symlink to the pty here")
    parser.add_argument(
        "--gauge",
        nargs="?",
        const="mark10",
        choices=("mark10", "imada"),
        help="with --pty: also serve a reference force gauge (Mark-10 dialect by default) "
        "reading the simulated load, on a second pty printed as the second line",
    )
    parser.add_argument("--json", action="store_true", help="--list-scenarios as one JSON object")


def run(args: argparse.Namespace) -> int:
    """Dispatch to the chosen action; errors are one-line KnotsenseErrors."""
    actions = [
        flag
        for flag, on in (
            ("--pty", args.pty),
            ("--ble", args.ble is not None),
            ("--list-scenarios", args.list_scenarios),
            ("--truth", args.truth is not None),
        )
        if on
    ]
    if len(actions) != 1:
        raise ConfigurationError(
            "give exactly one of --pty, --ble TRANSPORT, --list-scenarios, --truth OUT.json"
        )
    if args.list_scenarios:
        return _list_scenarios(args)
    config = _config(args)
    if args.truth is not None:
        return _write_truth(config, Path(args.truth))
    if args.ble is not None:
        return _serve_ble(config, args)
    if args.drop not in ("hangup", "silent"):
        raise ConfigurationError(f"--drop must be hangup or silent, not {args.drop!r}")
    return _serve_pty(config, args)


def _config(args: argparse.Namespace):  # -> SimConfig (imported lazily)
    from knotsense.firmware_sim.config import SimConfig

    try:
        seed = int(args.seed)
    except ValueError:
        raise ConfigurationError(f"--seed must be an integer, not {args.seed!r}") from None
    speed = args.speed.strip().lower()
    if speed != "max":
        try:
            ok = float(speed) > 0
        except ValueError:
            ok = False
        if not ok:
            raise ConfigurationError(f"--speed must be a number > 0 or 'max', not {args.speed!r}")
    query = {"scenario": args.scenario, "seed": str(seed), "speed": speed}
    if args.faults:
        query["faults"] = args.faults
    if args.nvm:
        query["nvm"] = args.nvm
    return SimConfig.from_url("sim+pty://?" + urlencode(query))


def _list_scenarios(args: argparse.Namespace) -> int:
    from knotsense.firmware_sim.scenario import list_scenarios

    names = [str(getattr(s, "name", s)) for s in list_scenarios()]
    if args.json:
        sys.stdout.write(json.dumps({"scenarios": names}) + "\n")
    else:
        sys.stdout.write("".join(f"{name}\n" for name in names))
    return 0


def _write_truth(config, out: Path) -> int:
    from knotsense.firmware_sim.scenario import load_scenario

    truth = load_scenario(config.scenario).ground_truth(seed=config.seed).to_dict()
    try:
        out.write_text(json.dumps(truth, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot write {out}: {exc.strerror or exc}") from None
    return 0


def _serve_pty(config, args: argparse.Namespace) -> int:
    from knotsense.firmware_sim.pty_server import PtyServer

    done = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        done.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def announce(path: str) -> None:
        sys.stdout.write(path + "\n")
        sys.stdout.flush()

    try:
        server = PtyServer(config, drop=args.drop, link_path=args.link, on_enumerate=announce)
        try:
            server.start()
        except OSError as exc:
            raise SimulationError(f"cannot open a pty: {exc.strerror or exc}") from None
        gauge = None
        if getattr(args, "gauge", None):
            from knotsense.firmware_sim.gauge import GaugeServer

            gauge = GaugeServer(server.device, dialect=args.gauge).start()
            announce(gauge.slave_path)
        with server:
            while not done.wait(0.1):
                if not server.running:
                    break
        if gauge is not None:
            gauge.stop()
        if server.error is not None:
            raise SimulationError(f"the simulated device stopped: {server.error}")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _serve_ble(config, args: argparse.Namespace) -> int:
    """Advertise the simulated device on a Bumble controller until SIGINT or SIGTERM."""
    import asyncio

    try:
        from knotsense.firmware_sim.bumble_peripheral import BumblePeripheral
    except ImportError as exc:
        raise ConfigurationError(
            f"--ble needs Bumble: pip install 'knotsense[bumble]' ({exc.name or exc})"
        ) from None

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, done.set)
        peripheral = BumblePeripheral(config, transport=args.ble, link_version=args.ble_link)
        try:
            await peripheral.start()
            sys.stdout.write(f"{peripheral.name} {peripheral.address}\n")
            sys.stdout.flush()
            await done.wait()
        finally:
            await peripheral.stop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    asyncio.run(serve())
    return 0
