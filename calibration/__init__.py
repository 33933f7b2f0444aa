"""knotsense.calibration: bench procedures, fitting, acceptance and threshold programming."""
