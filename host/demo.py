"""The main job in one call: simulate a massage session, record, export, analyse, plot.

A simulated unit is provisioned like a calibrated prototype -- a calibration
record written into its (file-backed) NVM through the protocol -- and then
recorded exactly as a real device would be, as fast as the simulator runs.
The calibration comes from the simulated unit's own noise-free sensor curve
(an ideal bench), which stands in for ``knotsense calibrate`` to keep the demo
short; everything after it is the real path.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np

from knotsense.dsp.calibration_models import Calibration, fit_model
from knotsense.dsp.calibration_record import FORMAT, SCHEMA_VERSION, seal
from knotsense.dsp.pipeline import PipelineConfig, analyze
from knotsense.host.device import AsyncDevice
from knotsense.host.export import export_csv
from knotsense.host.plotting import plot_analysis
from knotsense.host.record import RecordResult, record_session
from knotsense.host.session import load_session

DEMO_CALIBRATION_ID = 0xDE30_0001


@dataclass(frozen=True)
class DemoResult:
    """Where the demo put things, and what it found."""

    folder: Path
    recording: Path
    csv: Path
    summary: Path
    plot: Path
    truth: Path
    record: RecordResult
    analysis: dict[str, Any]
    seconds: float


def demo_url(scenario: str, seed: int, nvm: Path, rate: int | None) -> str:
    query = {"scenario": scenario, "seed": seed, "nvm": str(nvm)}
    if rate is not None:
        query["rate"] = rate
    return "sim://?" + urlencode(query)


def ideal_bench_calibration(unit: Any, points: int = 41) -> dict[str, Any]:
    """A calibration record fitted to a simulated unit's noise-free static curve.

    Load cells get a linear model, FSRs a monotone one (their curve is a power law).
    The record has knotsense.calibration's layout (docs/bench-guide.md, schema 1)
    with ``bench.plan`` "ideal", no figures and no bench points, so the host
    applies it like a record from ``knotsense calibrate``.
    """
    kind = "linear" if unit.sensor == "load_cell" else "monotone"
    if kind == "monotone":
        points = min(points, 16)  # knots: the record must fit the device's 4096-byte NVM
    force = np.linspace(0.0, unit.full_scale_n, points)
    counts = unit.static_counts(np.repeat(force[:, None], unit.channels, axis=1))
    models = []
    for ch in range(unit.channels):
        raw = counts[:, ch]
        # FSRs read nothing below their threshold force: fit where the curve rises.
        rising = np.r_[True, np.diff(raw) > 0]
        models.append(fit_model(raw[rising], force[rising], kind))
    calibration = Calibration(tuple(models))
    record: dict[str, Any] = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "device": {
            "serial": unit.serial,
            "model": "",
            "firmware": "",
            "hw_revision": 0,
            "sensor": unit.sensor,
            "channels": unit.channels,
            "adc_bits": int(unit.adc_bits),
        },
        "date": "1970-01-01T00:00:00Z",
        "bench": {
            "plan": "ideal",
            "reference": {"kind": "ideal bench (simulator, knotsense demo)"},
            "full_scale_n": float(unit.full_scale_n),
            "points": 0,
            "positions_mm": [[float(x), float(y)] for x, y in unit.positions_mm],
        },
        "channels": [
            {"model": m, "figures": {}, "verdict": "pass", "failures": []}
            for m in calibration.to_dict()["channels"]
        ],
        "limits": {},
        "verdict": "pass",
    }
    return seal(record)


def truth_on_session_time(truth: dict[str, Any], session: Any) -> dict[str, Any]:
    """The scenario's ground truth moved onto the session's ``t`` axis.

    The unit boots at scenario time 0 and its clock counts from there, so the
    first sample's device time says where the session's ``t`` = 0 falls.
    """
    offset = float(session.device_time_us[0]) / 1e6 - float(session.t[0])
    intervals = [
        {**i, "start": round(i["start"] - offset, 3), "end": round(i["end"] - offset, 3)}
        for i in truth["intervals"]
    ]
    return {
        **truth,
        "intervals": intervals,
        "time_base": "session t (s)",
        "scenario_time_at_t0_s": round(offset, 3),
    }


async def provision(url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write the ideal-bench calibration into the simulated unit; returns (record, truth)."""
    device = await AsyncDevice.connect(url, reconnect=None)
    async with device:
        sim = device.transport.simulated_device
        record = ideal_bench_calibration(sim.unit)
        await device.get_info()
        # Not device_blob(): its shorter bytes take fewer frames and would shift the
        # demo's virtual timeline, and so its figures.
        await device.write_calibration(json.dumps(record).encode(), DEMO_CALIBRATION_ID)
        truth = sim.ground_truth().to_dict()
    return record, truth


async def run_demo(
    folder: Path,
    scenario: str = "back_session",
    seed: int = 3,
    rate: int | None = 250,
    view_factory: Callable[..., Any] | None = None,
) -> DemoResult:
    """Run the whole demo into *folder* (created; previous demo files replaced)."""
    started = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        name: folder / name
        for name in (
            "device-nvm.json",
            "session.ksr",
            "session.csv",
            "summary.json",
            "session.png",
            "truth.json",
        )
    }
    paths["device-nvm.json"].unlink(missing_ok=True)
    url = demo_url(scenario, seed, paths["device-nvm.json"], rate)
    _, truth = await provision(url)

    config = PipelineConfig(
        release_threshold=truth["release_threshold_n"], max_force=truth["max_force_n"]
    )
    duration = float(truth.get("duration_s") or 600.0)
    recorded = await record_session(
        url,
        paths["session.ksr"],
        duration_s=duration,
        pipeline_config=config,
        overwrite=True,
        view_factory=view_factory,
    )

    session = load_session(paths["session.ksr"])
    paths["truth.json"].write_text(json.dumps(truth_on_session_time(truth, session), indent=2))
    export_csv(session, paths["session.csv"])
    forces = session.forces if session.forces is not None else session.raw
    analysis = analyze(session.t, forces, config)
    result = analysis.to_dict()
    paths["summary.json"].write_text(json.dumps(result, indent=2) + "\n")
    plot_analysis(
        paths["session.png"],
        session.t,
        analysis,
        config,
        names=tuple(session.channel_names),
        title=f"knotsense demo: {scenario}, seed {seed} (simulated unit)",
    )
    return DemoResult(
        folder,
        paths["session.ksr"],
        paths["session.csv"],
        paths["summary.json"],
        paths["session.png"],
        paths["truth.json"],
        recorded,
        result,
        time.monotonic() - started,
    )
