"""Makes the helpers under ``tests/`` (``support``, the trace corpus) importable by every test."""

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
