"""``knotsense batch`` on a local Dask cluster, read back with DuckDB."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from knotsense.errors import ConfigurationError
from knotsense.study import AnalysisOptions, expand_sources, run_batch
from knotsense.study.dataset import read_dataset

duckdb = pytest.importorskip("duckdb")


def _analyze_json(path: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    from knotsense.cli.main import main

    assert main(["analyze", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def batch(recordings: list[Path], tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("sources")
    for p in recordings:
        shutil.copy(p, folder / p.name)
    (folder / "broken.ksr").write_bytes(b"not a recording at all")
    out = tmp_path_factory.mktemp("dataset")
    result = run_batch([folder], out, workers=2)
    return folder, out, result


def test_every_session_lands_and_the_broken_one_is_reported(batch, recordings) -> None:
    folder, out, result = batch
    assert len(result.done) == len(recordings)
    assert result.workers == 2
    assert [f.source for f in result.failed] == [str((folder / "broken.ksr").resolve())]
    assert "not a knotsense recording" in result.failed[0].reason
    summary = json.loads((out / "_batch.json").read_text())
    assert summary["done"] == len(recordings) and len(summary["failed"]) == 1


def test_duckdb_reads_the_rows_analyze_prints(batch, recordings, capsys) -> None:
    folder, out, _ = batch
    con = duckdb.connect()
    sessions = con.sql(
        f"select * from read_parquet('{out}/sessions/*/*.parquet', hive_partitioning=true)"
    ).fetchall()
    columns = [
        d[0]
        for d in con.sql(
            f"select * from read_parquet('{out}/sessions/*/*.parquet', hive_partitioning=true)"
        ).description
    ]
    assert len(sessions) == len(recordings)
    rows = {
        Path(r[columns.index("source")]).name: dict(zip(columns, r, strict=True)) for r in sessions
    }
    assert len({r["device_serial"] for r in rows.values()}) == len(recordings)
    for path in recordings:
        expected = _analyze_json(folder / path.name, capsys)
        row = rows[path.name]
        assert row["releases"] == expected["summary"]["releases"]["count"]
        assert row["rocking_episodes"] == expected["summary"]["rocking"]["count"]
        assert row["duration_s"] == expected["summary"]["duration_s"]
        events = con.sql(
            "select kind, start_s, end_s from read_parquet("
            f"'{out}/events/*/*.parquet', hive_partitioning=true) "
            f"where session_id = '{row['session_id']}' order by start_s, kind"
        ).fetchall()
        want = sorted((e["kind"], e["start"], e["end"]) for e in expected["events"])
        assert sorted(events) == want, path.name
    kinds = dict(
        con.sql(
            f"select kind, count(*) from read_parquet('{out}/events/*/*.parquet') group by kind"
        ).fetchall()
    )
    assert kinds.get("release", 0) > 0 and kinds.get("contact", 0) > 0


def test_per_session_parameters_come_from_the_recording(batch, recordings) -> None:
    _, out, _ = batch
    table = read_dataset(out, "sessions").to_pylist()
    # study_sessions records each session with its own hold: 5, 6, 7 s in turn
    holds = {Path(r["source"]).name: r["hold_s"] for r in table}
    assert set(holds.values()) == {5.0, 6.0, 7.0}
    assert all(holds[p.name] == 5.0 + i % 3 for i, p in enumerate(recordings))


def test_a_rerun_skips_what_is_there_and_force_redoes_it(recordings, tmp_path) -> None:
    few = recordings[:3]
    out = tmp_path / "out"
    first = run_batch(few, out, workers=1)
    assert len(first.done) == 3
    again = run_batch(few, out, workers=1)
    assert again.done == () and sorted(again.skipped) == sorted(first.done)
    forced = run_batch(few, out, workers=1, force=True)
    assert sorted(forced.done) == sorted(first.done)
    assert len(read_dataset(out, "sessions")) == 3


def test_an_existing_cluster_by_scheduler_address(recordings, tmp_path) -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        result = run_batch(
            recordings[:2],
            tmp_path / "out",
            scheduler=cluster.scheduler_address,
            options=AnalysisOptions(hold=3.0),
        )
    assert len(result.done) == 2 and result.scheduler == cluster.scheduler_address
    assert {r["hold_s"] for r in read_dataset(tmp_path / "out").to_pylist()} == {3.0}


def test_sources_expand_folders_and_globs_and_refuse_nothing(recordings, tmp_path) -> None:
    folder = recordings[0].parent
    assert expand_sources([folder]) == sorted(p.resolve() for p in recordings)
    assert expand_sources([f"{folder}/fast_rocking-*.ksr", recordings[1]]) == sorted(
        p.resolve() for p in recordings if p.name.startswith("fast_rocking")
    )
    with pytest.raises(ConfigurationError, match="no such file or folder"):
        expand_sources([tmp_path / "missing"])
    with pytest.raises(ConfigurationError, match="matches no file"):
        expand_sources([f"{tmp_path}/*.ksr"])


def test_an_unreachable_scheduler_is_one_line(recordings, tmp_path) -> None:
    with pytest.raises(ConfigurationError, match="cannot reach the Dask scheduler"):
        run_batch(recordings[:1], tmp_path / "o", scheduler="tcp://127.0.0.1:9")
