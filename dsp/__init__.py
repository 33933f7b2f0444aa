"""knotsense.dsp: streaming filters, calibration models, detectors, session metrics.

numpy/scipy in, arrays and frozen event records out. No I/O, and nothing of
ours is imported here except the exception tree.
"""

# Model kinds register themselves when their module loads; the two-branch model
# (hysteresis, creep) lives apart from the base models, so load it with the package.
from knotsense.dsp import calibration_branch as _calibration_branch  # noqa: F401
