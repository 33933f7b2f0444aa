"""knotsense.host: transports, the device client, recording, export and the CLI.

Imports protocol and dsp; reaches the simulator only lazily, through the
transport registry.
"""
