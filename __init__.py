"""knotsense: the toolkit for a sensorised trigger-point massager.

The subpackages are the layers of DESIGN.md:

- :mod:`knotsense.protocol` -- the wire format (no I/O).
- :mod:`knotsense.dsp` -- filters, calibration models, detectors (no I/O).
- :mod:`knotsense.firmware_sim` -- the simulated device and its links.
- :mod:`knotsense.host` -- transports, device client, recording and export.
- :mod:`knotsense.calibration` -- bench calibration.
- :mod:`knotsense.cli` -- the ``knotsense`` command (the application layer).
- :mod:`knotsense.hil` -- the hardware-in-the-loop pytest suite.

Importing this package is cheap: no subpackage is imported here.
"""

from knotsense._version import __version__
from knotsense.errors import KnotsenseError

__all__ = ["KnotsenseError", "__version__"]
