"""Short calibrated simulated recordings for the study tests (made once per run)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from knotsense.dsp.pipeline import PipelineConfig
from knotsense.host.demo import demo_url, provision
from knotsense.host.record import record_session

SCENARIOS = ("back_session", "fast_rocking", "quiet_baseline", "heavy_noise")


async def _make(path: Path, scenario: str, seed: int, duration: float, hold: float) -> None:
    nvm = path.with_suffix(".nvm.json")
    url = demo_url(scenario, seed, nvm, 80)
    _, truth = await provision(url)
    config = PipelineConfig(
        release_threshold=truth["release_threshold_n"], max_force=truth["max_force_n"], hold=hold
    )
    await record_session(url, path, duration_s=duration, pipeline_config=config, overwrite=True)
    nvm.unlink()


def make_sessions(folder: Path, count: int, duration: float = 20.0) -> list[Path]:
    """*count* recordings (scenarios in turn, seeds 1..), each *duration* s of device time.

    Each is recorded with its own release hold (5, 6 or 7 s, in turn), which the
    recording carries for later analysis.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        scenario = SCENARIOS[i % len(SCENARIOS)]
        path = folder / f"{scenario}-{i:03d}.ksr"
        asyncio.run(_make(path, scenario, i + 1, duration, 5.0 + i % 3))
        paths.append(path)
    return paths
