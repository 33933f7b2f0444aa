"""CRC-16/IBM-3740 (a.k.a. CRC-16/CCITT-FALSE), the frame check of protocol v1.

Parameters: poly 0x1021, init 0xFFFF, no reflection, no final XOR; check value
0x29B1 for ``b"123456789"``. The frame stores it most significant byte first,
so the CRC computed over a whole frame *including* its CRC is 0 (the residue),
which lets a receiver check a frame in one pass.
"""

from __future__ import annotations

from binascii import crc_hqx

CRC_INIT = 0xFFFF
CHECK_VALUE = 0x29B1


def crc16(data: bytes | bytearray | memoryview, crc: int = CRC_INIT) -> int:
    """CRC-16/IBM-3740 of *data*, optionally continuing from a previous *crc*."""
    return crc_hqx(data, crc)
