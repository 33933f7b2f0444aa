"""knotsense.protocol: the wire format of protocol v1 (frames, messages, COBS, CRC). No I/O."""
