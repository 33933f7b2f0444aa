"""Protocol tests: hypothesis settings live in protocol_strategies.py (derandomized)."""

from __future__ import annotations

import protocol_strategies  # noqa: F401  (registers the "knotsense-protocol" profile)
