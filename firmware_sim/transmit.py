"""The transmit path: what is due leaves in order, numbered, framed, stuffed.

:meth:`Transmitter._release` orders every due item of the outbox -- messages
and sample-block rows -- by (time, priority, creation) and gives each its
sequence number. Without link faults the whole batch is framed with numpy at
once (:meth:`Transmitter._release_fast`); with faults, frame by frame through
:class:`~knotsense.firmware_sim.faults.LinkFaults`. Both give the same bytes
for the same items.
"""

from __future__ import annotations

import numpy as np

from knotsense.firmware_sim import framing
from knotsense.firmware_sim.faults import LinkFaults
from knotsense.firmware_sim.outbox import PRIO_BLOCK, BlockBatch, Outbox, QueuedMessage
from knotsense.protocol import Framing, stuff


class Transmitter(LinkFaults, Outbox):
    """Mixin of :class:`~knotsense.firmware_sim.device.SimulatedDevice`: sending."""

    def _release(self, t: float, out: list[bytes]) -> None:
        msgs = [m for m in self._msgs if m.time <= t]
        if not msgs and not self._blocks:
            return
        self._msgs = [m for m in self._msgs if m.time > t]
        batches, self._blocks = self._blocks, []
        # Order every unit (message or block row) by (time, priority, creation).
        times = [np.array([m.time for m in msgs])]
        prios = [np.array([m.prio for m in msgs], dtype=np.int64)]
        ctrs = [np.array([m.ctr for m in msgs], dtype=np.int64)]
        src = [np.full(len(msgs), -1, dtype=np.int64)]
        row = [np.arange(len(msgs), dtype=np.int64)]
        for i, b in enumerate(batches):
            nb = b.times.size
            times.append(b.times)
            prios.append(np.full(nb, PRIO_BLOCK, dtype=np.int64))
            ctrs.append(b.ctr + np.arange(nb, dtype=np.int64))
            src.append(np.full(nb, i, dtype=np.int64))
            row.append(np.arange(nb, dtype=np.int64))
        t_all = np.concatenate(times)
        order = np.lexsort((np.concatenate(ctrs), np.concatenate(prios), t_all))
        src_o = np.concatenate(src)[order]
        row_o = np.concatenate(row)[order]
        t_o = t_all[order]
        f = self.faults
        slow = f.slow_reader_bps > 0
        if not (f.link_faults or f.link_drops or slow):
            self._release_fast(msgs, batches, src_o, row_o, out)
            return
        self._release_slow(msgs, batches, src_o, row_o, t_o, out)

    def _release_fast(
        self,
        msgs: list[QueuedMessage],
        batches: list[BlockBatch],
        src_o: np.ndarray,
        row_o: np.ndarray,
        out: list[bytes],
    ) -> None:
        n = src_o.size
        seqs = (self._seq + np.arange(n)) & 0xFFFF
        sent0 = self._frames_sent
        stuffed: list[np.ndarray] = []
        for i, b in enumerate(batches):
            pos = np.flatnonzero(src_o == i)
            frames = framing.sample_block_frames(
                seqs[pos],
                b.t_first_us,
                b.sample_index,
                b.period_ns,
                b.mask,
                b.encoding,
                b.samples,
                b.flags,
                b.saturated,
                b.fault,
            )
            self.injected.saturated_blocks += int(np.count_nonzero(b.saturated))
            if self._framing is Framing.STREAM:
                frames = framing.stuff_rows(frames)
            stuffed.append(frames)
        self._seq = (self._seq + n) & 0xFFFF
        self._frames_sent += n
        self._frames_out += n
        pieces: list[bytes] = []
        src_l = src_o.tolist()
        k = 0
        while k < n:
            s = src_l[k]
            if s < 0:
                m = msgs[int(row_o[k])]
                frame = self._frame_msg(m.build(sent0 + k, self._frames_dropped), int(seqs[k]))
                pieces.append(stuff(frame) if self._framing is Framing.STREAM else frame)
                k += 1
                continue
            j = k
            while j < n and src_l[j] == s:
                j += 1
            rows = stuffed[s][int(row_o[k]) : int(row_o[j - 1]) + 1]
            if self._framing is Framing.STREAM:
                pieces.append(rows.tobytes())
            else:
                pieces.extend(r.tobytes() for r in rows)
            k = j
        if self._framing is Framing.STREAM:
            if pieces:
                out.append(b"".join(pieces))
        else:
            out.extend(pieces)
