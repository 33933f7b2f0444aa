"""Issue 15 and 13.5: calibration as good as the sensor, bench tables that say what they are.

The bench units come from ``benchmarks/calsim.py``, the independent bench
simulation (noise, hysteresis, creep and contact-to-contact repeatability,
written apart from the fitting); ``benchmarks/calibration_accuracy.py`` runs
the same procedure over all units and prints the per-unit table.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import calibration_accuracy as ca
import calsim

from knotsense.calibration.bench import validate
from knotsense.calibration.fitting import fit_bench
from knotsense.calibration.plan import load_plan, plan_for
from knotsense.calibration.table import infer_sensor, read_bench_csv, write_bench_csv
from knotsense.cli.main import main
from knotsense.dsp.calibration_models import Calibration
from knotsense.dsp.calibration_record import parse_record


@pytest.fixture(scope="module")
def tables() -> dict[str, object]:
    """One bench table per kind, from the independent simulation and the sensor plan."""
    out = {}
    for kind in ("load_cell", "fsr"):
        u = calsim.make_unit(kind, 0)
        data = ca.bench_data(u, ca.plan_for_unit(u, "sensor"))
        out[kind] = (u, replace(data, serial=f"{u.serial}", firmware="1.4.2"))
    return out


def test_plan_for_plans_both_branches_creep_and_series() -> None:
    plan = plan_for("fsr", 20.0)
    assert len(plan.series) >= 3 and all(s.directions == ("up", "down") for s in plan.series)
    assert plan.creep is not None and plan.creep.read_at_s[-1] >= 300
    assert len(plan.creep.levels_pct) >= 2
    steps = plan.steps()
    dwells = {s.series for s in steps if s.direction == "creep"}
    assert len(dwells) == len(plan.creep.levels_pct)  # each dwell is a contact of its own
    assert all(s.series > len(plan.series) for s in steps if s.direction == "creep")


def test_plan_with_several_creep_dwells_round_trips(tmp_path) -> None:
    p = tmp_path / "fsr.toml"
    p.write_text(plan_for("fsr", 20.0).to_toml())
    assert load_plan(p).steps() == plan_for("fsr", 20.0).steps()


@pytest.mark.parametrize("kind", ["load_cell", "fsr"])
def test_heldout_error_within_the_floor(tables, kind: str) -> None:
    """Held-out p95 (10-100 % of range, 1 s windows) within 1.3x the sensor's own floor."""
    u, data = tables[kind]
    fit = fit_bench(data, kind)
    ch = fit.channels[0]
    p95, floor = ca.evaluate(u, Calibration((ch.model,)))
    assert p95 <= 1.3 * floor, (kind, ch.selection, p95, floor)
    # The model that does not know the branches nor the creep is far worse.
    static, _ = ca.evaluate(u, Calibration((ch.model,)), static=True)
    assert static > 1.5 * p95


def test_model_choice_is_recorded_with_its_heldout_error(tables, tmp_path, capsys) -> None:
    u, data = tables["fsr"]
    path = tmp_path / "bench.csv"
    write_bench_csv(data, path)
    out = tmp_path / "cal.json"
    assert main(["calibrate", "fit", str(path), "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    record = parse_record(out.read_text())
    ch = record["channels"][0]
    sel = ch["model_selection"]
    assert sel["method"] == "leave-one-series-out" and sel["folds"] >= 3
    assert ch["model"]["kind"] == "branch" and ch["model"]["unload"]  # two branches
    assert ch["model"]["creep"] != 0 and "creep" in sel["chosen"]
    assert 0 < sel["heldout_p95_pct_reading"] == ch["figures"]["model"]["pct_reading"]
    assert summary["sensor"] == "fsr" and summary["sensor_source"] == "table"
    assert record["device"]["serial"] == u.serial and record["device"]["firmware"] == "1.4.2"
    assert summary["channels"][0]["model_selection"]["chosen"] == sel["chosen"]


def test_bench_table_header_round_trips(tables, tmp_path) -> None:
    _, data = tables["fsr"]
    data = replace(data, positions_mm=((0.0, 0.0),), reference={"kind": "gauge", "port": "X"})
    path = tmp_path / "b.csv"
    write_bench_csv(data, path)
    back = read_bench_csv(path)
    assert (back.sensor, back.serial, back.firmware) == ("fsr", data.serial, "1.4.2")
    assert back.reference == {"kind": "gauge", "port": "X"}
    assert back.adc_limits == (0.0, calsim.ADC_FSR) and back.positions_mm == ((0.0, 0.0),)
    assert [p.loaded_s for p in back.points] == pytest.approx(
        [None if p.loaded_s is None else round(p.loaded_s, 3) for p in data.points]
    )
    validate(back)


@pytest.mark.parametrize("kind", ["load_cell", "fsr"])
def test_bare_table_is_classified_from_its_data(tables, kind: str) -> None:
    _, data = tables[kind]
    assert infer_sensor(replace(data, sensor="")) == kind


def test_cli_fit_bare_fsr_table_infers_the_kind(tables, tmp_path, capsys) -> None:
    """Issue 13.5: a bare FSR table is no longer judged against load-cell limits."""
    _, data = tables["fsr"]
    full = tmp_path / "full.csv"
    write_bench_csv(data, full)
    bare = tmp_path / "bare.csv"
    bare.write_text("".join(ln for ln in full.read_text().splitlines(True) if ln[0] != "#"))
    assert read_bench_csv(bare).sensor == ""
    assert main(["calibrate", "fit", str(bare), "-o", str(tmp_path / "a.json")]) == 0
    text = capsys.readouterr().out
    assert "sensor kind: fsr (inferred)" in text and "held-out p95" in text
    assert "interpolation" not in text  # the FSR verdict, not ISO 376's
    # --sensor still overrides, and a load cell's limits fail an FSR.
    assert main(["calibrate", "fit", str(bare), "--sensor", "load_cell", "-o", "b.json"]) == 1
    text = capsys.readouterr().out
    assert "sensor kind: load_cell (--sensor)" in text and "reversibility" in text


def test_cli_fit_bare_load_cell_table_and_bad_header(tables, tmp_path, capsys) -> None:
    _, data = tables["load_cell"]
    full = tmp_path / "lc.csv"
    write_bench_csv(data, full)
    bare = tmp_path / "bare.csv"
    bare.write_text("".join(ln for ln in full.read_text().splitlines(True) if ln[0] != "#"))
    assert main(["calibrate", "fit", str(bare), "-o", str(tmp_path / "a.json")]) == 0
    assert "sensor kind: load_cell (inferred)" in capsys.readouterr().out
    broken = tmp_path / "broken.csv"
    broken.write_text("# sensor: piezo\n" + bare.read_text())
    assert main(["calibrate", "fit", str(broken), "-o", str(tmp_path / "c.json")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sensor 'piezo'" in err


def test_calibrate_apply_uses_the_live_model(tables, tmp_path) -> None:
    """`calibrate apply` prints exactly what Calibration.apply(raw, t) (= the live stream) gives."""
    u, data = tables["fsr"]
    path = tmp_path / "bench.csv"
    write_bench_csv(data, path)
    rec = tmp_path / "cal.json"
    assert main(["calibrate", "fit", str(path), "-o", str(rec)]) == 0
    force, _ = calsim.verification_profile(u, 5)
    tr = calsim.simulate(u, force[:3000], seed=5)
    raw_csv = tmp_path / "raw.csv"
    raw_csv.write_text(
        "t,raw0\n" + "".join(f"{t:.6f},{r:.0f}\n" for t, r in zip(tr.t, tr.raw[:, 0], strict=True))
    )
    out = tmp_path / "f.csv"
    assert main(["calibrate", "apply", str(rec), str(raw_csv), "-o", str(out)]) == 0
    got = np.loadtxt(out, delimiter=",", skiprows=1)[:, 1]
    cal = Calibration.from_dict(
        {"channels": [c["model"] for c in parse_record(rec.read_text())["channels"]]}
    )
    t = np.round(tr.t, 6)
    want = cal.stream().process(t, tr.raw)[:, 0]
    assert np.array_equal(got, np.array([float(f"{v:.5f}") for v in want]))


def test_record_with_a_branch_calibration_loads_the_same_numbers(tmp_path) -> None:
    """`record --calibration` stores the record; loading the session applies it along t,
    exactly as Calibration.apply(raw, t) and the live stream do."""
    from knotsense.dsp.calibration_branch import BranchModel
    from knotsense.dsp.calibration_record import seal
    from knotsense.host.session.load import load_session

    model = BranchModel(
        "conductance", 5.0, 3000.0, 0.0, 1.0, (-3.0, 2.0), (3.0, 1.0), (-0.1,),
        creep=-0.03, contact=60.0, top=4095.0,
    )  # fmt: skip
    serial = "KS-BRANCH1"
    record = seal(
        {
            "format": "knotsense-calibration",
            "schema_version": 1,
            "device": {"serial": serial, "sensor": "fsr", "channels": 4},
            "date": "2026-01-01T00:00:00Z",
            "bench": {},
            "channels": [{"model": model.to_dict()} for _ in range(4)],
            "verdict": "pass",
        }
    )
    cal_path = tmp_path / "cal.json"
    cal_path.write_text(json.dumps(record))
    out = tmp_path / "s.ksr"
    url = f"sim://?seed=2&sensor=fsr&rate=100&serial={serial}"
    args = ["record", url, "-o", str(out), "--duration", "20", "--calibration", str(cal_path)]
    assert main([*args, "--plain"]) == 0
    s = load_session(out)
    cal = Calibration((model,) * 4)
    assert s.forces is not None
    assert np.array_equal(s.forces, cal.apply(s.raw, t=s.t), equal_nan=True)
    assert not np.array_equal(s.forces, cal.apply(s.raw), equal_nan=True)
