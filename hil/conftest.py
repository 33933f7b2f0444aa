"""Loads the HIL plugin when pytest collects knotsense.hil (``pytest --pyargs knotsense.hil``)."""

pytest_plugins = ["knotsense.hil.plugin"]
