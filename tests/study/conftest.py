"""Fixtures for the study tests: a folder of short simulated recordings, made once."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="the study extra is not installed")
pytest.importorskip("pyarrow", reason="the study extra is not installed")

from study_sessions import make_sessions

SESSIONS = 24


@pytest.fixture(scope="session")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """24 calibrated 12 s recordings (four scenarios, seeds 1-24)."""
    return make_sessions(tmp_path_factory.mktemp("recordings"), SESSIONS, duration=12.0)
