"""Configuration of a simulated device: :class:`SimConfig`, :class:`FaultConfig`, URL parsing.

One string picks a simulated device everywhere (DESIGN.md, "Device URLs")::

    sim://?scenario=back_session&seed=3&speed=50&faults=drop:0.01,reboot_at:30
    sim+pty://?...   sim+ble://?...       (same query; sim+ble implies framing=packet)

Query keys: ``scenario``, ``seed``, ``speed``, ``faults``, ``serial``, ``sensor``
(load_cell | fsr), ``channels`` (1..8), ``rate`` (Hz), ``framing`` (stream |
packet), ``max_frame_size`` (20..244), ``mtu`` (BLE ATT MTU, sets
max_frame_size to MTU - 3), ``nvm`` (path of the NVM file). Links may accept
keys of their own; they must remove them before calling :meth:`SimConfig.from_url`.

Fault grammar (``faults=``, also the ``faults`` string of a scenario file):
comma-separated ``name:value`` items; T and D are host-clock seconds since
power-on; channels are 0-based; items marked repeatable may appear more than once::

    bit_errors:RATE        bit error rate per bit; applied to each outgoing frame before
                           COBS stuffing, so every corrupted frame costs exactly one CRC error
    drop:P                 probability that an outgoing frame is lost on the link
    dup:P                  probability that an outgoing frame is delivered twice
    burst:P[xN]            probability per frame that a burst starts; a burst corrupts
                           N consecutive frames (default 8)
    link_drop:T[+D]        the link is down from T for D seconds (default 2)    repeatable
    reboot_at:T            watchdog reboot at T                                  repeatable
    stuck:C[@T]            channel C freezes at its raw value from T (default 0) repeatable
    saturate:C[@T]         channel C reads ADC full scale from T (default 0)     repeatable
    slow_reader:R[@T[+D]]  the host drains at most R bytes/s from T for D s (default: from
                           0, for ever); the device's 4096-byte transmit buffer overflows
    tx_buffer:BYTES        size of that transmit buffer (default 4096)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Self
from urllib.parse import parse_qsl, urlsplit

from knotsense.errors import ConfigurationError
from knotsense.protocol import MAX_FRAME_SIZE, MIN_FRAME_SIZE, Framing

SCHEMES = ("sim", "sim+pty", "sim+ble")
DEFAULT_TX_BUFFER = 4096
DEFAULT_BURST_LENGTH = 8
DEFAULT_LINK_DROP_S = 2.0


@dataclass(frozen=True)
class ChannelFault:
    """A stuck or saturated channel from host time ``start``."""

    channel: int
    start: float = 0.0


@dataclass(frozen=True)
class Window:
    """A host-time window ``[start, start + duration)``; ``duration=inf`` is open-ended."""

    start: float
    duration: float = math.inf

    @property
    def end(self) -> float:
        return self.start + self.duration

    def contains(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True)
class FaultConfig:
    """Faults to inject; the empty default is a perfect device on a perfect link."""

    bit_errors: float = 0.0
    drop: float = 0.0
    dup: float = 0.0
    burst: float = 0.0
    burst_length: int = DEFAULT_BURST_LENGTH
    link_drops: tuple[Window, ...] = ()
    reboots: tuple[float, ...] = ()
    stuck: tuple[ChannelFault, ...] = ()
    saturate: tuple[ChannelFault, ...] = ()
    slow_reader_bps: float = 0.0
    slow_reader: Window | None = None
    tx_buffer: int = DEFAULT_TX_BUFFER

    @property
    def link_faults(self) -> bool:
        """Whether any per-frame link fault is configured (the slow path is needed)."""
        return bool(self.bit_errors or self.drop or self.dup or self.burst or self.slow_reader_bps)

    @property
    def empty(self) -> bool:
        return self == FaultConfig()

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse the fault grammar of the module docstring.

        Raises:
            ConfigurationError: one line naming the bad item.
        """
        values: dict[str, object] = {}
        lists: dict[str, list] = {"link_drops": [], "reboots": [], "stuck": [], "saturate": []}
        for raw in text.split(","):
            item = raw.strip()
            if not item:
                continue
            name, sep, value = item.partition(":")
            name = name.strip()
            value = value.strip()
            if not sep or not value:
                raise ConfigurationError(f"fault {item!r}: expected name:value")
            try:
                _parse_item(name, value, values, lists)
            except ValueError as exc:
                raise ConfigurationError(f"fault {item!r}: {exc}") from None
        return cls(
            **values,  # type: ignore[arg-type]
            link_drops=tuple(lists["link_drops"]),
            reboots=tuple(sorted(lists["reboots"])),
            stuck=tuple(lists["stuck"]),
            saturate=tuple(lists["saturate"]),
        )

    def merged(self, other: FaultConfig) -> FaultConfig:
        """*other* on top of self: its rates win where set, its timed faults are added."""
        base = FaultConfig()
        changes = {}
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, tuple):
                changes[f.name] = mine + theirs
            elif theirs != getattr(base, f.name):
                changes[f.name] = theirs
        return replace(self, **changes)

    def to_string(self) -> str:
        """The fault grammar that parses back to this configuration."""
        out = []
        for name in ("bit_errors", "drop", "dup"):
            if getattr(self, name):
                out.append(f"{name}:{getattr(self, name):g}")
        if self.burst:
            out.append(f"burst:{self.burst:g}x{self.burst_length}")
        out += [f"link_drop:{w.start:g}+{w.duration:g}" for w in self.link_drops]
        out += [f"reboot_at:{t:g}" for t in self.reboots]
        out += [f"stuck:{c.channel}@{c.start:g}" for c in self.stuck]
        out += [f"saturate:{c.channel}@{c.start:g}" for c in self.saturate]
        if self.slow_reader_bps:
            w = self.slow_reader or Window(0.0)
            out.append(f"slow_reader:{self.slow_reader_bps:g}@{w.start:g}+{w.duration:g}")
        if self.tx_buffer != DEFAULT_TX_BUFFER:
            out.append(f"tx_buffer:{self.tx_buffer}")
        return ",".join(out)


def _prob(value: str, upper: float = 1.0) -> float:
    p = float(value)
    if not 0.0 <= p <= upper or math.isnan(p):
        raise ValueError(f"must be between 0 and {upper:g}")
    return p


def _time(value: str) -> float:
    t = float(value)
    if not math.isfinite(t) or t < 0:
        raise ValueError("time must be a finite number of seconds >= 0")
    return t


def _channel_fault(value: str) -> ChannelFault:
    ch, _, start = value.partition("@")
    channel = int(ch)
    if not 0 <= channel < 8:
        raise ValueError("channel must be 0..7")
    return ChannelFault(channel, _time(start) if start else 0.0)


def _parse_item(name: str, value: str, values: dict, lists: dict) -> None:
    if name == "bit_errors":
        values["bit_errors"] = _prob(value, 0.01)
    elif name in ("drop", "dup"):
        values[name] = _prob(value, 0.5)
    elif name == "burst":
        p, _, n = value.partition("x")
        values["burst"] = _prob(p, 0.5)
        if n:
            values["burst_length"] = int(n)
            if not 1 <= values["burst_length"] <= 10_000:
                raise ValueError("burst length must be 1..10000")
    elif name == "link_drop":
        start, _, dur = value.replace(" ", "+").partition("+")
        duration = _time(dur) if dur else DEFAULT_LINK_DROP_S
        if duration <= 0:
            raise ValueError("duration must be > 0")
        lists["link_drops"].append(Window(_time(start), duration))
    elif name == "reboot_at":
        lists["reboots"].append(_time(value))
    elif name in ("stuck", "saturate"):
        lists[name].append(_channel_fault(value))
    elif name == "slow_reader":
        rate, _, when = value.partition("@")
        values["slow_reader_bps"] = float(rate)
        if not values["slow_reader_bps"] > 0 or not math.isfinite(values["slow_reader_bps"]):
            raise ValueError("rate must be > 0 bytes/s")
        start, _, dur = when.replace(" ", "+").partition("+")
        values["slow_reader"] = Window(
            _time(start) if start else 0.0, _time(dur) if dur else math.inf
        )
    elif name == "tx_buffer":
        values["tx_buffer"] = int(value)
        if not 256 <= values["tx_buffer"] <= 1 << 20:
            raise ValueError("tx_buffer must be 256..1048576 bytes")
    else:
        raise ValueError(
            "unknown fault (known: bit_errors, drop, dup, burst, link_drop, reboot_at, "
            "stuck, saturate, slow_reader, tx_buffer)"
        )


SENSORS = ("load_cell", "fsr")


@dataclass(frozen=True)
class SimConfig:
    """Everything that picks one simulated device; one value fixes every byte it sends."""

    scenario: str = "back_session"
    """Name of a shipped scenario or a path to a .toml file."""
    seed: int = 0
    speed: float | None = None
    """None: as fast as possible (virtual time); 1.0 real time; 50 fifty times real time."""
    faults: FaultConfig = field(default_factory=FaultConfig)
    serial_number: str | None = None
    """None: derived from the seed, ``KS-%06d``."""
    sensor: str | None = None
    """None: the scenario's choice; else "load_cell" or "fsr"."""
    channels: int | None = None
    framing: Framing = Framing.STREAM
    max_frame_size: int = MAX_FRAME_SIZE
    nvm_path: str | None = None
    rate_hz: int | None = None
    """Sample rate at boot; None: the scenario's choice."""

    def __post_init__(self) -> None:
        if self.speed is not None and not (self.speed > 0 and math.isfinite(self.speed)):
            raise ConfigurationError(f"speed must be > 0, got {self.speed}")
        if self.sensor is not None and self.sensor not in SENSORS:
            raise ConfigurationError(f"sensor must be one of {', '.join(SENSORS)}")
        if self.channels is not None and not 1 <= self.channels <= 8:
            raise ConfigurationError(f"channels must be 1..8, got {self.channels}")
        if not MIN_FRAME_SIZE <= self.max_frame_size <= MAX_FRAME_SIZE:
            raise ConfigurationError(
                f"max_frame_size must be {MIN_FRAME_SIZE}..{MAX_FRAME_SIZE}, "
                f"got {self.max_frame_size}"
            )
        if not 0 <= self.seed < 2**63:
            raise ConfigurationError(f"seed must be 0..2**63-1, got {self.seed}")

    @property
    def serial(self) -> str:
        """The unit's serial number (explicit or derived from the seed)."""
        return self.serial_number or f"KS-{self.seed:06d}"

    @classmethod
    def from_url(cls, url: str) -> SimConfig:
        """Parse a ``sim://``, ``sim+pty://`` or ``sim+ble://`` URL (see the module docstring).

        Raises:
            ConfigurationError: bad scheme, unknown key or bad value (one line).
        """
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise ConfigurationError(
                f"not a simulator URL: {url!r} (schemes: {', '.join(s + '://' for s in SCHEMES)})"
            )
        if parts.netloc or parts.path.strip("/"):
            raise ConfigurationError(
                f"simulator URL takes only a query, e.g. {scheme}://?scenario=back_session"
            )
        kwargs: dict[str, object] = {}
        if scheme == "sim+ble":
            kwargs["framing"] = Framing.PACKET
        # A literal "+" (as in link_drop:30+2) must not turn into a space.
        for key, value in parse_qsl(parts.query.replace("+", "%2B"), keep_blank_values=True):
            parse = _URL_KEYS.get(key)
            if parse is None:
                raise ConfigurationError(
                    f"unknown simulator URL key {key!r} (known: {', '.join(_URL_KEYS)})"
                )
            try:
                name, parsed = parse(value)
            except ConfigurationError:
                raise
            except ValueError as exc:
                raise ConfigurationError(f"bad value for {key}={value!r}: {exc}") from None
            kwargs[name] = parsed
        return cls(**kwargs)  # type: ignore[arg-type]

    def to_query(self) -> str:
        """The URL query that :meth:`from_url` parses back to this configuration."""
        items = [("scenario", self.scenario), ("seed", str(self.seed))]
        if self.speed is not None:
            items.append(("speed", f"{self.speed:g}"))
        if not self.faults.empty:
            items.append(("faults", self.faults.to_string()))
        optional = {
            "serial": self.serial_number,
            "sensor": self.sensor,
            "channels": self.channels,
            "rate": self.rate_hz,
            "nvm": self.nvm_path,
        }
        items += [(k, str(v)) for k, v in optional.items() if v is not None]
        if self.framing is not Framing.STREAM:
            items.append(("framing", self.framing.value))
        if self.max_frame_size != MAX_FRAME_SIZE:
            items.append(("max_frame_size", str(self.max_frame_size)))
        return "&".join(f"{k}={v}" for k, v in items)


def _nonempty(value: str) -> str:
    if not value:
        raise ValueError("empty")
    return value


def _speed(value: str) -> float | None:
    if value.lower() in ("max", "none", "0", ""):
        return None
    return float(value)


def _framing(value: str) -> Framing:
    try:
        return Framing(value.lower())
    except ValueError:
        raise ValueError("framing must be stream or packet") from None


def _mtu(value: str) -> int:
    mtu = int(value)
    if not 23 <= mtu <= 517:
        raise ValueError("mtu must be 23..517")
    return min(MAX_FRAME_SIZE, mtu - 3)


_URL_KEYS = {
    "scenario": lambda v: ("scenario", _nonempty(v)),
    "seed": lambda v: ("seed", int(v)),
    "speed": lambda v: ("speed", _speed(v)),
    "faults": lambda v: ("faults", FaultConfig.parse(v)),
    "serial": lambda v: ("serial_number", _nonempty(v)),
    "sensor": lambda v: ("sensor", _nonempty(v)),
    "channels": lambda v: ("channels", int(v)),
    "rate": lambda v: ("rate_hz", int(v)),
    "framing": lambda v: ("framing", _framing(v)),
    "max_frame_size": lambda v: ("max_frame_size", int(v)),
    "mtu": lambda v: ("max_frame_size", _mtu(v)),
    "nvm": lambda v: ("nvm_path", _nonempty(v)),
}
