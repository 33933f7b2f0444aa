"""Motion direction in the CLI (issue 14): rocking axis and circling in analyze and plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support.motion import CIRCLE, RING, ROCK_AXIS, motion_session

from knotsense.cli.main import main
from knotsense.host.tables import load_force_table

POSITIONS = ";".join(f"{x:g},{y:g}" for x, y in RING)


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t, x = motion_session(1)
    path = tmp_path_factory.mktemp("motion") / "motion.csv"
    with path.open("w") as fh:
        fh.write("t,f0,f1,f2,f3\n")
        np.savetxt(fh, np.column_stack([t, x]), delimiter=",", fmt="%.5f")
    return path


def test_analyze_json_and_text_show_axis_and_circling(
    capsys: pytest.CaptureFixture[str], csv_file: Path
) -> None:
    base = ["analyze", str(csv_file), "--release-threshold", "150", "--positions", POSITIONS]
    assert main([*base, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rock = [e for e in doc["events"] if e["kind"] == "rocking"]
    circ = [e for e in doc["events"] if e["kind"] == "circling"]
    assert len(rock) == 1 and len(circ) == 1
    assert abs(rock[0]["axis"] - ROCK_AXIS) < 3 and rock[0]["extent"] > 5
    assert circ[0]["direction"] == "ccw" and abs(circ[0]["turns"] - 6) < 0.6
    assert abs(circ[0]["start"] - CIRCLE[0]) < 0.6
    assert doc["summary"]["circling"]["count"] == 1
    assert doc["summary"]["rocking"]["axes_deg"] == [round(rock[0]["axis"], 1)]
    assert main(base) == 0
    text = capsys.readouterr().out
    assert "circling      1 episode(s)" in text and "turns ccw" in text
    assert " deg, " in text  # the rocking line carries its axis


def test_analyze_without_positions_has_no_axis(
    capsys: pytest.CaptureFixture[str], csv_file: Path
) -> None:
    assert main(["analyze", str(csv_file), "--release-threshold", "150", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert not [e for e in doc["events"] if e["kind"] == "circling"]
    assert all(e["axis"] is None for e in doc["events"] if e["kind"] == "rocking")


@pytest.mark.parametrize(
    ("positions", "message"),
    [("1,2;3", "positions must look like"), ("18,0;0,18", "2 positions for 4 channels")],
)
def test_bad_positions_give_one_line_errors(
    capsys: pytest.CaptureFixture[str], csv_file: Path, positions: str, message: str
) -> None:
    argv = ["analyze", str(csv_file), "--release-threshold", "150", "--positions", positions]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage, then the one error line
        code = exc.code
    assert code not in (0, None)
    err = capsys.readouterr().err.strip()
    assert message in err.splitlines()[-1] and "Traceback" not in err


def test_plot_draws_circling_and_axes(tmp_path: Path, csv_file: Path) -> None:
    out = tmp_path / "motion.png"
    argv = ["plot", str(csv_file), "--release-threshold", "150", "--positions", POSITIONS]
    assert main([*argv, "-o", str(out)]) == 0
    assert out.stat().st_size > 10_000


def test_recording_carries_channel_positions(tmp_path: Path) -> None:
    path = tmp_path / "s.ksr"
    url = "sim://?scenario=circling&seed=2"
    assert main(["record", url, "-o", str(path), "--duration", "2", "--json"]) == 0
    meta = load_force_table(path).meta
    assert len(meta["positions"]) == 6 and any(x or y for x, y in meta["positions"])
