"""tests/cli reuses the synthetic recordings of tests/host (``test_session_support``)."""

import sys
from pathlib import Path

HOST_TESTS = str(Path(__file__).resolve().parents[1] / "host")
if HOST_TESTS not in sys.path:
    sys.path.insert(0, HOST_TESTS)
