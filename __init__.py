"""knotsense: the toolkit for a sensorised trigger-point massager.

The front door (nothing heavy is imported until it is used)::

    import knotsense

    with knotsense.connect("sim://?scenario=back_session&seed=3") as dev:
        dev.start_stream(rate_hz=250)
        for item in dev.stream(duration=2):
            print(item)

    session = knotsense.load("session.ksr")            # a recording (or a CSV table)
    result = knotsense.analyze(session, release_threshold=120.0)
    print(result.summary.to_dict())

and, async, :func:`knotsense.aio.connect`. The subpackages are the layers of
DESIGN.md:

- :mod:`knotsense.protocol` -- the wire format (no I/O).
- :mod:`knotsense.dsp` -- filters, calibration models, detectors (no I/O).
- :mod:`knotsense.firmware_sim` -- the simulated device and its links.
- :mod:`knotsense.host` -- transports, device client, recording and export.
- :mod:`knotsense.calibration` -- bench calibration.
- :mod:`knotsense.cli` -- the ``knotsense`` command (the application layer).
- :mod:`knotsense.hil` -- the hardware-in-the-loop pytest suite.

Importing this package is cheap: no subpackage (and neither numpy nor bleak)
is imported until a front-door function or class is used.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from knotsense._version import __version__
from knotsense.errors import KnotsenseError

if TYPE_CHECKING:
    from knotsense import aio
    from knotsense.dsp.results import Analysis
    from knotsense.host.device import AsyncDevice
    from knotsense.host.session import Session
    from knotsense.host.sync import Device
    from knotsense.host.tables import ForceTable

__all__ = [
    "Analysis",
    "AsyncDevice",
    "Device",
    "ForceTable",
    "KnotsenseError",
    "Session",
    "__version__",
    "aio",
    "analyze",
    "connect",
    "load",
]

_LAZY = {
    "Analysis": "knotsense.dsp.results",
    "AsyncDevice": "knotsense.host.device",
    "Device": "knotsense.host.sync",
    "ForceTable": "knotsense.host.tables",
    "Session": "knotsense.host.session",
}
"""Classes of the front door -> the module that defines them (imported on first use)."""


def connect(url: str, **options: Any) -> Device:
    """Connect to the device at *url* and return a blocking :class:`~knotsense.host.sync.Device`.

    Args:
        url: any device URL (DESIGN.md "Device URLs"): ``/dev/ttyACM0``,
            ``ble://AA:BB:CC:DD:EE:FF``, ``sim://?scenario=back_session&seed=3``,
            ``replay://session.ksr`` ...
        **options: passed to :class:`~knotsense.host.device.AsyncDevice`
            (``command_timeout``, ``retries``, ``reconnect``, ``on_raw``).

    Use it as a context manager (``with knotsense.connect(url) as dev:``) or
    call ``dev.close()``.

    Raises:
        UnknownSchemeError, DeviceNotFoundError, TransportError: the URL cannot be opened.
    """
    from knotsense.host.sync import Device

    return Device.connect(url, **options)


def load(path: str | os.PathLike[str], *, salvage: bool = False) -> Session | ForceTable:
    """Open a session file: a recording gives a Session, a CSV a ForceTable.

    See :func:`knotsense.host.analysis.load`.
    """
    from knotsense.host.analysis import load as _load

    return _load(path, salvage=salvage)


def analyze(source: Session | ForceTable | str | os.PathLike[str], **config: Any) -> Analysis:
    """Releases, rocking, overpressure and contacts of a session (a path or a loaded one).

    *config* holds :class:`~knotsense.dsp.config.PipelineConfig` fields; the
    result's ``to_dict()`` equals ``knotsense analyze --json``. See
    :func:`knotsense.host.analysis.analyze`.
    """
    from knotsense.host.analysis import analyze as _analyze

    return _analyze(source, **config)


def __getattr__(name: str) -> Any:
    if name == "aio":
        return importlib.import_module("knotsense.aio")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'knotsense' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found once, then a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
