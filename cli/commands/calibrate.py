"""``knotsense calibrate``: run the bench, fit offline, apply, report, write to a device.

Examples::

    knotsense calibrate run /dev/ttyACM0 --reference /dev/ttyUSB0 -o cal.json
    knotsense calibrate run /dev/ttyACM0 --manual --plan bench.toml -o cal.json
    knotsense calibrate run "sim://?scenario=calibration_bench&seed=3" --reference sim -o cal.json
    knotsense calibrate fit bench.csv -o cal.json --serial KS-000003 --sensor load_cell
    knotsense calibrate apply cal.json raw.csv -o forces.csv
    knotsense calibrate report cal.json -o report.png
    knotsense calibrate write /dev/ttyACM0 cal.json

``--reference sim`` (simulator URLs only) serves a simulated Mark-10 gauge on a
pty reading the same simulated world, and reads it like a real gauge. The
calibration package is imported inside the actions only.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from knotsense.cli.common import add_json_flag, print_json
from knotsense.cli.targets import device_url, input_file
from knotsense.errors import CalibrationError, ConfigurationError

COMMAND = "calibrate"
HELP = "bench calibration: run, fit, apply, report, write"
SIM_SPEED = 50.0
"""Pacing of a simulator run with a simulated gauge (times real time)."""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    p = sub.add_parser(
        "run", help="run the bench procedure on a device", description="run the bench procedure"
    )
    p.add_argument("url", metavar="URL", help="device URL")
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--reference", metavar="URL", help="reference gauge port (or 'sim' for a simulator)"
    )
    src.add_argument("--manual", action="store_true", help="dead weights, prompted step by step")
    p.add_argument("--dialect", default="mark10", choices=("mark10", "imada"), help="gauge dialect")
    p.add_argument(
        "--plan", metavar="FILE", help="bench plan (.toml/.json); default: ISO 376-style"
    )
    p.add_argument("--forces", action="store_true", help="manual prompts in N instead of kg")
    _common_fit(p)
    p.add_argument("--bench-csv", metavar="CSV", help="also write the bench table here")
    p.add_argument(
        "--write", action="store_true", help="write the record to the device if it passes"
    )
    p.add_argument("-o", "--output", required=True, metavar="CAL.json")
    add_json_flag(p)
    p = sub.add_parser(
        "fit", help="fit a bench table offline", description="fit a bench table offline"
    )
    p.add_argument("bench", metavar="BENCH.csv")
    p.add_argument("--serial", help="device serial for the record (default: the table's)")
    p.add_argument("--firmware", help="device firmware for the record (default: the table's)")
    p.add_argument(
        "--positions", metavar="X,Y;X,Y...", help="channel positions in mm (load sharing)"
    )
    _common_fit(p)
    p.add_argument("-o", "--output", required=True, metavar="CAL.json")
    add_json_flag(p)
    p = sub.add_parser(
        "apply", help="counts -> newtons for a table t, raw0..", description="apply a record"
    )
    p.add_argument("record", metavar="CAL.json")
    p.add_argument("raw", metavar="RAW.csv")
    p.add_argument("-o", "--output", required=True, metavar="OUT.csv")
    p.add_argument("--serial", help="refuse the record unless it is for this serial")
    p.add_argument("--force", action="store_true", help="use a record made for another device")
    p = sub.add_parser("report", help="plot the calibration report", description="plot the report")
    p.add_argument("record", metavar="CAL.json")
    p.add_argument("-o", "--output", required=True, metavar="REPORT.png")
    p = sub.add_parser(
        "write", help="write a record to a device and verify", description="write a record"
    )
    p.add_argument("url", metavar="URL")
    p.add_argument("record", metavar="CAL.json")
    p.add_argument("--force", action="store_true", help="write a record made for another device")
    add_json_flag(p)


def _common_fit(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sensor", choices=("load_cell", "fsr"), help="sensor kind (default: from the device)"
    )
    p.add_argument("--limits", metavar="FILE", help="acceptance limits (TOML: [load_cell], [fsr])")


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "action", None)
    if action is None:
        raise ConfigurationError("give an action: run, fit, apply, report or write")
    return {"run": _run, "fit": _fit, "apply": _apply, "report": _report, "write": _write}[action](
        args
    )


def _limits(args: argparse.Namespace) -> dict[str, Any] | None:
    if not args.limits:
        return None
    from knotsense.calibration.fitting import load_limits

    return load_limits(args.limits)


_SOURCES = {"inferred": "inferred", "table": "from the table", "option": "--sensor"}
_FIGURES = {
    # ISO 376 figures for a load cell; an FSR's own verdict: what it is, and how well
    # the chosen model predicts series it was not fitted on.
    "load_cell": (
        ("repeatability", "pct_fs", "% FS"),
        ("reproducibility", "pct_fs", "% FS"),
        ("interpolation", "pct_reading", "% of reading"),
        ("zero", "pct_fs", "% FS"),
        ("reversibility", "pct_fs", "% FS"),
        ("creep", "pct_fs", "% FS"),
    ),
    "fsr": (
        ("repeatability", "pct_fs", "% FS"),
        ("reversibility", "pct_fs", "% FS hysteresis"),
        ("creep", "pct_reading", "% of reading"),
        ("model", "pct_reading", "% of reading held-out p95"),
    ),
}


def _figure_line(sensor: str, figures: dict[str, Any]) -> str:
    parts = []
    for name, basis, unit in _FIGURES.get(sensor, _FIGURES["load_cell"]):
        value = (figures.get(name) or {}).get(basis)
        label = "model" if name == "model" else name
        parts.append(f"{label} {'-' if value is None else f'{value:.3g}'} {unit}")
    return ", ".join(parts)


def _summary(record: dict[str, Any], out: str, as_json: bool) -> int:
    sensor = record["device"].get("sensor", "")
    source = record["bench"].get("sensor_source", "device")
    if as_json:
        print_json(
            {
                "output": out,
                "serial": record["device"]["serial"],
                "sensor": sensor,
                "sensor_source": source,
                "verdict": record["verdict"],
                "channels": [
                    {
                        "model": c["model"]["kind"],
                        "model_selection": c.get("model_selection", {}),
                        "figures": c.get("figures", {}),
                        "verdict": c["verdict"],
                        "failures": c["failures"],
                    }
                    for c in record["channels"]
                ],
            }
        )
    else:
        print(f"calibration of {record['device']['serial']} -> {out}: {record['verdict'].upper()}")
        print(f"  sensor kind: {sensor} ({_SOURCES.get(source, 'from the device')})")
        for i, c in enumerate(record["channels"]):
            why = "; ".join(c["failures"])
            chosen = (c.get("model_selection") or {}).get("chosen", c["model"]["kind"])
            print(f"  ch{i} {chosen:<24} {c['verdict']}{'  ' + why if why else ''}")
            print(f"      {_figure_line(sensor, c.get('figures', {}))}")
    return 0 if record["verdict"] == "pass" else 1


# --- run ---------------------------------------------------------------------------


def _is_sim(url: str) -> bool:
    return url.split("://", 1)[0].lower() in ("sim", "sim+pty", "sim+ble")


def _paced(url: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query.replace("+", "%2B"), keep_blank_values=True))
    if query.get("speed", "").lower() in ("", "max", "none", "0"):
        query["speed"] = f"{SIM_SPEED:g}"
    return f"{parts.scheme}://?" + urlencode(query)


def _sim_device(device: Any) -> Any:
    transport = device.transport
    sim = getattr(transport, "device", None)
    if sim is None:
        port = getattr(transport, "_port", None)
        server = getattr(port, "sim_server", None)
        sim = getattr(server, "device", None)
    if sim is None:
        raise ConfigurationError("--reference sim needs a sim:// or sim+pty:// device URL")
    return sim


def _progress_printer(as_json: bool):  # -> (hook, close)
    if as_json:
        return (lambda p: None), (lambda: None)
    if sys.stdout.isatty():
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            transient=True,
        )
        bar.start()
        task = bar.add_task("bench", total=1)

        def hook(p: Any) -> None:
            ref = "" if p.reference_n is None else f" ref {p.reference_n:8.2f} N"
            raw = "" if p.raw is None else " raw " + " ".join(f"{v:.0f}" for v in p.raw)
            bar.update(
                task,
                total=p.total,
                completed=p.done,
                description=f"{p.label}: {p.status}{ref}{raw} {p.message}"[:110],
            )

        return hook, bar.stop
    last = {"done": -1}

    def plain(p: Any) -> None:
        if p.done != last["done"] or p.message == "done":
            last["done"] = p.done
            ref = "" if p.reference_n is None else f" ref {p.reference_n:.2f} N"
            print(f"[{p.done}/{p.total}] t={p.t:.0f} s {p.label}: {p.status}{ref}", flush=True)

    return plain, (lambda: None)


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from knotsense.calibration.plan import load_plan, simulator_plan

    device_url(args.url)
    if not args.reference and not args.manual:
        raise ConfigurationError("give --reference URL (a force gauge, or 'sim') or --manual")
    if args.reference and args.reference != "sim":
        device_url(args.reference, "--reference")
    sim_ref = args.reference == "sim"
    url = args.url
    if sim_ref:
        if not _is_sim(url):
            raise ConfigurationError("--reference sim needs a simulator URL (sim://, sim+pty://)")
        url = _paced(url)
    if args.plan:
        plan = load_plan(args.plan)
    elif _is_sim(url) and "calibration_bench" in url:
        plan = simulator_plan()
    else:
        plan = None  # the plan for the device's sensor kind (plan_for), once it answers
    hook, close = _progress_printer(args.json)
    try:
        record, data = asyncio.run(_run_async(args, url, plan, sim_ref, hook))
    finally:
        close()
    from knotsense.calibration.record import save_record
    from knotsense.calibration.table import write_bench_csv

    save_record(record, args.output)
    if args.bench_csv:
        write_bench_csv(data, args.bench_csv)
    return _summary(record, args.output, args.json)


async def _run_async(
    args: argparse.Namespace, url: str, plan: Any, sim_ref: bool, hook: Any
) -> Any:
    from knotsense.calibration.bench import run_bench
    from knotsense.calibration.fitting import fit_bench
    from knotsense.calibration.record import build_record, device_dict, write_to_device
    from knotsense.calibration.sources import ManualSource, SerialGauge
    from knotsense.host.device import AsyncDevice

    device = await AsyncDevice.connect(url, reconnect=None, command_timeout=2.0)
    gauge_server = None
    source: Any = None
    try:
        info = await device.get_info()
        if plan is None:
            from knotsense.calibration.bench import _sensor_name
            from knotsense.calibration.plan import plan_for

            plan = plan_for(_sensor_name(info))
        if sim_ref:
            from knotsense.firmware_sim.gauge import GaugeServer

            gauge_server = GaugeServer(_sim_device(device), dialect=args.dialect).start()
            source = SerialGauge(gauge_server.slave_path, args.dialect)
        elif args.manual:
            source = ManualSource(masses=not args.forces)
        else:
            source = SerialGauge(args.reference, args.dialect)
        data = await run_bench(device, plan, source, progress=hook)
        desc = dict(data.reference)
        if sim_ref:
            desc = {"kind": "simulated gauge", "dialect": args.dialect, "port": "pty"}
        data = type(data)(
            data.points,
            data.channels,
            data.positions_mm,
            data.adc_limits,
            data.sensor,
            data.plan,
            desc,
            data.duration_s,
        )
        fit = fit_bench(data, args.sensor, _limits(args))
        record = build_record(
            fit, data, device_dict(info), bench={"run_s": round(data.duration_s, 2)}
        )
        if args.write and record["verdict"] == "pass":
            await write_to_device(device, record)
        return record, data
    finally:
        if source is not None:
            source.close()
        if gauge_server is not None:
            gauge_server.stop()
        await device.close()


# --- offline actions -------------------------------------------------------------


def _fit(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from knotsense.calibration.fitting import fit_bench
    from knotsense.calibration.record import build_record, save_record
    from knotsense.calibration.table import infer_sensor, read_bench_csv

    data = read_bench_csv(input_file(args.bench, "a bench table (CSV)"))
    positions: tuple[tuple[float, float], ...] = ()
    if args.positions:
        try:
            positions = tuple(
                (float(a), float(b))
                for a, b in (pair.split(",") for pair in args.positions.split(";"))
            )
        except ValueError:
            raise ConfigurationError(
                f"--positions must look like 0,18;-18,0;..., not {args.positions!r}"
            ) from None
        if len(positions) != data.channels:
            raise ConfigurationError(
                f"--positions gives {len(positions)} channels, the table has {data.channels}"
            )
    # The sensor kind: --sensor, else the table's header, else classified from the data.
    if args.sensor:
        sensor, source = args.sensor, "option"
    elif data.sensor:
        sensor, source = data.sensor, "table"
    else:
        sensor, source = infer_sensor(data), "inferred"
    plan = {"name": Path(args.bench).stem, **data.plan}
    data = replace(data, positions_mm=positions or data.positions_mm, sensor=sensor, plan=plan)
    fit = fit_bench(data, sensor, _limits(args))
    device = {
        "serial": args.serial or data.serial or "unknown",
        "model": "",
        "firmware": args.firmware or data.firmware,
        "hw_revision": 0,
        "sensor": sensor,
        "channels": data.channels,
        "adc_bits": 0,
    }
    record = build_record(fit, data, device, bench={"sensor_source": source})
    save_record(record, args.output)
    return _summary(record, args.output, args.json)


def _apply(args: argparse.Namespace) -> int:
    import numpy as np

    from knotsense.calibration.record import calibration_of, load_record

    input_file(args.raw, "a table of raw counts (CSV: t, raw0..)")
    record = load_record(
        input_file(args.record, "a calibration record (JSON)"), serial=args.serial, force=args.force
    )
    cal = calibration_of(record)
    try:
        with open(args.raw, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"cannot read {args.raw}: {exc}") from None
    if not rows:
        raise CalibrationError(f"{args.raw}: empty table")
    head = [h.strip().lower() for h in rows[0]]
    cols = [head.index(f"raw{i}") for i in range(cal.channels) if f"raw{i}" in head]
    if "t" not in head or len(cols) != cal.channels:
        raise CalibrationError(
            f"{args.raw}: header needs t, raw0..raw{cal.channels - 1} "
            f"(the record has {cal.channels} channels)"
        )
    ti = head.index("t")
    try:
        t = np.array([float(r[ti]) for r in rows[1:] if r])
        raw = np.array([[float(r[i]) for i in cols] for r in rows[1:] if r]).reshape(
            -1, cal.channels
        )
    except (ValueError, IndexError) as exc:
        raise CalibrationError(f"{args.raw}: {exc}") from None
    forces = cal.apply(raw, t=t)  # a stateful model runs from rest along t
    try:
        with open(args.output, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["t"] + [f"f{i}" for i in range(cal.channels)])
            for ti_, row in zip(t, forces, strict=True):
                w.writerow([f"{ti_:.6f}"] + [f"{v:.5f}" for v in row])
    except OSError as exc:
        raise CalibrationError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    return 0


def _report(args: argparse.Namespace) -> int:
    from knotsense.calibration.record import load_record
    from knotsense.calibration.report import plot_report

    record = load_record(input_file(args.record, "a calibration record (JSON)"), force=True)
    plot_report(record, args.output)
    print(f"report -> {args.output} ({record['verdict']})")
    return 0


def _write(args: argparse.Namespace) -> int:
    import asyncio

    from knotsense.calibration.record import load_record, write_to_device
    from knotsense.host.device import AsyncDevice

    device_url(args.url)
    record = load_record(
        input_file(args.record, "a calibration record (JSON)"), force=True
    )  # the serial is checked against the device

    async def go() -> int:
        device = await AsyncDevice.connect(args.url, reconnect=None, command_timeout=2.0)
        async with device:
            return await write_to_device(device, record, force=args.force)

    cal_id = asyncio.run(go())
    if args.json:
        print_json(
            {"written": True, "calibration_id": cal_id, "serial": record["device"]["serial"]}
        )
    else:
        print(
            f"wrote calibration {cal_id:#010x} to {record['device']['serial']} "
            "(read back and verified)"
        )
    return 0
