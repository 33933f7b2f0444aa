"""knotsense.firmware_sim: the simulated massager, its firmware and its links.

Speaks the real wire format (knotsense.protocol) and knows nothing of the host.
"""
