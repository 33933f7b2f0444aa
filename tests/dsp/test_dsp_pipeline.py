"""The whole chain: chunking invariance, calibration, summary, accuracy over many seeds."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from support.evaluation import Score, score
from support.synthetic import make_session

from knotsense.dsp.calibration_models import Calibration, LinearModel, MonotoneModel
from knotsense.dsp.pipeline import Pipeline, PipelineConfig, PipelineOutput, analyze
from knotsense.errors import ConfigurationError


def _events_chunked(session, cfg, rng):
    pipe = Pipeline(cfg)
    events = []
    a = 0
    while a < session.t.size:
        b = a + int(rng.integers(1, 400))
        events += pipe.process(session.t[a:b], session.forces[a:b]).events
        a = b
    return events + list(pipe.finish().events)


@pytest.mark.parametrize("seed", [0, 5, 11])
def test_random_chunking_gives_identical_events(seed: int) -> None:
    s = make_session(seed, rate=100.0, channels=3, lies=3)
    cfg = PipelineConfig(release_threshold=s.threshold, max_force=s.threshold * 1.45)
    whole = analyze(s.t, s.forces, cfg)
    events = _events_chunked(s, cfg, np.random.default_rng(seed))
    assert tuple(events) == whole.signals.events  # same records, same order, bit for bit
    assert len(whole.episodes) >= 3 and whole.onsets


def test_live_events_come_in_detection_order() -> None:
    s = make_session(2, rate=200.0, channels=2, lies=3)
    cfg = PipelineConfig(release_threshold=s.threshold)
    events = _events_chunked(s, cfg, np.random.default_rng(1))
    times = [e.detected_at for e in events]
    assert times == sorted(times)


def test_linear_and_monotone_calibration_give_the_same_episodes() -> None:
    s = make_session(4, rate=100.0, channels=2, lies=3)
    cfg = PipelineConfig(release_threshold=s.threshold)
    ref = analyze(s.t, s.forces, cfg).episodes
    lin = Calibration((LinearModel(0.05, -10.0), LinearModel(0.04, 3.0)))
    raw = lin.inverse(s.forces)
    got = analyze(s.t, raw, PipelineConfig(release_threshold=s.threshold, calibration=lin)).episodes
    assert [(e.kind, round(e.start, 6)) for e in got] == [(e.kind, round(e.start, 6)) for e in ref]
    knots = np.linspace(0, 4000, 9)
    mono_model = MonotoneModel(tuple(knots), tuple(0.5 + 300 * (knots / 4000) ** 1.3))
    mono = Calibration((mono_model, mono_model))
    raw = mono.inverse(s.forces)
    cfg = PipelineConfig(release_threshold=s.threshold, calibration=mono)
    got = analyze(s.t, raw, cfg).episodes
    assert [(e.kind, round(e.start, 3)) for e in got] == [(e.kind, round(e.start, 3)) for e in ref]


def test_summary_is_json_safe_and_consistent() -> None:
    s = make_session(6, rate=100.0, channels=4, lies=4)
    a = analyze(s.t, s.forces, PipelineConfig(release_threshold=s.threshold, max_force=400.0))
    d = json.loads(json.dumps(a.to_dict(), allow_nan=False))
    summ = d["summary"]
    rel = [e for e in d["events"] if e["kind"] == "release"]
    assert summ["releases"]["count"] == len(rel)
    assert summ["releases"]["hold_times_s"] == [round(e["duration"], 3) for e in rel]
    assert summ["rocking"]["count"] == sum(e["kind"] == "rocking" for e in d["events"])
    assert summ["time_in_release_band_s"] >= sum(summ["releases"]["hold_times_s"]) * 0.9
    q = summ["signal_quality"]
    assert q["samples"] == s.t.size and q["spikes_removed"] > 0 and q["gaps"] > 0
    assert q["sample_rate_hz"] == pytest.approx(100.0, rel=0.02)


def test_nan_rows_and_saturation_are_counted() -> None:
    t = np.arange(0, 30, 0.01)
    x = np.column_stack([np.full(t.size, 50.0), np.full(t.size, 70.0)])
    x[100:110, 1] = np.nan
    x[500:520, 0] = 400.0
    cfg = PipelineConfig(release_threshold=100.0, saturation=(0.0, 400.0))
    q = analyze(t, x, cfg).summary.to_dict()["signal_quality"]
    assert q["nan_samples"] == 10 and q["saturated_samples"] == 20


@pytest.mark.parametrize(
    "kwargs",
    [
        {"release_threshold": -1.0},
        {"hold": 0.0},
        {"gap": -1.0},
        {"release_threshold": 100.0, "max_force": 90.0},
        {"rocking_min_freq": 3.0, "rocking_max_freq": 1.0},
        {"detector_rate": 5.0},
        {"rocking_source": "balance"},
        {"block": -0.1},
        {"block": 5.0},
    ],
)
def test_impossible_configs_raise(kwargs: dict) -> None:
    with pytest.raises(ConfigurationError):
        PipelineConfig(**kwargs)


def test_non_increasing_time_is_refused() -> None:
    pipe = Pipeline(PipelineConfig(release_threshold=100.0))
    pipe.process([0.0, 0.1], [[1.0], [2.0]])
    with pytest.raises(ConfigurationError):
        pipe.process([0.1, 0.2], [[1.0], [2.0]])


@pytest.mark.parametrize("n", [4, 40])  # a frame checked on floats, a chunk on arrays
@pytest.mark.parametrize("bad", ["nan", "inf", "repeat", "back"])
def test_bad_times_inside_a_chunk_are_refused(n: int, bad: str) -> None:
    t = np.arange(n) * 0.01
    i = n // 2
    t[i] = {"nan": np.nan, "inf": np.inf, "repeat": t[i - 1], "back": t[i - 1] - 0.001}[bad]
    for block in (0.0, 0.2):
        pipe = Pipeline(PipelineConfig(release_threshold=100.0, block=block))
        with pytest.raises(ConfigurationError, match="strictly increasing"):
            pipe.process(t, np.ones((n, 2)))


def test_balance_rocking_source_uses_positions() -> None:
    s = make_session(8, rate=100.0, channels=4, lies=3)
    cfg = PipelineConfig(
        release_threshold=s.threshold, positions=s.positions, rocking_source="balance"
    )
    a = analyze(s.t, s.forces, cfg)
    assert a.signals.cop is not None and a.signals.cop.shape[1] == 1
    assert np.nanmax(np.abs(a.signals.cop)) <= 30.0 + 1e-9


def test_accuracy_over_many_seeds() -> None:
    """F1 >= 0.95 at IoU >= 0.5; median onset error <= 0.5 s (release), 1.5 s (rocking)."""
    rel, rock = Score(), Score()
    rates = [50.0, 100.0, 250.0, 500.0, 1000.0]
    for seed in range(30):
        s = make_session(100 + seed, rate=rates[seed % 5], channels=1 + seed % 8, lies=3)
        a = analyze(s.t, s.forces, PipelineConfig(release_threshold=s.threshold))
        rel += score(s.truth, a.episodes, "release")
        rock += score(s.truth, a.episodes, "rocking")
    assert len(rel.matches) >= 25 and len(rock.matches) >= 25
    assert rel.f1 >= 0.95 and rock.f1 >= 0.95, (rel.to_dict(), rock.to_dict())
    assert rel.median_onset_error <= 0.5
    assert rock.median_onset_error <= 1.5
    freq_err = [abs(m.detected.frequency / m.truth.frequency - 1) for m in rock.matches]
    assert np.median(freq_err) < 0.03


@pytest.mark.parametrize(
    ("seed", "max_chunk", "block"),
    [(21, 8, 0.0), (22, 60, 0.0), (23, 400, 0.0), (24, 3000, 0.0), (25, 8, 0.2), (26, 90, 0.15)],
)
def test_live_chunks_give_bit_identical_signals_and_events(
    seed: int, max_chunk: int, block: float
) -> None:
    """Small chunks take the per-call short cuts (Python floats, queued rocking bins),
    or are queued into blocks; every output array and every event must still equal
    the one-piece run bit for bit."""
    s = make_session(seed, rate=250.0, channels=3, lies=3)
    cfg = PipelineConfig(
        release_threshold=s.threshold,
        max_force=s.threshold * 1.45,
        positions=s.positions,
        saturation=(-1e9, s.threshold * 1.8),
        block=block,
    )
    whole = analyze(s.t, s.forces, replace(cfg, block=0.0)).signals
    rng = np.random.default_rng(seed)
    pipe, parts, a = Pipeline(cfg), [], 0
    while a < s.t.size:
        b = a + int(rng.integers(1, max_chunk + 1))
        parts.append(pipe.process(s.t[a:b], s.forces[a:b]))
        a = b
    parts.append(pipe.finish())
    live = PipelineOutput.concat(parts)
    for name in ("t", "total", "level", "osc", "channels", "cop"):
        assert np.array_equal(getattr(live, name), getattr(whole, name), equal_nan=True), name
    assert live.events == whole.events
    assert any(e.kind == "rocking" for e in live.events)


@pytest.mark.parametrize(("seed", "max_chunk"), [(31, 150), (32, 1200)])
def test_integer_counts_through_linear_calibration_are_chunking_invariant(
    seed: int, max_chunk: int
) -> None:
    """Raw counts with a linear calibration take the live fast path (no NaN possible,
    calibration on the bins); with spikes, a hole and a NaN-free restart it must
    still match the one-piece run bit for bit."""
    s = make_session(seed, rate=500.0, channels=4, lies=2)
    gains = (0.05, 0.04, 0.06, 0.045)
    cal = Calibration(tuple(LinearModel(g, -100 * g) for g in gains))
    raw = np.rint(cal.inverse(np.nan_to_num(s.forces))).astype(np.int32)
    raw[1000::997, 1] += 4000  # single-sample spikes on one channel
    keep = np.ones(s.t.size, dtype=bool)
    keep[20000:20600] = False  # a hole longer than max_gap
    t, raw = s.t[keep], raw[keep]
    cfg = PipelineConfig(release_threshold=s.threshold, calibration=cal, positions=s.positions)
    ref = Pipeline(cfg)
    whole = PipelineOutput.concat([ref.process(t, raw), ref.finish()])
    rng = np.random.default_rng(seed)
    pipe, parts, a = Pipeline(cfg), [], 0
    fast = pipe._fast
    taken = []
    pipe._fast = lambda *args: taken.append(out := fast(*args)) or out  # type: ignore[method-assign]
    while a < t.size:
        b = a + int(rng.integers(1, max_chunk + 1))
        parts.append(pipe.process(t[a:b], raw[a:b]))
        a = b
    parts.append(pipe.finish())
    live = PipelineOutput.concat(parts)
    for name in ("t", "total", "level", "osc", "channels", "cop"):
        assert np.array_equal(getattr(live, name), getattr(whole, name), equal_nan=True), name
    assert live.events == whole.events
    assert pipe.quality == ref.quality and pipe.quality.spikes > 0
    assert any(o is not None for o in taken)  # the fast path did run


def test_block_queues_input_and_delays_events_by_at_most_the_block() -> None:
    s = make_session(7, rate=1000.0, channels=2, lies=3)
    cfg = PipelineConfig(release_threshold=s.threshold, max_force=s.threshold * 1.45, hold=30)
    whole = analyze(s.t, s.forces, cfg).signals.events
    pipe = Pipeline(replace(cfg, block=0.2))
    late, bins, events = [], 0, []
    for a in range(0, s.t.size, 100):  # 100 ms chunks: a block runs every other call
        out = pipe.process(s.t[a : a + 100], s.forces[a : a + 100])
        bins += out.t.size > 0
        late += [float(s.t[min(a + 99, s.t.size - 1)]) - e.detected_at for e in out.events]
        events += out.events
    events += pipe.finish().events
    assert tuple(events) == whole
    assert bins == pytest.approx(s.t.size / 200, abs=1)
    assert late and max(late) <= 0.2 + 1e-9


def test_block_release_reached_within_half_a_second_of_the_hold() -> None:
    """What a live user sees: the chunk that brings "release reached" arrives at most
    0.5 s (data time) after the force has been held for ``hold``."""
    rate, hold, start, level, threshold = 1000.0, 20.0, 3.0, 150.0, 100.0
    t = np.arange(0.0, 40.0, 1 / rate)
    f = np.interp(t, [0, start, start + 2, 35, 36], [0, 0, level, level, 0])
    f += np.random.default_rng(3).normal(0, 0.3, t.size)
    true_start = start + 2 * threshold / level
    for offset in range(0, 200, 37):  # where the block edges fall
        pipe = Pipeline(PipelineConfig(release_threshold=threshold, hold=hold, block=0.2))
        seen = None
        for a in [0, *range(offset or 100, t.size, 100)]:
            b = min(a + 100, t.size) if a else offset or 100
            out = pipe.process(t[a:b], f[a:b])
            if seen is None and any(e.kind == "release" for e in out.events):
                seen = float(t[b - 1])
        assert seen is not None
        assert 0.0 <= seen - (true_start + hold) <= 0.5


def test_block_finish_runs_what_is_queued() -> None:
    s = make_session(8, rate=200.0, channels=1, lies=1)
    cfg = PipelineConfig(release_threshold=s.threshold, block=1.0)
    pipe = Pipeline(cfg)
    assert pipe.process(s.t[:50], s.forces[:50]).t.size == 0  # 0.25 s queued
    tail = pipe.finish()
    assert tail.t.size == 7  # the 25 Hz bins of 0.25 s, the last one flushed by finish
    assert pipe.quality.samples == 50


class _PeakDetector:
    """A toy pluggable detector: one episode per contact, at the highest level seen."""

    kind = "contact"

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.bins = 0
        self.peak = (-1.0, 0.0)
        self.finished = False

    def process_bins(self, bins) -> list:
        self.bins += bins.t.size
        if bins.level.size and bins.level.max() > self.peak[0]:
            i = int(bins.level.argmax())
            self.peak = (float(bins.level[i]), float(bins.t[i]))
        return []

    def finish(self) -> list:
        from knotsense.dsp.detectors import ContactEpisode

        self.finished = True
        t = self.peak[1]
        return [ContactEpisode(t, t, t, self.peak[0], self.peak[0])]


def test_an_extra_detector_sees_every_bin_whatever_the_chunking() -> None:
    s = make_session(9, rate=100.0, channels=2, lies=2)
    cfg = PipelineConfig(release_threshold=s.threshold)
    results = []
    for step in (s.t.size, 7, 333):
        pipe = Pipeline(cfg)
        det = _PeakDetector()
        pipe.extra_detectors.append(det)
        parts = [
            pipe.process(s.t[a : a + step], s.forces[a : a + step])
            for a in range(0, s.t.size, step)
        ]
        out = PipelineOutput.concat([*parts, pipe.finish()])
        assert det.finished and det.bins == out.t.size
        results.append((det.peak, out.events[-1]))
    assert results[0] == results[1] == results[2]
