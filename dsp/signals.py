"""Derived signals: total force, centre of pressure, channel balance.

All take an ``(n, channels)`` array of calibrated forces in newtons. Where the
total is too small to mean anything (nobody on the knob) the position-like
signals are NaN rather than noise divided by noise.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from knotsense.errors import ConfigurationError

FloatArray = NDArray[np.float64]

__all__ = ["balance_axis", "balance_force", "centre_of_pressure", "channel_balance", "total_force"]


def _forces(forces: ArrayLike) -> FloatArray:
    arr = np.asarray(forces, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ConfigurationError(f"forces must be (n, channels), got shape {arr.shape}")
    return arr


def _row_sum(x: FloatArray, weights: list[float] | None) -> FloatArray:
    """``x @ weights`` (or the row sums), adding the columns left to right.

    A matrix product or ``sum(axis=1)`` may round differently depending on the
    number of rows (BLAS kernels treat the remainder rows apart), which would
    make the output depend on the chunking; column by column it cannot.
    """
    if weights is None:
        total = x[:, 0].copy()
        for j in range(1, x.shape[1]):
            total += x[:, j]
        return total
    total = x[:, 0] * weights[0]
    for j in range(1, x.shape[1]):
        total += x[:, j] * weights[j]
    return total


def total_force(forces: ArrayLike) -> FloatArray:
    """Sum of the channels (N): what sits on the knob."""
    return _forces(forces).sum(axis=1)


def _positions(positions: ArrayLike, channels: int) -> FloatArray:
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim == 1:
        pos = pos[:, None]
    if pos.shape[0] != channels or pos.ndim != 2 or not np.all(np.isfinite(pos)):
        raise ConfigurationError(
            f"need one finite position per channel ({channels}), got shape {pos.shape}"
        )
    return pos


def centre_of_pressure(
    forces: ArrayLike, positions: ArrayLike, min_total: float = 5.0
) -> FloatArray:
    """Force-weighted mean channel position (mm), shape ``(n, dims)``; NaN below *min_total*."""
    f = _forces(forces)
    pos = _positions(positions, f.shape[1])
    total = _row_sum(f, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        cop = np.column_stack([_row_sum(f, pos[:, d].tolist()) for d in range(pos.shape[1])])
        cop /= total[:, None]
    cop[~(total >= min_total)] = np.nan
    return cop


def channel_balance(forces: ArrayLike, min_total: float = 5.0) -> FloatArray:
    """Each channel's share of the total (fractions summing to 1); NaN below *min_total*."""
    f = _forces(forces)
    total = f.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = f / total[:, None]
    share[~(total >= min_total)] = np.nan
    return share


def balance_axis(positions: ArrayLike) -> FloatArray:
    """Per-channel weights in [-1, 1] along the main axis of the sensor layout.

    Rocking on a rounded base moves load along one axis; projecting the
    channels on the layout's principal axis turns that into one signal.
    """
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim == 1:
        pos = pos[:, None]
    centred = pos - pos.mean(axis=0)
    if not np.any(centred):
        raise ConfigurationError("channel positions are all equal: no balance axis")
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    proj = centred @ vt[0]
    return proj / np.max(np.abs(proj))


def balance_force(forces: ArrayLike, weights: ArrayLike) -> FloatArray:
    """Signed load moved along the balance axis (N): ``sum(w_i * f_i)``.

    With two channels at +-1 it is simply ``f1 - f0``; a rocking that moves
    load from one side to the other swings it by twice the load moved.
    """
    f = _forces(forces)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (f.shape[1],):
        raise ConfigurationError(f"need {f.shape[1]} balance weights, got shape {w.shape}")
    return _row_sum(f, w.tolist())
