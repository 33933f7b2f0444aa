"""The one exception tree of knotsense.

Every error the toolkit raises on purpose derives from :class:`KnotsenseError`,
so a caller (and the CLI) can catch exactly our failures and show them as one
line. This module imports nothing, so every layer -- protocol and dsp included
-- may use it without breaking the layering of DESIGN.md.

    KnotsenseError
    +-- ProtocolError            bytes that do not follow docs/protocol.md
    |   +-- FramingError         COBS or frame structure is broken
    |   +-- CrcError             the CRC-16 does not match
    |   +-- MessageError         a payload does not decode as its message type
    +-- TransportError           a link to a device cannot be used
    |   +-- UnknownSchemeError   no transport for the URL scheme
    |   +-- DeviceNotFoundError  the port, address or name does not exist
    |   +-- LinkLostError        an open link went away
    |   +-- EndOfData            a finite source (a replayed recording) ran out
    +-- DeviceTimeoutError       a device did not answer in time
    +-- CommandError             a device answered a command with an error
    +-- SessionFileError         a recording or export file is unusable
    +-- ConfigurationError       an impossible option, plan or scenario
    +-- CalibrationError         calibration cannot be fitted, loaded or trusted
    |   +-- BenchDataError       bench readings are unusable (which step, why)
    +-- SimulationError          the simulator was driven into an invalid state
"""

from __future__ import annotations


class KnotsenseError(Exception):
    """Root of every error raised by knotsense on purpose."""


class ProtocolError(KnotsenseError):
    """Bytes that do not follow protocol v1."""


class FramingError(ProtocolError):
    """A frame is structurally broken (COBS, header, length)."""


class CrcError(ProtocolError):
    """A frame's CRC-16/IBM-3740 does not match its contents."""


class MessageError(ProtocolError):
    """A payload does not decode as the message type its header names."""


class TransportError(KnotsenseError):
    """A link to a device cannot be opened or used."""


class UnknownSchemeError(TransportError):
    """No transport is registered for a device URL's scheme."""


class DeviceNotFoundError(TransportError):
    """The port, BLE address or advertised name does not exist."""


class LinkTooSmallError(TransportError):
    """The link cannot carry the framing the device speaks (a v1.0 device at a small MTU).

    Retrying does not help: the MTU is what the two stacks agreed on.
    """


class LinkLostError(TransportError):
    """An open link went away (disconnect, read error, closed pty)."""


class EndOfData(TransportError):
    """A finite source, such as a replayed recording, has delivered everything."""


class DeviceTimeoutError(KnotsenseError):
    """A device did not answer within the allowed time."""


class CommandError(KnotsenseError):
    """A device answered a command with a non-OK status.

    Attributes:
        status: the protocol status code the device returned.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SessionFileError(KnotsenseError):
    """A recording or export file is missing, malformed or of another format."""


class ConfigurationError(KnotsenseError):
    """An impossible option, plan, scenario or parameter combination."""


class CalibrationError(KnotsenseError):
    """A calibration cannot be fitted, loaded, verified or applied."""


class BenchDataError(CalibrationError):
    """Bench readings are unusable; the message says which step and why."""


class SimulationError(KnotsenseError):
    """The simulator was asked for something it cannot do."""
