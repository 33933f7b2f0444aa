"""Per-channel calibration models: raw ADC counts -> newtons.

The calibration issue fits these on a bench; here they are only applied (plus a
small least-squares helper). Every model is a frozen dataclass that can go to
and from a JSON-safe dict with a ``"kind"`` key, so a calibration record can be
stored next to a recording and re-applied byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from knotsense.errors import CalibrationError

FloatArray = NDArray[np.float64]

__all__ = [
    "MODEL_KINDS",
    "Calibration",
    "CalibrationModel",
    "CalibrationStream",
    "LinearModel",
    "MonotoneModel",
    "PolynomialModel",
    "fit_model",
    "model_from_dict",
    "register_model",
]


class CalibrationModel:
    """Base of the per-channel models: ``apply`` (counts -> N) and ``inverse``."""

    kind: ClassVar[str] = ""

    def apply(self, raw: ArrayLike) -> FloatArray:
        """Newtons for raw counts (any shape)."""
        raise NotImplementedError

    def inverse(self, force: ArrayLike) -> FloatArray:
        """Raw counts that read as *force* newtons (to program raw thresholds)."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict with a ``"kind"`` key."""
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CalibrationModel:
        """Rebuild a model from :meth:`to_dict` output (checks the kind on subclasses)."""
        model = model_from_dict(data)
        if not isinstance(model, cls):
            raise CalibrationError(f"expected a {cls.kind} model, got {model.kind}")
        return model

    @property
    def is_linear(self) -> bool:
        """True when the model is affine, so it commutes with averaging."""
        return False

    @property
    def stateful(self) -> bool:
        """True when the reading depends on the history (hysteresis branch, creep)."""
        return False


@dataclass(frozen=True)
class LinearModel(CalibrationModel):
    """``force = gain * raw + offset``: load cells, and anything already in N."""

    gain: float = 1.0
    offset: float = 0.0
    kind: ClassVar[str] = "linear"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.gain) and np.isfinite(self.offset)) or self.gain == 0:
            raise CalibrationError(f"linear model needs a finite non-zero gain, got {self.gain}")

    def apply(self, raw: ArrayLike) -> FloatArray:
        return np.asarray(raw, dtype=np.float64) * self.gain + self.offset

    def inverse(self, force: ArrayLike) -> FloatArray:
        return (np.asarray(force, dtype=np.float64) - self.offset) / self.gain

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "gain": float(self.gain), "offset": float(self.offset)}

    @property
    def is_linear(self) -> bool:
        return True


@dataclass(frozen=True)
class PolynomialModel(CalibrationModel):
    """``force = c0 + c1*raw + c2*raw**2 + c3*raw**3`` (ISO 376 style, degree <= 3).

    ``inverse`` needs the polynomial to be monotone on ``domain`` (the raw range
    the bench covered); it is solved numerically there.
    """

    coefficients: tuple[float, ...]
    domain: tuple[float, float] = (0.0, 65535.0)
    kind: ClassVar[str] = "polynomial"

    def __post_init__(self) -> None:
        coeffs = tuple(float(c) for c in self.coefficients)
        object.__setattr__(self, "coefficients", coeffs)
        object.__setattr__(self, "domain", (float(self.domain[0]), float(self.domain[1])))
        if not 1 <= len(coeffs) <= 4 or not all(np.isfinite(coeffs)):
            raise CalibrationError("polynomial model needs 1-4 finite coefficients (degree <= 3)")
        if not self.domain[0] < self.domain[1]:
            raise CalibrationError(f"polynomial domain must be increasing, got {self.domain}")

    def apply(self, raw: ArrayLike) -> FloatArray:
        x = np.asarray(raw, dtype=np.float64)
        out = np.full_like(x, self.coefficients[-1])
        for c in self.coefficients[-2::-1]:  # Horner: no temporary powers
            out *= x
            out += c
        return out

    def inverse(self, force: ArrayLike) -> FloatArray:
        grid = np.linspace(self.domain[0], self.domain[1], 4097)
        values = self.apply(grid)
        steps = np.diff(values)
        if not (np.all(steps > 0) or np.all(steps < 0)):
            raise CalibrationError("polynomial model is not monotone on its domain; no inverse")
        if steps[0] < 0:
            grid, values = grid[::-1], values[::-1]
        f = np.asarray(force, dtype=np.float64)
        # Two Newton steps from a dense linear interpolation reach float precision.
        x = np.interp(f, values, grid)
        deriv = np.polynomial.polynomial.polyder(np.asarray(self.coefficients))
        for _ in range(2):
            slope = np.polynomial.polynomial.polyval(x, deriv)
            x = x - (self.apply(x) - f) / np.where(slope == 0, 1.0, slope)
        return x

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "coefficients": list(self.coefficients),
            "domain": list(self.domain),
        }

    @property
    def is_linear(self) -> bool:
        return len(self.coefficients) <= 2 or all(c == 0 for c in self.coefficients[2:])


@dataclass(frozen=True)
class MonotoneModel(CalibrationModel):
    """Monotone piecewise cubic (PCHIP) through knots, for FSR power-law curves.

    PCHIP never overshoots between knots, so the model stays monotone wherever
    the bench readings are and has an exact inverse (solved numerically).
    Outside the knots it extrapolates linearly with the end slope.
    """

    raw_knots: tuple[float, ...]
    force_knots: tuple[float, ...]
    kind: ClassVar[str] = "monotone"

    def __post_init__(self) -> None:
        raw = tuple(float(v) for v in self.raw_knots)
        force = tuple(float(v) for v in self.force_knots)
        object.__setattr__(self, "raw_knots", raw)
        object.__setattr__(self, "force_knots", force)
        if len(raw) != len(force) or len(raw) < 2:
            raise CalibrationError("monotone model needs >= 2 (raw, force) knot pairs")
        if not (np.all(np.diff(raw) > 0) and np.all(np.diff(force) > 0)):
            raise CalibrationError("monotone model knots must be strictly increasing")

    def _interp(self, x: FloatArray, xs: FloatArray, ys: FloatArray) -> FloatArray:
        from scipy.interpolate import PchipInterpolator

        pchip = PchipInterpolator(xs, ys, extrapolate=False)
        out = pchip(x)
        lo_slope = (ys[1] - ys[0]) / (xs[1] - xs[0])
        hi_slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        below, above = x < xs[0], x > xs[-1]
        out = np.where(below, ys[0] + (x - xs[0]) * lo_slope, out)
        return np.where(above, ys[-1] + (x - xs[-1]) * hi_slope, out)

    def apply(self, raw: ArrayLike) -> FloatArray:
        x = np.asarray(raw, dtype=np.float64)
        return self._interp(x, np.asarray(self.raw_knots), np.asarray(self.force_knots))

    def inverse(self, force: ArrayLike) -> FloatArray:
        from scipy.interpolate import PchipInterpolator

        f = np.asarray(force, dtype=np.float64)
        xs, ys = np.asarray(self.raw_knots), np.asarray(self.force_knots)
        # The exact inverse of the same curve: dense interpolation, then Newton steps.
        grid = np.linspace(xs[0], xs[-1], 4097)
        x = np.interp(f, self.apply(grid), grid)
        slope = PchipInterpolator(xs, ys).derivative()
        inside = (f >= ys[0]) & (f <= ys[-1])
        for _ in range(3):
            d = slope(np.clip(x, xs[0], xs[-1]))
            step = (self.apply(x) - f) / np.where(d > 0, d, 1.0)
            x = np.where(inside & (d > 0), np.clip(x - step, xs[0], xs[-1]), x)
        # Outside the knots the model is linear: invert exactly.
        lo_slope = (ys[1] - ys[0]) / (xs[1] - xs[0])
        hi_slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        x = np.where(f < ys[0], xs[0] + (f - ys[0]) / lo_slope, x)
        return np.where(f > ys[-1], xs[-1] + (f - ys[-1]) / hi_slope, x)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "raw_knots": list(self.raw_knots),
            "force_knots": list(self.force_knots),
        }


MODEL_KINDS: dict[str, type[CalibrationModel]] = {}
"""The model registry: ``"kind"`` name -> class. Records name their models by kind."""


def register_model(cls: type[CalibrationModel]) -> type[CalibrationModel]:
    """Add a model class to :data:`MODEL_KINDS` under its ``kind`` (usable as a decorator).

    A new model kind (e.g. an FSR model with hysteresis terms) needs only a
    frozen dataclass with ``kind``, ``apply``, ``inverse`` and ``to_dict``
    whose fields are the keys of its dict; registering it makes
    :func:`model_from_dict`, :class:`Calibration` and the calibration record
    (:mod:`knotsense.dsp.calibration_record`) read it.
    """
    if not cls.kind:
        raise ValueError(f"{cls.__name__} has no kind")
    known = MODEL_KINDS.get(cls.kind)
    if known is not None and known is not cls:
        raise ValueError(f"model kind {cls.kind!r} is already {known.__name__}")
    MODEL_KINDS[cls.kind] = cls
    return cls


for _cls in (LinearModel, PolynomialModel, MonotoneModel):
    register_model(_cls)


def model_from_dict(data: Mapping[str, Any]) -> CalibrationModel:
    """Rebuild a model from :meth:`CalibrationModel.to_dict` output, by its registered kind.

    The fields are the dict's other keys; each model's ``__post_init__``
    normalises them (lists to tuples, ints to floats) and checks them.
    """
    if not isinstance(data, Mapping) or data.get("kind") not in MODEL_KINDS:
        raise CalibrationError(f"unknown calibration model: {data!r:.80}")
    fields = {k: v for k, v in data.items() if k != "kind"}
    cls = MODEL_KINDS[data["kind"]]
    try:
        return cls(**fields)
    except (TypeError, KeyError, ValueError, IndexError) as exc:
        raise CalibrationError(f"bad {data['kind']} calibration model: {exc}") from None


def fit_model(
    raw: ArrayLike, force: ArrayLike, kind: str = "linear", degree: int = 2
) -> CalibrationModel:
    """Least-squares fit of one model to bench points (a convenience, not the bench procedure).

    ``monotone`` sorts the points and averages repeats into knots.
    """
    x = np.asarray(raw, dtype=np.float64).ravel()
    y = np.asarray(force, dtype=np.float64).ravel()
    if x.size != y.size or x.size < 2:
        raise CalibrationError("fit needs >= 2 matching (raw, force) points")
    if kind == "linear":
        gain, offset = np.polyfit(x, y, 1)
        return LinearModel(float(gain), float(offset))
    if kind == "polynomial":
        if not 1 <= degree <= 3:
            raise CalibrationError(f"polynomial degree must be 1-3, got {degree}")
        coeffs = np.polynomial.polynomial.polyfit(x, y, degree)
        return PolynomialModel(tuple(coeffs), (float(x.min()), float(x.max())))
    if kind == "monotone":
        ux, inv = np.unique(x, return_inverse=True)
        uy = np.bincount(inv, weights=y) / np.bincount(inv)
        return MonotoneModel(
            tuple(ux), tuple(np.maximum.accumulate(uy) + np.arange(ux.size) * 1e-9)
        )
    raise CalibrationError(f"unknown model kind {kind!r}")


@dataclass(frozen=True)
class Calibration:
    """One model per channel, applied to an ``(n, channels)`` array of counts."""

    models: tuple[CalibrationModel, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        if not self.models:
            raise CalibrationError("a calibration needs at least one channel model")

    @classmethod
    def identity(cls, channels: int) -> Calibration:
        """Input already in newtons."""
        return cls(tuple(LinearModel() for _ in range(channels)))

    @property
    def channels(self) -> int:
        return len(self.models)

    @property
    def is_linear(self) -> bool:
        """All channels affine: the pipeline may calibrate after averaging (cheaper)."""
        return all(m.is_linear for m in self.models)

    def linear_coefficients(self) -> tuple[FloatArray, FloatArray]:
        """Per-channel (gain, offset) of an all-affine calibration."""
        if not self.is_linear:
            raise CalibrationError("calibration is not linear")
        gains, offsets = [], []
        for m in self.models:
            if isinstance(m, LinearModel):
                gains.append(m.gain)
                offsets.append(m.offset)
            else:
                assert isinstance(m, PolynomialModel)
                offsets.append(m.coefficients[0])
                gains.append(m.coefficients[1] if len(m.coefficients) > 1 else 0.0)
        return np.asarray(gains), np.asarray(offsets)

    def _check(self, arr: FloatArray) -> None:
        if arr.ndim != 2 or arr.shape[1] != self.channels:
            raise CalibrationError(
                f"calibration has {self.channels} channels, data has shape {arr.shape}"
            )

    @property
    def stateful(self) -> bool:
        """Some channel depends on the history: apply it with times, or through :meth:`stream`."""
        return any(m.stateful for m in self.models)

    def stream(self) -> CalibrationStream:
        """A live calibrator from rest: ``process(t, raw)`` and ``reset()``."""
        return CalibrationStream(self)

    def apply(self, raw: ArrayLike, t: ArrayLike | None = None) -> FloatArray:
        """Newtons, shape ``(n, channels)``.

        With sample times *t* (s) a stateful calibration runs from rest over the
        whole array (the same numbers as :meth:`stream`); without, every channel
        reads as a load applied from rest at once (loading branch, no creep).
        """
        arr = np.asarray(raw)
        self._check(arr)
        if t is not None and self.stateful:
            return self.stream().process(t, arr)
        if self.is_linear:
            gains, offsets = self.linear_coefficients()
            return arr * gains + offsets
        return np.stack([m.apply(arr[:, i]) for i, m in enumerate(self.models)], axis=1)

    def inverse(self, force: ArrayLike) -> FloatArray:
        """Counts, shape ``(n, channels)`` (a stateful model: its loading branch)."""
        arr = np.asarray(force, dtype=np.float64)
        self._check(arr)
        return np.stack([m.inverse(arr[:, i]) for i, m in enumerate(self.models)], axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "calibration", "channels": [m.to_dict() for m in self.models]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        channels = data.get("channels") if isinstance(data, Mapping) else None
        if not isinstance(channels, Sequence) or isinstance(channels, str | bytes):
            raise CalibrationError("calibration record needs a 'channels' list")
        return cls(tuple(model_from_dict(c) for c in channels))


class CalibrationStream:
    """A :class:`Calibration` applied live, channel by channel; identical for any chunking."""

    def __init__(self, calibration: Calibration) -> None:
        self.calibration = calibration
        self._streams = [m.stream() if m.stateful else None for m in calibration.models]  # type: ignore[attr-defined]

    def reset(self) -> None:
        """Every sensor at rest."""
        for s in self._streams:
            if s is not None:
                s.reset()

    def process(self, t: ArrayLike, raw: ArrayLike) -> FloatArray:
        """Newtons for samples at times *t* (s), raw shape ``(n, channels)``."""
        arr = np.asarray(raw)
        self.calibration._check(arr)
        tt = np.asarray(t, dtype=np.float64)
        out = np.empty(arr.shape, dtype=np.float64)
        for i, (m, s) in enumerate(zip(self.calibration.models, self._streams, strict=True)):
            out[:, i] = m.apply(arr[:, i]) if s is None else s.process(tt, arr[:, i])
        return out
