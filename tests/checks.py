"""Independent checks of a cropped clip: read with PyAV (not prep's decoder), judge with YuNet."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def frames_at(path: str | Path, times: list[float]) -> list[np.ndarray]:
    """Stored frames (BGR, before any rotation or SAR correction) nearest to each time (s from the first frame)."""
    best: list[tuple[float, av.VideoFrame] | None] = [None] * len(times)
    last = max(times, default=0.0)
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        t0 = None
        for frame in c.decode(s):  # in presentation order
            t = float(frame.pts * s.time_base)
            t0 = t if t0 is None else t0
            for k, want in enumerate(times):
                d = abs((t - t0) - want)
                if best[k] is None or d < best[k][0]:
                    best[k] = (d, frame)
            if t - t0 > last and all(b is not None for b in best):
                break  # every later frame is further from every time
        # only the chosen frames are converted
        return [b[1].to_ndarray(format="bgr24") for b in best if b is not None]


def stream_facts(path: str | Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        a = c.streams.audio[0] if c.streams.audio else None
        facts = {
            "width": v.codec_context.width,
            "height": v.codec_context.height,
            "sar": Fraction(v.sample_aspect_ratio) if v.sample_aspect_ratio else Fraction(1),
            "pix_fmt": v.codec_context.pix_fmt,
            "codec": v.codec_context.name,
            "audio": a is not None,
        }
    return facts


def eye_mouth_ratio(face, sar: float = 1.0) -> float:
    """Eye distance over eye-centre-to-mouth-centre distance (shape, independent of scale)."""
    lm = face.landmarks.astype(np.float64) * [sar, 1.0]
    eyes = np.linalg.norm(lm[0] - lm[1])
    mouth = np.linalg.norm((lm[0] + lm[1]) / 2 - (lm[3] + lm[4]) / 2)
    return float(eyes / mouth)


# a 1 kHz tone for the first 0.1 s of every second: the audio of clips whose sync is checked
TONES = "sine=frequency=1000:sample_rate=16000,volume=enable='gte(mod(t,1),0.1)':volume=0"


def onsets(x: np.ndarray, rate: int) -> list[float]:
    """Seconds from the start of the samples ``x`` (mono) where a tone starts (5 ms steps)."""
    x = np.asarray(x, np.float64)
    hop = rate // 200
    env = np.array([np.abs(x[k : k + hop]).mean() for k in range(0, len(x) - hop, hop)])
    on = env > 0.3 * env.max()
    return [float(k * hop / rate) for k in np.flatnonzero(on[1:] & ~on[:-1]) + 1]
