"""The HIL plugin (knotsense.hil.plugin) is registered as a pytest entry point.

Installing knotsense makes ``pytest --pyargs knotsense.hil --device URL`` know
the suite's options; nothing needs loading here.
"""
