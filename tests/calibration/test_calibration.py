"""Calibration: accuracy on simulated units, records, refusals, thresholds, CLI, full bench."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import numpy as np
import pytest
from helpers_cal import accuracy, bench

from knotsense.calibration import record as rec
from knotsense.calibration import thresholds as th
from knotsense.calibration.bench import (
    BenchData,
    BenchPoint,
    StepTracker,
    validate,
)
from knotsense.calibration.plan import BenchPlan, quick_plan
from knotsense.calibration.sources import GaugeOverload, parse_imada, parse_mark10, to_newtons
from knotsense.calibration.table import read_bench_csv, write_bench_csv
from knotsense.cli.main import main
from knotsense.errors import BenchDataError, CalibrationError, ConfigurationError
from knotsense.firmware_sim.stand import SimStand


@pytest.fixture(scope="module")
def lc3():
    return bench("load_cell", 3, "KS-000003")


# --- accuracy -------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "silicone"), [(0, "soft"), (1, "dense"), (2, "dense")])
def test_load_cell_within_1pct_of_reading(seed: int, silicone: str) -> None:
    """From rest, through either silicone: the knob is in series, so it cannot bias the total."""
    _, fit, record = bench("load_cell", seed, silicone=silicone)
    assert fit.passed
    up, down, _ = accuracy("load_cell", seed, record, f"KS-{seed:06d}", silicone=silicone)
    assert np.abs(up).max() <= 0.01 and np.abs(down).max() <= 0.01


@pytest.mark.parametrize(("seed", "silicone"), [(0, "soft"), (1, "dense"), (2, "dense")])
def test_fsr_within_half_hysteresis_plus_2pct(seed: int, silicone: str) -> None:
    """Loads applied from rest read within +/- (h/2 + 2 %) of reading. Eased off to half
    the load, an FSR reads on its falling branch, up to h * peak high (2h of reading at
    half the peak): those readings must lie inside that band (+/- 2 %). No single curve
    puts both branches within +/- h/2 -- the band is 2h wide there -- so the fit follows
    the rising branch, the one a body lying down and a threshold check read on."""
    _, fit, record = bench("fsr", seed, silicone=silicone)
    assert fit.passed
    up, down, unit = accuracy("fsr", seed, record, f"KS-{seed:06d}", silicone=silicone)
    bound = unit.hysteresis / 2 + 0.02
    assert (np.abs(up) <= bound).all()
    band = 2 * unit.hysteresis
    assert (down >= -0.02).all() and (down <= band + 0.02).all()


def test_calibration_bench_scenario_passes_both_kinds() -> None:
    for sensor in ("load_cell", "fsr"):
        data, fit, record = bench(sensor, 5)
        assert len(data.points) == 39
        assert record["verdict"] == "pass", [c.failures for c in fit.channels]
        assert all(set(c.figures) >= {"repeatability", "creep"} for c in fit.channels)
        if sensor == "fsr":
            assert max(c.figures["repeatability"]["pct_fs"] for c in fit.channels) < 3.0


# --- records --------------------------------------------------------------------


def test_two_serials_two_records(lc3) -> None:
    _, _, a = lc3
    _, _, b = bench("load_cell", 3, "KS-000777")
    assert a["device"]["serial"] != b["device"]["serial"]
    assert a["channels"][0]["model"] != b["channels"][0]["model"]
    assert a["checksum"] != b["checksum"]


def test_file_round_trip_and_refusals(tmp_path, lc3) -> None:
    _, _, record = lc3
    path = tmp_path / "cal.json"
    rec.save_record(record, path)
    assert rec.load_record(path, serial="KS-000003") == record
    with pytest.raises(CalibrationError, match="for device KS-000003, not KS-000004"):
        rec.load_record(path, serial="KS-000004")
    assert rec.load_record(path, serial="KS-000004", force=True)["device"]["serial"] == "KS-000003"
    text = path.read_text()
    path.write_text(text.replace('"verdict": "pass"', '"verdict": "fail"', 1))
    with pytest.raises(CalibrationError, match="checksum mismatch"):
        rec.load_record(path)
    path.write_text(text[: len(text) // 2])
    with pytest.raises(CalibrationError, match="not JSON"):
        rec.load_record(path)
    path.write_text('{"channels": []}')
    with pytest.raises(CalibrationError, match="not a knotsense calibration record"):
        rec.load_record(path)


def test_record_survives_reboot_and_host_applies_it(tmp_path, lc3) -> None:
    from knotsense.host.device import AsyncDevice
    from knotsense.host.session import calibration_from_metadata

    _, _, record = lc3
    nvm = tmp_path / "nvm.json"
    url = f"sim://?scenario=quiet_baseline&seed=3&nvm={nvm}"

    async def go() -> tuple[int, bytes]:
        dev = await AsyncDevice.connect(url, reconnect=None)
        async with dev:
            cal_id = await rec.write_to_device(dev, record)
            await dev.reboot()
            await asyncio.sleep(0.05)
        dev = await AsyncDevice.connect(url, reconnect=None)  # a new power-on, same NVM file
        async with dev:
            info = await dev.get_info()
            assert info.calibration_id == cal_id
            return await dev.read_calibration()

    _, blob = asyncio.run(go())
    stored = rec.parse_record(blob, serial="KS-000003")
    assert "points" not in stored and stored["channels"] == record["channels"]
    cal = calibration_from_metadata({"calibration": stored}, [0, 1, 2, 3], 4)
    assert cal.channels == 4
    tampered = dict(stored, verdict="fail")
    with pytest.raises(CalibrationError, match="checksum"):
        calibration_from_metadata({"calibration": tampered}, [0, 1, 2, 3], 4)


def test_demo_record_is_the_record_format() -> None:
    from knotsense.firmware_sim.physics import make_unit
    from knotsense.host.demo import ideal_bench_calibration

    record = ideal_bench_calibration(make_unit("KS-000001", "fsr", 4))
    assert rec.parse_record(record, serial="KS-000001")["bench"]["plan"] == "ideal"
    assert len(rec.device_blob(record)) <= rec.DEVICE_CAPACITY


# --- bad bench data -------------------------------------------------------------


def _points(levels, raw_of, series=1):
    pts = [BenchPoint(series, "zero", 0.0, (raw_of(0.0),))]
    pts += [BenchPoint(series, "up", f, (raw_of(f),)) for f in levels]
    return pts


def test_refusals_name_the_step() -> None:
    good = [25.0 * k for k in range(1, 9)] + [250.0]
    validate(BenchData(tuple(_points(good, lambda f: 1000 + 40 * f)), 1))
    with pytest.raises(BenchDataError, match="too few steps: 5"):
        validate(BenchData(tuple(_points([50, 100, 150, 200, 250], lambda f: 40 * f)), 1))
    bumpy = lambda f: 40 * f - (3000 if f == 125 else 0)  # noqa: E731
    with pytest.raises(BenchDataError, match=r"series 1 up 125 N: channel 0 is not monotonic"):
        validate(BenchData(tuple(_points(good, bumpy)), 1))
    flat = lambda f: min(40 * f, 6000)  # noqa: E731
    with pytest.raises(BenchDataError, match=r"up 175 N: channel 0 stopped changing"):
        validate(BenchData(tuple(_points(good, flat)), 1))
    with pytest.raises(BenchDataError, match=r"up 250 N: channel 0 saturated"):
        validate(BenchData(tuple(_points(good, lambda f: 40 * f)), 1, adc_limits=(0, 10000)))


def _tracker_run(plan, t, raw, ref, **kw):
    tr = StepTracker(plan, raw.shape[1], **kw)
    for a in range(0, t.size, 40):
        tr.feed_samples(t[a : a + 40], raw[a : a + 40])
        for k in range(a, min(a + 40, t.size), 20):
            tr.feed_reference(float(t[k]), float(ref[k]))
    return tr


def _staircase(plan, rate=80.0, wobble=0.0):
    hold = plan.settle_s + plan.read_s + 4
    levels = [0.0, *list(plan.nominal_forces)]
    t = np.arange(0, hold * len(levels) * 4, 1 / rate)
    k = np.minimum((t // hold).astype(int), len(levels) - 1)
    ref = np.array(levels)[k] * (1 + wobble * np.sin(2 * np.pi * 0.5 * t))
    raw = (1000 + 400 * ref)[:, None]
    return t, raw, ref


def test_unstable_reference_refused() -> None:
    plan = BenchPlan(
        preloads=0, settle_s=3, zero_settle_s=2, read_s=1, step_timeout_s=30, creep=None
    )
    t, raw, ref = _staircase(plan, wobble=0.04)
    with pytest.raises(
        BenchDataError, match=r"step 2 \(series 1 up 25 N\): unstable readings: the reference moved"
    ):
        _tracker_run(plan, t, raw, ref)


def test_saturated_channel_refused() -> None:
    plan = BenchPlan(preloads=0, settle_s=3, zero_settle_s=2, read_s=1, creep=None)
    t, raw, ref = _staircase(plan)
    with pytest.raises(BenchDataError, match=r"step 4 \(series 1 up 75 N\): channel 0 saturated"):
        _tracker_run(plan, t, raw, ref, adc_limits=(-1e9, 25000))


def test_gauge_lines_units_and_overload() -> None:
    assert parse_mark10("12.34 N\r\n") == pytest.approx(12.34)
    assert parse_mark10(b"1.000 kgf\r\n") == pytest.approx(9.80665)
    assert parse_mark10("2.5 lbf") == pytest.approx(11.1205540)
    assert parse_imada("+0.469NTO") == pytest.approx(0.469)
    assert parse_imada("-1.000KTO") == pytest.approx(-9.80665)
    assert to_newtons(1, "kN") == 1000
    for bad in ("OVERLOAD", "OL"):
        with pytest.raises(GaugeOverload):
            parse_mark10(bad)
    with pytest.raises(GaugeOverload):
        parse_imada("+999.99NTE")
    with pytest.raises(BenchDataError, match="unreadable"):
        parse_mark10("hello")


def test_gauge_server_overload_through_the_pty() -> None:
    from knotsense.calibration.sources import SerialGauge
    from knotsense.firmware_sim.gauge import GaugeServer

    class World:
        now = 1.0

        def true_force(self, t):
            return np.array([600.0 if self.now > 2 else 123.456])

    world = World()
    with GaugeServer(world) as srv:
        gauge = SerialGauge(srv.slave_path)
        assert gauge.read_n() == pytest.approx(123.456)
        world.now = 3.0
        with pytest.raises(GaugeOverload):
            gauge.read_n()
        gauge.close()


def test_plan_file_errors(tmp_path) -> None:
    p = tmp_path / "p.toml"
    p.write_text(quick_plan().to_toml())
    from knotsense.calibration.plan import load_plan

    assert load_plan(p).steps_pct == quick_plan().steps_pct
    p.write_text("steps_pct = [10, 50, 100]\n")
    with pytest.raises(ConfigurationError, match="3 steps; ISO 376 needs at least 8"):
        load_plan(p)


# --- thresholds -----------------------------------------------------------------


@pytest.mark.parametrize("sensor", ["load_cell", "fsr"])
def test_thresholds_fire_only_above(sensor: str, lc3) -> None:
    """Calibrated on the shipped bench (dense silicone), checked from rest at -5 % / +5 %."""
    from knotsense.host.device import AsyncDevice

    _, _, record = lc3 if sensor == "load_cell" else bench("fsr", 3, "KS-000003")
    t = th.program_thresholds(record, 110.0, max_n=200.0)
    if sensor == "load_cell":
        assert abs(t.release_on - 110_000) < 500  # L reads in mN
    checks = th.verification_checks(110.0, 200.0)
    stand = th.script_stand(SimStand(sensor=sensor, channels=4), checks)

    async def go():
        dev = await AsyncDevice.connect(stand.url(seed=3, serial="KS-000003"), reconnect=None)
        async with dev:
            await dev.get_info()
            await dev.write_thresholds(t)
            return await th.verify_on_schedule(dev, checks, th.schedule_windows(stand))

    results = asyncio.run(go())
    assert [r.fired for r in results] == [False, True, False, True]


# --- CLI ------------------------------------------------------------------------


def test_cli_fit_apply_report_and_errors(tmp_path, lc3, capsys) -> None:
    data, _, _ = lc3
    csv_path = tmp_path / "bench.csv"
    write_bench_csv(data, csv_path)
    assert read_bench_csv(csv_path).channels == 4
    out = tmp_path / "cal.json"
    pos = "0,18;-18,0;0,-18;18,0"
    assert (
        main(
            [
                "calibrate",
                "fit",
                str(csv_path),
                "-o",
                str(out),
                "--serial",
                "KS-000003",
                "--positions",
                pos,
            ]
        )
        == 0
    )
    raw = tmp_path / "raw.csv"
    raw.write_text("t,raw0,raw1,raw2,raw3\n0.0,100000,0,50000,-20000\n")
    assert main(["calibrate", "apply", str(out), str(raw), "-o", str(tmp_path / "f.csv")]) == 0
    assert (tmp_path / "f.csv").read_text().startswith("t,f0,f1,f2,f3\n")
    assert main(["calibrate", "report", str(out), "-o", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "r.png").stat().st_size > 10_000
    capsys.readouterr()
    bad = tmp_path / "bad.json"
    bad.write_text(out.read_text()[:-40])
    assert main(["calibrate", "apply", str(bad), str(raw), "-o", str(tmp_path / "x.csv")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not JSON" in err
    assert main(["calibrate", "apply", str(out), str(raw), "-o", "x.csv", "--serial", "KS-9"]) == 1
    assert "for device KS-000003, not KS-9" in capsys.readouterr().err
    few = tmp_path / "few.csv"
    few.write_text("series,direction,reference_n,raw0\n1,up,0,10\n1,up,25,20\n1,up,50,30\n")
    assert main(["calibrate", "fit", str(few), "-o", str(tmp_path / "y.json")]) == 1
    assert "too few steps" in capsys.readouterr().err
    assert main(["calibrate", "run", "sim://?seed=1", "-o", str(tmp_path / "z.json")]) == 1
    assert "--reference" in capsys.readouterr().err


def test_full_simulated_bench_through_the_cli(tmp_path) -> None:
    """`calibrate run` on the calibration_bench scenario with the simulated Mark-10 gauge on a pty,
    then `calibrate write` and `thresholds` on the same unit (NVM file)."""
    nvm = tmp_path / "nvm.json"
    url = f"sim://?scenario=calibration_bench&seed=3&nvm={nvm}"
    out = tmp_path / "cal.json"
    cmd = [
        sys.executable,
        "-m",
        "knotsense",
        "calibrate",
        "run",
        url,
        "--reference",
        "sim",
        "-o",
        str(out),
        "--write",
        "--json",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["verdict"] == "pass" and summary["serial"] == "KS-000003"
    assert (
        rec.load_record(out, serial="KS-000003")["bench"]["reference"]["kind"] == "simulated gauge"
    )
    assert main(["thresholds", url, "--release", "110", "--max", "200", "--json"]) == 0
