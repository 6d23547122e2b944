"""MFCC features as Light-ASD was trained on: ``python_speech_features.mfcc(audio, 16000,
numcep=13, winlen=0.025, winstep=0.010)`` with that library's defaults, reimplemented in numpy.

Those defaults: pre-emphasis 0.97 over the whole signal, frames of 400 samples every 160
(the last zero-padded), no window (rectangular), power spectrum ``|rfft(frame, 512)|^2 / 512``,
26 triangular mel filters from 0 Hz to rate/2 on FFT bins ``floor(513 * hz / rate)``, log,
orthonormal DCT-II keeping 13, sine lifter 22, and coefficient 0 replaced by the log of the
frame's total power. Floating-point zeros are replaced by machine epsilon before the logs.
"""

from __future__ import annotations

import decimal
import functools
import math

import numpy as np

NUMCEP = 13
NFILT = 26
NFFT = 512
PREEMPH = 0.97
CEPLIFTER = 22
_EPS = np.finfo(float).eps


def _round_half_up(x: float) -> int:
    return int(decimal.Decimal(x).quantize(decimal.Decimal("1"), rounding=decimal.ROUND_HALF_UP))


def num_frames(n_samples: int, frame_len: int = 400, frame_step: int = 160) -> int:
    """Frames python_speech_features makes from ``n_samples``: 1 + ceil((n - len) / step), at least 1."""
    if n_samples <= frame_len:
        return 1
    return 1 + math.ceil((n_samples - frame_len) / frame_step)


@functools.lru_cache(maxsize=8)
def _tables(rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(mel filterbank (257, 26), DCT-II ortho times lifter (26, 13)), float64."""
    def hz2mel(hz: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    def mel2hz(mel: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)

    mels = np.linspace(hz2mel(np.float64(0.0)), hz2mel(np.float64(rate / 2)), NFILT + 2)
    edges = np.floor((NFFT + 1) * mel2hz(mels) / rate)
    i = np.arange(NFFT // 2 + 1, dtype=np.float64)[:, None]
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
    with np.errstate(divide="ignore", invalid="ignore"):
        rise = np.where((i >= lo) & (i < mid), (i - lo) / (mid - lo), 0.0)
        fall = np.where((i >= mid) & (i < hi), (hi - i) / (hi - mid), 0.0)
    fbank = rise + fall  # the two ranges are disjoint, as in the reference's two loops

    n = np.arange(NFILT)
    k = np.arange(NUMCEP)[None, :]
    dct = np.sqrt(2.0 / NFILT) * np.cos(np.pi * k * (2 * n[:, None] + 1) / (2 * NFILT))
    dct[:, 0] /= np.sqrt(2.0)
    lift = 1.0 + (CEPLIFTER / 2.0) * np.sin(np.pi * np.arange(NUMCEP) / CEPLIFTER)
    return fbank, dct * lift


def mfcc(signal: np.ndarray, rate: int = 16000, winlen: float = 0.025, winstep: float = 0.010, block: int = 4096) -> np.ndarray:
    """MFCCs of a mono signal: (N, 13) float32, N = 1 + ceil((len - 400) / 160) at 16 kHz defaults.

    ``signal`` is 1-D int16 (raw PCM scale, as Light-ASD used) or float. Column 0 is the log
    frame power, columns 1..12 liftered cepstra. Work is done ``block`` frames at a time, so
    memory stays bounded for hours of audio; results do not depend on ``block``.
    """
    x = np.asarray(signal)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"mfcc needs a non-empty 1-D signal, got shape {x.shape}")
    flen, fstep = _round_half_up(winlen * rate), _round_half_up(winstep * rate)
    n = num_frames(x.size, flen, fstep)
    fbank, dct_lift = _tables(int(rate))
    out = np.empty((n, NUMCEP), np.float32)
    for f0 in range(0, n, block):
        f1 = min(n, f0 + block)
        s0, s1 = f0 * fstep, (f1 - 1) * fstep + flen
        seg = x[s0:s1].astype(np.float64)
        pre = np.zeros(s1 - s0)  # samples past the end stay zero (padding after pre-emphasis)
        pre[: seg.size] = seg
        pre[1 : seg.size] -= PREEMPH * seg[:-1]
        if s0 > 0:
            pre[0] -= PREEMPH * float(x[s0 - 1])
        frames = np.lib.stride_tricks.as_strided(pre, shape=(f1 - f0, flen), strides=(fstep * 8, 8), writeable=False)
        power = np.square(np.abs(np.fft.rfft(frames, NFFT))) / NFFT
        energy = power.sum(axis=1)
        feat = power @ fbank
        feat = np.log(np.where(feat == 0, _EPS, feat)) @ dct_lift
        feat[:, 0] = np.log(np.where(energy == 0, _EPS, energy))
        out[f0:f1] = feat
    return out
