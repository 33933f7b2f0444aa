"""Streaming filters: identical output for any chunking, explicit gaps, NaNs that never spread."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from knotsense.dsp.filters import BandPass, BinAverager, LowPass, SpikeFilter


def _signal(seed: int, n: int = 3000, rate: float = 200.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate + rng.uniform(-0.1, 0.1, n) / rate  # jittered clock
    t[n // 2 :] += 1.7  # a long gap
    t[n // 3 :] += 0.2  # a short one
    x = 100 + 20 * np.sin(2 * np.pi * 0.8 * t) + rng.normal(0, 0.5, n)
    x[rng.integers(0, n, 12)] += rng.choice([-80.0, 90.0], 12)
    x[rng.integers(0, n, 6)] = np.nan
    return t, x


def _split(n: int, cuts: list[int]) -> list[tuple[int, int]]:
    edges = [0, *sorted({c % (n + 1) for c in cuts}), n]
    return list(pairwise(edges))


FACTORIES = {
    "spike": lambda: SpikeFilter(window=5),
    "lowpass": lambda: LowPass(2.0, 200.0),
    "bandpass": lambda: BandPass(0.3, 5.0, 200.0),
}


def _run(f, t, x, parts):
    outs = []
    for a, b in parts:
        y = f.process(t[a:b], x[a:b])
        outs.append(y[0] if isinstance(y, tuple) else y)
    return np.concatenate(outs)


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(0, 3000), max_size=40), name=st.sampled_from(sorted(FACTORIES)))
def test_any_chunking_gives_identical_output(cuts: list[int], name: str) -> None:
    t, x = _signal(1)
    whole = _run(FACTORIES[name](), t, x, [(0, t.size)])
    split = _run(FACTORIES[name](), t, x, _split(t.size, cuts))
    assert np.array_equal(whole, split, equal_nan=True)


@settings(max_examples=20, deadline=None)
@given(cuts=st.lists(st.integers(0, 3000), max_size=40))
def test_bins_are_identical_for_any_chunking(cuts: list[int]) -> None:
    t, x = _signal(2)
    xx = np.column_stack([x, 2 * x])
    one = BinAverager(25.0)
    a = one.process(t, xx)
    a_end = one.finish()
    many = BinAverager(25.0)
    parts = [many.process(t[i:j], xx[i:j]) for i, j in _split(t.size, cuts)]
    parts.append(many.finish())
    assert np.array_equal(np.concatenate([p.t for p in parts]), np.concatenate([a.t, a_end.t]))
    assert np.array_equal(np.concatenate([p.x for p in parts]), np.concatenate([a.x, a_end.x]))


def test_spike_filter_removes_impulses_keeps_steps() -> None:
    t = np.arange(2000) / 1000.0
    x = np.where(t < 1.0, 50.0, 150.0) + np.random.default_rng(3).normal(0, 0.3, t.size)
    x[[300, 301, 1500]] += [120.0, 120.0, -90.0]
    y, flagged = SpikeFilter().process(t, x)
    # The impulses go; a causal window also holds a step back by window // 2 samples.
    assert set(np.flatnonzero(flagged)) == {300, 301, 1500, 1000, 1001}
    assert np.all(np.abs(y[1002:] - 150.0) < 2.0)  # the step survives
    assert np.all(np.abs(y[:995] - 50.0) < 2.0)


def test_nan_never_spreads() -> None:
    t = np.arange(1000) / 100.0
    x = np.full(t.size, 80.0)
    x[500:505] = np.nan
    for f in (LowPass(1.0, 100.0), BandPass(0.2, 5.0, 100.0)):
        y = f.process(t, x)
        assert np.isnan(y[500:505]).all()
        assert np.isfinite(np.delete(y, range(500, 505))).all()
    y, _ = SpikeFilter().process(t, x)
    assert np.isnan(y).sum() == 5


def test_long_gap_restarts_the_lowpass_in_steady_state() -> None:
    t = np.concatenate([np.arange(500) / 100.0, 20.0 + np.arange(500) / 100.0])
    x = np.concatenate([np.full(500, 10.0), np.full(500, 200.0)])
    y = LowPass(1.0, 100.0, max_gap=0.5).process(t, x)
    assert y[500] == pytest.approx(200.0)  # no ramp from 10 N across a 15 s hole
    short = LowPass(1.0, 100.0, max_gap=60.0).process(t, x)
    assert short[500] < 50.0  # without the reset the filter would ring across it


def test_bins_fill_short_holes_and_keep_long_ones() -> None:
    t = np.concatenate(
        [np.arange(0, 2.0, 0.01), np.arange(2.2, 4.0, 0.01), np.arange(9.0, 10, 0.01)]
    )
    x = np.ones((t.size, 1))
    ba = BinAverager(25.0, max_fill=0.5)
    b = ba.process(t, x)
    f = ba.finish()
    tb = np.concatenate([b.t, f.t])
    steps = np.round(np.diff(tb) * 25).astype(int)
    assert set(steps) == {1, 126}  # 0.2 s hole filled, 5 s hole left as a jump
    assert b.filled.sum() == 5


def test_lowpass_delay_matches_a_ramp_lag() -> None:
    rate = 25.0
    lp = LowPass(1.0, rate)
    t = np.arange(1000) / rate
    y = lp.process(t, t.copy())
    assert (t - y)[-1] == pytest.approx(lp.delay, rel=1e-3)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_biquad_kernel_is_scipy_sosfilt_bit_for_bit(order: int) -> None:
    from scipy import signal

    from knotsense.dsp.filters import biquad_run

    sos = signal.butter(order, [0.3, 4.0], btype="band", fs=25.0, output="sos")
    x = np.random.default_rng(order).normal(0, 10, 300)
    zi = signal.sosfilt_zi(sos) * x[0]
    ref, zf = signal.sosfilt(sos, x, zi=zi)
    state = zi.tolist()
    got = biquad_run(sos.tolist(), state, x.tolist())
    assert np.array_equal(np.array(got), ref)
    assert np.array_equal(np.array(state), zf)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_state_moves_a_filter_to_a_new_object(name: str) -> None:
    """``state``/``set_state``: a fresh filter given another's state continues it exactly."""
    t, x = _signal(4)
    whole = _run(FACTORIES[name](), t, x, [(0, t.size)])
    first = FACTORIES[name]()
    head = _run(first, t, x, [(0, 1234)])
    second = FACTORIES[name]()
    second.set_state(first.state)
    tail = _run(second, t, x, [(1234, t.size)])
    assert np.array_equal(np.concatenate([head, tail]), whole, equal_nan=True)


def test_bin_state_moves_to_a_new_object() -> None:
    t, x = _signal(5)
    xx = np.column_stack([x, -x])
    one = BinAverager(25.0)
    ref = [one.process(t, xx), one.finish()]
    first = BinAverager(25.0)
    head = first.process(t[:777], xx[:777])
    second = BinAverager(25.0)
    second.set_state(first.state)
    parts = [head, second.process(t[777:], xx[777:]), second.finish()]
    assert np.array_equal(np.concatenate([p.x for p in parts]), np.concatenate([p.x for p in ref]))
