"""``knotsense sim``: scenario listing, ground-truth export and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knotsense.cli.main import main


def test_list_scenarios_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--list-scenarios"]) == 0
    names = capsys.readouterr().out.split()
    assert "back_session" in names
    assert main(["sim", "--list-scenarios", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"scenarios": names}


def test_truth_writes_the_scenarios_ground_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from knotsense.firmware_sim.scenario import load_scenario

    out = tmp_path / "truth.json"
    assert main(["sim", "--scenario", "back_session", "--seed", "3", "--truth", str(out)]) == 0
    assert capsys.readouterr().err == ""
    expected = load_scenario("back_session").ground_truth(seed=3).to_dict()
    assert json.loads(out.read_text()) == json.loads(json.dumps(expected))


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["sim"], "exactly one of"),
        (["sim", "--pty", "--list-scenarios"], "exactly one of"),
        (["sim", "--pty", "--seed", "abc"], "--seed"),
        (["sim", "--pty", "--speed", "-2"], "--speed"),
        (["sim", "--pty", "--drop", "explode"], "--drop"),
        (["sim", "--truth", "x.json", "--scenario", "no_such_scenario"], "no_such_scenario"),
        (["sim", "--pty", "--faults", "bogus:1"], "bogus"),
        (["sim", "--truth", "/nonexistent-dir/x.json"], "cannot write"),
    ],
)
def test_bad_options_exit_non_zero_with_one_line(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) != 0
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("knotsense sim: error:")
    assert needle in lines[0]
    assert "Traceback" not in captured.err
