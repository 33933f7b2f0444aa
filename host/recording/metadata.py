"""JSON in a recording: turning host objects into JSON types, and the host facts."""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import platform
import socket
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from knotsense._version import __version__
from knotsense.errors import ConfigurationError
from knotsense.host.recording.format import FORMAT_MAJOR, FORMAT_MINOR

__all__ = ["default_metadata", "json_bytes", "jsonable"]


def jsonable(obj: Any) -> Any:
    """*obj* as plain JSON types: dataclasses to dicts, enums to ints, tuples to lists.

    Device info and stream config can be passed as protocol messages; numpy
    scalars and arrays become numbers and lists; bytes become hex strings.
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, int | float):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).hex()
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return jsonable(obj.tolist())
    if hasattr(obj, "to_dict"):
        return jsonable(obj.to_dict())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a recording's JSON")


def json_bytes(obj: Any) -> bytes:
    """Compact JSON of *obj* for a record body; ConfigurationError when it is not JSON-safe."""
    try:
        return json.dumps(jsonable(obj), separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"recording metadata is not JSON-safe: {exc}") from None


def default_metadata(now: float | None = None) -> dict[str, Any]:
    """The host facts every recording carries (start time, host, OS, versions)."""
    now = time.time() if now is None else now
    return {
        "format": f"knotsense-recording/{FORMAT_MAJOR}.{FORMAT_MINOR}",
        "start_time": datetime.fromtimestamp(now, UTC).isoformat(),
        "start_unix": now,
        "host": socket.gethostname(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "knotsense": __version__,
    }
