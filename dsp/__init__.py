"""knotsense.dsp: streaming filters, calibration models, detectors, session metrics.

numpy/scipy in, arrays and frozen event records out. No I/O, and nothing of
ours is imported here except the exception tree.
"""
