"""The bench table: the CSV ``calibrate run`` writes and ``calibrate fit`` reads.

Layout: ``# key: value`` metadata lines, then a CSV with a column header::

    # knotsense bench table
    # sensor: fsr
    # serial: KS-000003
    # firmware: 1.4.2
    # reference: {"kind": "gauge", "dialect": "mark10", "port": "/dev/ttyUSB0"}
    # adc: 0 4095
    # positions_mm: 0,18;-18,0;0,-18;18,0
    # plan: fsr-branches
    # full_scale_n: 20
    series,direction,reference_n,raw0,...,x_mm,y_mm,hold_s,loaded_s,t_s
    1,zero,0,7.2,...

Every metadata line is optional, unknown keys are kept (in ``plan``), and a
bare table (no ``#`` lines, as a spreadsheet exports it) still reads. A
table that names no sensor kind is classified from its data by
:func:`infer_sensor`: an FSR's hysteresis (its unloading branch reads several
% of span above its loading branch) and curvature (a power law behind a
voltage divider) are far beyond a strain-gauge load cell's ~0.2 % of span.
"""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from knotsense.calibration.bench import BenchData, BenchPoint
from knotsense.errors import BenchDataError

MAGIC = "knotsense bench table"
SENSORS = ("load_cell", "fsr")
HYSTERESIS_SPLIT = 0.02
"""Largest unloading-minus-loading gap, fraction of span, above which a table is an FSR."""
CURVATURE_SPLIT = 0.03
"""Largest deviation from a straight line, fraction of span, above which a table is an FSR."""


def write_bench_csv(data: BenchData, path: str | Path) -> None:
    """The bench table of ``calibrate fit``: metadata header, then one row per reading."""
    meta: list[tuple[str, str]] = [("sensor", data.sensor), ("serial", data.serial)]
    meta += [("firmware", data.firmware)]
    if data.reference:
        meta.append(("reference", json.dumps(data.reference, sort_keys=True)))
    if data.adc_limits is not None:
        meta.append(("adc", f"{data.adc_limits[0]:g} {data.adc_limits[1]:g}"))
    if data.positions_mm:
        meta.append(("positions_mm", ";".join(f"{x:g},{y:g}" for x, y in data.positions_mm)))
    if data.plan.get("name"):
        meta.append(("plan", str(data.plan["name"])))
    if data.plan.get("full_scale_n") is not None:
        meta.append(("full_scale_n", f"{data.plan['full_scale_n']:g}"))
    try:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            fh.write(f"# {MAGIC}\n")
            for key, value in meta:
                if value:
                    fh.write(f"# {key}: {value}\n")
            w = csv.writer(fh)
            w.writerow(
                ["series", "direction", "reference_n"]
                + [f"raw{i}" for i in range(data.channels)]
                + ["x_mm", "y_mm", "hold_s", "loaded_s", "t_s"]
            )
            for p in data.points:
                w.writerow(
                    [p.series, p.direction, f"{p.reference_n:.6g}"]
                    + [f"{v:.3f}" for v in p.raw]
                    + [f"{p.position_mm[0]:g}", f"{p.position_mm[1]:g}", f"{p.hold_s:g}"]
                    + ["" if p.loaded_s is None else f"{p.loaded_s:.3f}"]
                    + [f"{p.t:.3f}" if p.t_known else ""]
                )
    except OSError as exc:
        raise BenchDataError(f"cannot write {path}: {exc.strerror or exc}") from None


def _header(lines: list[str], name: str) -> tuple[dict[str, str], int]:
    """The ``# key: value`` lines before the column header, and where the CSV starts."""
    meta: dict[str, str] = {}
    i = 0
    while i < len(lines) and (lines[i].startswith("#") or not lines[i].strip()):
        text = lines[i][1:].strip()
        i += 1
        if not text or text == MAGIC:
            continue
        key, sep, value = text.partition(":")
        if not sep:
            raise BenchDataError(f"{name}: line {i}: header lines look like '# key: value'")
        meta[key.strip().lower()] = value.strip()
    return meta, i


def _with_meta(data: BenchData, meta: dict[str, str], name: str) -> BenchData:
    sensor = meta.get("sensor", "").lower()
    if sensor and sensor not in SENSORS:
        raise BenchDataError(f"{name}: sensor {sensor!r} is not one of {', '.join(SENSORS)}")
    kw: dict[str, Any] = {"sensor": sensor, "serial": meta.get("serial", "")}
    kw["firmware"] = meta.get("firmware", "")
    if "reference" in meta:
        try:
            ref = json.loads(meta["reference"])
        except ValueError:
            ref = meta["reference"]
        kw["reference"] = ref if isinstance(ref, dict) else {"kind": "gauge", "name": str(ref)}
    try:
        if "adc" in meta:
            lo, hi = (float(v) for v in meta["adc"].replace(",", " ").split())
            kw["adc_limits"] = (lo, hi)
        if "positions_mm" in meta:
            pos = tuple(
                (float(a), float(b))
                for a, b in (pair.split(",") for pair in meta["positions_mm"].split(";"))
            )
            if len(pos) != data.channels:
                raise BenchDataError(
                    f"{name}: positions_mm gives {len(pos)} channels, the table has {data.channels}"
                )
            kw["positions_mm"] = pos
        plan: dict[str, Any] = {}
        if "plan" in meta:
            plan["name"] = meta["plan"]
        if "full_scale_n" in meta:
            plan["full_scale_n"] = float(meta["full_scale_n"])
    except ValueError as exc:
        raise BenchDataError(f"{name}: bad header value: {exc}") from None
    if plan:
        kw["plan"] = plan
    return replace(data, **kw)


def infer_sensor(data: BenchData) -> str:
    """ "fsr" or "load_cell" from the readings: hysteresis and curvature (module docstring)."""
    hyst, curv = 0.0, 0.0
    loaded = [p for p in data.points if p.direction in ("up", "down") and p.reference_n > 0]
    if loaded:  # one load position: elsewhere the channels share the load differently
        positions = [p.position_mm for p in loaded]
        home = max(set(positions), key=positions.count)
        loaded = [p for p in loaded if p.position_mm == home]
    for ch in range(data.channels):
        ups = [p for p in loaded if p.direction == "up"]
        if len(ups) < 3:
            continue
        f = np.array([p.reference_n for p in ups])
        r = np.array([p.raw[ch] for p in ups])
        span = float(np.ptp(r)) or 1.0
        line = np.polyval(np.polyfit(f, r, 1), f)
        curv = max(curv, float(np.max(np.abs(r - line))) / span)
        for s in {p.series for p in loaded if p.direction == "down"}:
            up = {round(p.reference_n, 1): p.raw[ch] for p in ups if p.series == s}
            for p in loaded:
                if p.series == s and p.direction == "down" and round(p.reference_n, 1) in up:
                    hyst = max(hyst, abs(p.raw[ch] - up[round(p.reference_n, 1)]) / span)
    return "fsr" if hyst > HYSTERESIS_SPLIT or curv > CURVATURE_SPLIT else "load_cell"


def read_bench_csv(path: str | Path) -> BenchData:
    """Read a bench table: ``series, direction (up/down), reference_n, raw0..rawN-1``.

    Optional columns: ``x_mm, y_mm`` (load position), ``hold_s`` (creep rows,
    direction ``creep``), ``loaded_s`` (time under load), ``t_s`` (device
    time). Rows with ``reference_n`` 0 are zero readings. ``# key: value``
    lines before the column header are the metadata (module docstring); a
    table without them reads with ``sensor == ""`` (see :func:`infer_sensor`).
    """
    p = Path(path)
    try:
        with open(p, newline="", encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchDataError(f"cannot read {p}: {exc}") from None
    meta, first = _header(lines, p.name)
    rows = list(csv.reader(lines[first:]))
    if not rows:
        raise BenchDataError(f"{p.name}: empty bench table")
    head = [h.strip().lower() for h in rows[0]]
    for need in ("series", "direction", "reference_n", "raw0"):
        if need not in head:
            raise BenchDataError(
                f"{p.name}: header needs series, direction, reference_n, raw0..rawN-1 (no {need!r})"
            )
    raw_cols = []
    while f"raw{len(raw_cols)}" in head:
        raw_cols.append(head.index(f"raw{len(raw_cols)}"))
    idx = {h: i for i, h in enumerate(head)}
    points = []
    for n, row in enumerate(rows[1:], start=first + 2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            direction = row[idx["direction"]].strip().lower()
            ref = float(row[idx["reference_n"]])
            if direction not in ("up", "down", "zero", "creep"):
                raise ValueError(f"direction must be up or down, not {direction!r}")
            if direction != "creep" and ref == 0:
                direction = "zero"
            raw = tuple(float(row[i]) for i in raw_cols)
            pos = (
                float(row[idx["x_mm"]]) if "x_mm" in idx and row[idx["x_mm"]].strip() else 0.0,
                float(row[idx["y_mm"]]) if "y_mm" in idx and row[idx["y_mm"]].strip() else 0.0,
            )
            hold = (
                float(row[idx["hold_s"]]) if "hold_s" in idx and row[idx["hold_s"]].strip() else 0.0
            )
            loaded = (
                float(row[idx["loaded_s"]])
                if "loaded_s" in idx and row[idx["loaded_s"]].strip()
                else None
            )
            t_s = float(row[idx["t_s"]]) if "t_s" in idx and row[idx["t_s"]].strip() else np.nan
            points.append(
                BenchPoint(
                    int(row[idx["series"]]),
                    direction,
                    ref,
                    raw,
                    position_mm=pos,
                    hold_s=hold,
                    t=t_s,
                    loaded_s=loaded,
                )
            )
        except (ValueError, IndexError) as exc:
            raise BenchDataError(f"{p.name}: line {n}: {exc}") from None
        if not all(np.isfinite(points[-1].raw)) or not np.isfinite(ref):
            raise BenchDataError(f"{p.name}: line {n}: not a finite number")
    if not points:
        raise BenchDataError(f"{p.name}: no bench rows")
    return _with_meta(
        BenchData(tuple(points), len(raw_cols), reference={"kind": "file", "file": p.name}),
        meta,
        p.name,
    )
