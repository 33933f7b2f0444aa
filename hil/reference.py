"""The bench reference: what force is really on the knob.

* On a simulator target the reference is the simulated world itself: the true
  applied total force at any device time (what a perfect gauge in the load
  path reads), no extra hardware needed.
* On a bench, ``--reference URL`` names a force gauge on a serial port:
  ``/dev/ttyUSB0``, ``serial:///dev/ttyUSB0?baud=115200&dialect=imada`` or any
  pyserial URL. Mark-10 style gauges answer ``?`` + CR with ``4.285 N``; Imada
  style ones answer ``D`` + CR with ``+0.469NTO``. Readings are in newtons.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from knotsense.errors import ConfigurationError, TransportError

UNITS_TO_N = {
    "N": 1.0,
    "KN": 1000.0,
    "KGF": 9.80665,
    "KG": 9.80665,
    "LBF": 4.448222,
    "GF": 0.00980665,
}
DIALECTS = {"mark10": b"?\r", "imada": b"D\r"}
_NUMBER = re.compile(r"([+-]?\d+(?:\.\d*)?)\s*([A-Za-z]*)")


def parse_reading(line: bytes | str) -> float:
    """Newtons from one gauge answer (Mark-10 ``4.285 N`` or Imada ``+0.469NTO``).

    Raises:
        ValueError: no number in the line, an overload, or an unknown unit.
    """
    text = line.decode("ascii", "replace") if isinstance(line, bytes) else line
    text = text.strip()
    if "OVER" in text.upper():
        raise ValueError(f"gauge overload: {text!r}")
    m = _NUMBER.search(text)
    if m is None:
        raise ValueError(f"no reading in {text!r}")
    value, unit = float(m.group(1)), m.group(2).upper()
    for name, factor in UNITS_TO_N.items():
        if unit.startswith(name) and (name != "N" or not unit.startswith("NM")):
            return value * factor
    if not unit:
        return value
    raise ValueError(f"unknown unit in {text!r}")


class SimReference:
    """The simulated world's true force, read at device times of one simulated unit."""

    kind = "simulated (true applied force of the simulator)"

    def __init__(self, sim: Any) -> None:
        self.sim = sim

    def force_at_device_us(self, device_us: float) -> float:
        """True total force (N) when the device clock read *device_us* (since its last boot)."""
        sim = self.sim
        now = sim.now
        host = now - (sim.device_time_us(now) - device_us) / (sim.ratio * 1e6)
        return float(sim.true_force(host)[0])

    def read_n(self) -> float:
        return float(self.sim.true_force(self.sim.now)[0])

    def describe(self) -> str:
        return self.kind

    def close(self) -> None:
        pass


class SerialReference:
    """A Mark-10 or Imada style gauge on a serial port, polled on demand or in the background."""

    def __init__(self, url: str, timeout: float = 1.0) -> None:
        import serial

        self.url = url
        target, options, self.dialect = self._parse(url)
        try:
            self.port = serial.serial_for_url(target, timeout=timeout, **options)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TransportError(f"cannot open reference gauge {url!r}: {exc}") from None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.readings: list[tuple[float, float]] = []

    @staticmethod
    def _parse(url: str) -> tuple[str, dict[str, Any], str]:
        dialect = "mark10"
        options: dict[str, Any] = {"baudrate": 115200}
        if url.lower().startswith("serial://"):
            parts = urlsplit(url)
            target = parts.netloc + parts.path
            for key, value in parse_qsl(parts.query):
                if key in ("baud", "baudrate"):
                    options["baudrate"] = int(value)
                elif key == "dialect":
                    dialect = value.lower()
                else:
                    raise ConfigurationError(f"unknown reference URL option {key!r}")
        else:
            target = url
        if dialect not in DIALECTS:
            raise ConfigurationError(f"reference dialect must be one of {', '.join(DIALECTS)}")
        return target, options, dialect

    def read_n(self) -> float:
        """One reading, newtons.

        Raises:
            TransportError: no answer; ValueError: an unreadable answer.
        """
        with self._lock:
            self.port.reset_input_buffer()
            self.port.write(DIALECTS[self.dialect])
            line = self.port.readline()
        if not line:
            raise TransportError(f"reference gauge {self.url} did not answer")
        return parse_reading(line)

    def start_polling(self, period_s: float = 0.05) -> None:
        """Read in the background into :attr:`readings` as (host time, N)."""

        def loop() -> None:
            while not self._stop.is_set():
                with contextlib.suppress(TransportError, ValueError):
                    self.readings.append((time.time(), self.read_n()))
                self._stop.wait(period_s)

        self._stop.clear()
        self._thread = threading.Thread(target=loop, name="hil-reference", daemon=True)
        self._thread.start()

    def stop_polling(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None

    def force_at_host(self, t: float) -> float | None:
        """The polled reading nearest host time *t* (None without readings)."""
        if not self.readings:
            return None
        return min(self.readings, key=lambda r: abs(r[0] - t))[1]

    def describe(self) -> str:
        return f"{self.dialect} gauge at {self.url}"

    def close(self) -> None:
        self.stop_polling()
        self.port.close()
