"""A session with known motion direction: rocking along 60 degrees, then circling.

Channel forces on a ring of four sensors (radius 18 mm) whose centre of
pressure follows the path exactly (least-norm load sharing), at 100 Hz with
noise and breathing; used by the dsp and CLI tests of issue 14.
"""

from __future__ import annotations

import math

import numpy as np

RING = tuple(
    (round(18 * math.cos(2 * math.pi * k / 4), 6), round(18 * math.sin(2 * math.pi * k / 4), 6))
    for k in range(4)
)
ROCK = (10.0, 30.0)  # s, along ROCK_AXIS, 10 mm peak to peak
ROCK_AXIS = 60.0
CIRCLE = (45.0, 57.0)  # s, 6 turns counter-clockwise, radius 4 mm


def ring_forces(total: np.ndarray, cop: np.ndarray) -> np.ndarray:
    """Channel forces of the 4-ring whose centre of pressure is *cop* (least norm)."""
    pos = np.array(RING)
    rel = pos - pos.mean(axis=0)
    w = 0.25 + (cop - pos.mean(axis=0)) @ np.linalg.pinv(rel)
    return total[:, None] * w


def motion_session(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """90 s at 100 Hz and 120 N: hold, rocking along 60 deg, hold, circling ccw, hold."""
    rng = np.random.default_rng(seed)
    t = np.arange(0, 90, 0.01)
    total = 120 * (1 + 0.02 * np.sin(2 * np.pi * 0.25 * t))
    cop = np.zeros((t.size, 2))
    rock = (t >= ROCK[0]) & (t < ROCK[1])
    wave = np.sin(2 * np.pi * 0.8 * (t - ROCK[0])) * rock
    total = total * (1 + 0.2 * wave)
    a = math.radians(ROCK_AXIS)
    cop += np.outer(5 * wave, [math.cos(a), math.sin(a)])
    circ = (t >= CIRCLE[0]) & (t < CIRCLE[1])
    ang = 2 * np.pi * 0.5 * (t - CIRCLE[0])
    cop += np.column_stack((4 * np.cos(ang), 4 * np.sin(ang))) * circ[:, None]
    return t, ring_forces(total, cop) + rng.normal(0, 0.3, (t.size, 4))
