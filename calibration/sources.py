"""Bench reference sources: force gauges over serial, manual dead weights, and their parsing.

Two gauge dialects are understood (both ASCII, one request, one line back):

* **Mark-10 style** -- send ``?`` + CR, get ``12.34 N`` + CRLF (the unit may be
  ``N``, ``kN``, ``mN``, ``kgf``/``kg``, ``gf``/``g``, ``lbf``/``lb``, ``ozf``/``oz``);
  an overloaded gauge answers ``OVERLOAD`` (or a value with ``OL``).
* **Imada style** -- send ``D`` + CR, get ``+0.469NTO`` + CR(LF): sign, value,
  unit (``N``, ``K`` kgf, ``L`` lbf, ``O`` ozf, ``G`` gf), mode (``T`` track,
  ``P`` peak), judgement (``O`` ok, ``H`` high, ``L`` low; ``E`` or ``OL`` overload).

Every reading is converted to newtons. An overload is never a number: it raises
:class:`GaugeOverload` (a :class:`~knotsense.errors.BenchDataError`), which the
bench turns into a refusal naming the step.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from knotsense.errors import BenchDataError, TransportError

G0 = 9.80665
"""Standard gravity, m/s^2 (kgf -> N)."""

UNITS_TO_N: dict[str, float] = {
    "n": 1.0,
    "kn": 1000.0,
    "mn": 0.001,
    "kgf": G0,
    "kg": G0,
    "gf": G0 / 1000.0,
    "g": G0 / 1000.0,
    "lbf": 4.4482216152605,
    "lb": 4.4482216152605,
    "ozf": 0.27801385095378,
    "oz": 0.27801385095378,
}
"""Force units a gauge may report, in newtons per unit."""

IMADA_UNITS = {"N": "n", "K": "kgf", "L": "lbf", "O": "ozf", "G": "gf"}
DIALECTS = ("mark10", "imada")


class GaugeOverload(BenchDataError):
    """The reference gauge reports an overload (beyond its range)."""


def to_newtons(value: float, unit: str) -> float:
    """*value* in *unit* (case-insensitive, see :data:`UNITS_TO_N`) as newtons."""
    factor = UNITS_TO_N.get(unit.strip().lower())
    if factor is None:
        raise BenchDataError(f"gauge reported an unknown unit {unit!r}")
    return value * factor


_MARK10 = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*([A-Za-z]+)?\s*$")
_IMADA = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?)([NKLOG])([TP]?)([OHLE]?)\s*$")


def parse_mark10(line: str | bytes, default_unit: str = "N") -> float:
    """Newtons from one Mark-10 style answer (``"12.34 N"``); overload raises GaugeOverload."""
    text = line.decode("ascii", "replace") if isinstance(line, bytes) else line
    text = text.strip()
    if "OVER" in text.upper() or re.search(r"\bOL\b", text.upper()):
        raise GaugeOverload(f"reference gauge overload ({text!r})")
    m = _MARK10.match(text)
    if not m:
        raise BenchDataError(f"reference gauge sent an unreadable line {text!r}")
    return to_newtons(float(m.group(1)), m.group(2) or default_unit)


def parse_imada(line: str | bytes) -> float:
    """Newtons from one Imada style answer (``"+0.469NTO"``); overload raises GaugeOverload."""
    text = line.decode("ascii", "replace") if isinstance(line, bytes) else line
    text = text.strip()
    if text.upper().endswith("OL") or text.upper().startswith("OL"):
        raise GaugeOverload(f"reference gauge overload ({text!r})")
    m = _IMADA.match(text)
    if not m:
        raise BenchDataError(f"reference gauge sent an unreadable line {text!r}")
    if m.group(4) == "E":
        raise GaugeOverload(f"reference gauge overload ({text!r})")
    return to_newtons(float(m.group(1)), IMADA_UNITS[m.group(2)])


class ReferenceSource(Protocol):
    """Where the bench's reference force comes from."""

    kind: str

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


@dataclass
class GaugeInfo:
    dialect: str
    port: str
    model: str = ""


class SerialGauge:
    """A force gauge on a serial port (pyserial URL or path), polled one line at a time.

    Args:
        url: ``/dev/ttyUSB0``, ``serial:///dev/ttyUSB0?baud=115200``, any pyserial URL.
        dialect: ``mark10`` or ``imada``.
        baud: 9600-115200 (ignored on a pty).
        timeout: seconds to wait for an answer.
    """

    kind = "gauge"

    def __init__(
        self, url: str, dialect: str = "mark10", baud: int = 115200, timeout: float = 1.0
    ) -> None:
        if dialect not in DIALECTS:
            raise BenchDataError(
                f"unknown gauge dialect {dialect!r} (known: {', '.join(DIALECTS)})"
            )
        import serial

        self.url = url
        self.dialect = dialect
        port = url[len("serial://") :] if url.startswith("serial://") else url
        if "?baud=" in port:
            port, _, b = port.partition("?baud=")
            baud = int(b)
        try:
            self._port = serial.serial_for_url(port, baudrate=baud, timeout=timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TransportError(f"cannot open reference gauge {url}: {exc}") from None
        self._port.reset_input_buffer()
        self.timeout = timeout
        self.queries = 0

    def read_n(self) -> float:
        """One reading, newtons (raises GaugeOverload, TransportError)."""
        request = b"?\r" if self.dialect == "mark10" else b"D\r"
        try:
            self._port.write(request)
            line = self._port.read_until(b"\n")
        except OSError as exc:
            raise TransportError(f"reference gauge {self.url}: {exc}") from None
        self.queries += 1
        # Imada may end lines with CR only: accept a complete CR-terminated answer.
        if not line.endswith(b"\n") and not line.endswith(b"\r"):
            raise TransportError(f"reference gauge {self.url}: no answer within {self.timeout:g} s")
        if self.dialect == "mark10":
            return parse_mark10(line)
        return parse_imada(line)

    def describe(self) -> dict[str, Any]:
        return {"kind": "gauge", "dialect": self.dialect, "port": self.url}

    def close(self) -> None:
        self._port.close()


class ManualSource:
    """Dead weights or forces placed by an operator, prompted one step at a time.

    Args:
        prompt: shows a message and waits for the operator (default: ``input``).
        masses: the plan's forces are given as masses (kg) in the prompts.
    """

    kind = "manual"

    def __init__(self, prompt: Callable[[str], object] | None = None, masses: bool = True) -> None:
        self._prompt = prompt or input
        self.masses = masses

    def ask(self, message: str) -> None:
        self._prompt(message)

    def place_text(self, force_n: float) -> str:
        if force_n == 0:
            return "remove all load"
        if self.masses:
            return f"place {force_n / G0:.2f} kg ({force_n:.1f} N)"
        return f"apply {force_n:.1f} N"

    def describe(self) -> dict[str, Any]:
        return {"kind": "manual", "unit": "kg" if self.masses else "N"}

    def close(self) -> None:
        pass


def wall_time() -> float:
    return time.time()
