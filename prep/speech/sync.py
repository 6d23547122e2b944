"""Is this face the one speaking, and is its voice in sync? Pure functions of a track's
per-frame facts (all at the model's 25 frames a second).

Three measurements, each answering one question:

* **offset** — Light-ASD judges two-second windows of the face with the audio slid by ``k``
  frames (``k`` in ``K_LO..K_HI``; frame ``t`` of the face with audio frame ``t + k``). Run
  over short windows, its score peaks where lips and voice meet: the peak of the mean curve,
  refined on a parabola, less the model's own lean (``BIAS``), is the offset (audio late: +).
  The lags searched are centred on that lean, so offsets of ``-LAGS..LAGS`` are measured alike.
  Its **confidence** is the share of bootstrap resamples of the windows whose peak lands
  within one frame of it: near 1 when every part of the track agrees. How consistently the
  windows prefer that lag to lags 4 or more frames away, as a t statistic over roughly
  independent windows, is ``sync_t``: near 0 when the voice is not this face's.
* **sync** — whether the mouth moves with *this* voice at all: the mean of ``sync_t`` and
  ``sync_z`` (a voice-over, a listener, a
  face on a screen: Light-ASD alone scores those as speaking). A ridge regression from the
  face's visual embeddings to the audio's loudness, fitted on one half of the track and
  tested on the other (2 s blocks), gives a correlation that does not grow with overfitting;
  the best one over the lags is compared with the same regression against the audio rolled
  by whole seconds (no sync possible there): ``sync_z`` is how many null standard deviations
  above the null mean it stands.
* **speaking** — Light-ASD's per-frame score with the audio at the measured offset, averaged
  over the chunkings its authors use (1 to 6 s), on voiced frames only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .lightasd import LightASD

LAGS = 8  # offsets measured each way, in frames: +-320 ms at 25 fps
WINDOW = 50  # frames per judged window (2 s)
STEP = 5  # frames between window starts (10 halves the lag search but drops trusted offsets within a frame from 20/20 to 13/18 on 20 s clips)
BIAS = -1.5  # frames: where the model's curve peaks on synchronised speech (README: calibration)
# the model lags searched: offsets -LAGS..LAGS plus the half frame the edge test needs (a
# search of -LAGS..LAGS itself reached offsets -6..+9: audio 6 frames early was never trusted)
K_LO, K_HI = math.floor(-LAGS + BIAS), math.ceil(LAGS + BIAS)
MARGIN = max(-K_LO, K_HI)  # audio frames read before the face's first frame and after its last
BOOT = 200  # bootstrap resamples for the offset's confidence
DURATIONS = {1: 3, 2: 3, 3: 2, 4: 1, 5: 1, 6: 1}  # seconds: weight: the authors' chunkings (1,1,1,2,2,2,3,3,4,5,6), averaged
RIDGE = 1.0  # ridge penalty per sample (features standardised)
BLOCK = 50  # frames per cross-validation block (2 s)
MIN_VOICED_WINDOW = 0.5  # a window is judged when at least this share of its frames is voiced
BATCH = 256  # sequences per batched GRU call (bounds memory: about 60 MB of scratch at 2 s)
WINDOWS_AT_ONCE = 32  # windows (x 18 lags) gathered at a time: memory does not grow with the track


@dataclass(frozen=True)
class Offset:
    frames: float | None  # audio late (+) or early (-), in frames; None: not measurable
    confidence: float  # in [0, 1]
    windows: int  # voiced windows judged
    curve: np.ndarray  # mean score per model lag, K_LO..K_HI (empty when not measurable)
    t: float | None = None  # how consistently the windows prefer the peak lag (t statistic)


def _batched_scores(model: LightASD, a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Per-frame scores (B, W) of B sequences (B, W, 128), in batches of ``BATCH``."""
    out = np.empty(a.shape[:2], np.float32)
    for i in range(0, len(a), BATCH):
        out[i : i + BATCH] = model.scores(model.backend(a[i : i + BATCH], v[i : i + BATCH]))
    return out


def window_starts(voiced: np.ndarray, window: int = WINDOW, step: int = STEP) -> np.ndarray:
    """Starts of the windows of ``[0, len(voiced))`` with enough voice to judge sync on."""
    t = len(voiced)
    if t < window:
        return np.zeros(0, np.int64)
    starts = np.arange(0, t - window + 1, step)
    share = np.array([voiced[s : s + window].mean() for s in starts])
    return starts[share >= MIN_VOICED_WINDOW]


def lag_matrix(model: LightASD, visual: np.ndarray, audio: np.ndarray, starts: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Mean score ``(len(starts), K_HI - K_LO + 1)`` of each window of the face ``visual``
    (T, 128) with the audio slid by each lag; ``audio`` (T + 2 MARGIN, 128) starts ``MARGIN``
    frames early."""
    ks = np.arange(K_LO, K_HI + 1)
    out = np.zeros((len(starts), len(ks)), np.float32)
    for c in range(0, len(starts), WINDOWS_AT_ONCE):
        part = starts[c : c + WINDOWS_AT_ONCE]
        idx = part[:, None] + np.arange(window)[None, :]  # (n, W)
        v = np.repeat(visual[idx][:, None], len(ks), axis=1)  # (n, K, W, 128)
        a = audio[idx[:, None, :] + MARGIN + ks[None, :, None]]  # (n, K, W, 128)
        s = _batched_scores(model, a.reshape(-1, window, a.shape[-1]), v.reshape(-1, window, v.shape[-1]))
        out[c : c + len(part)] = s.mean(axis=1).reshape(len(part), len(ks))
    return out


def _peak(curve: np.ndarray) -> float:
    """Index of the curve's maximum, refined on the parabola through it and its neighbours."""
    i = int(np.argmax(curve))
    if 0 < i < len(curve) - 1:
        a, b, c = curve[i - 1], curve[i], curve[i + 1]
        den = a - 2 * b + c
        if den < 0:
            return i + float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
    return float(i)


def measure_offset(m: np.ndarray, min_windows: int = 3, seed: int = 0) -> Offset:
    """The offset from a lag matrix (windows x the model lags ``K_LO..K_HI``) and the
    bootstrap confidence in it."""
    if len(m) < min_windows:
        return Offset(None, 0.0, len(m), np.zeros(0))
    curve = m.mean(axis=0)
    peak = _peak(curve)
    rng = np.random.default_rng(seed)
    # the resamples a few at a time (the same draws in the same order): memory stays flat in the track's length
    rows = min(BOOT, max(1, BOOT_AT_ONCE // len(m)))
    boot_peaks = np.concatenate([np.argmax(m[rng.integers(0, len(m), size=(min(rows, BOOT - r), len(m)))].mean(axis=1), axis=1) for r in range(0, BOOT, rows)])
    agree = float(np.mean(np.abs(boot_peaks - peak) <= 1.0))
    at_edge = peak <= 0.5 or peak >= m.shape[1] - 1.5  # the true peak may lie beyond the search
    k = int(round(peak))
    far = np.abs(np.arange(m.shape[1]) - k) >= 4
    gain = m[:, k] - m[:, far].mean(axis=1)
    independent = max(1.0, len(m) * STEP / WINDOW)  # overlapping windows: about this many independent ones
    t = float(gain.mean() / (gain.std() / np.sqrt(independent) + 1e-6))
    if at_edge:
        return Offset(None, 0.0, len(m), curve, round(t, 2))
    return Offset(round(K_LO + peak - BIAS, 2), round(agree, 3), len(m), curve, round(t, 2))


def sync_evidence(t: float | None, z: float | None) -> float | None:
    """One number for "the mouth follows this voice": the mean of the two statistics there are."""
    vals = [v for v in (t, z) if v is not None]
    return float(np.mean(vals)) if vals else None


def speaking_scores(model: LightASD, visual: np.ndarray, audio: np.ndarray, fps: float = 25.0) -> np.ndarray:
    """Per-frame score (T,) of the face ``visual`` (T, 128) with the aligned ``audio`` (T, 128):
    the mean over the authors' chunkings of the track into 1-6 s pieces."""
    t = len(visual)
    total = np.zeros(t, np.float64)
    for d, weight in DURATIONS.items():  # a repeated chunking gives the same scores: computed once, weighted
        n = max(1, int(round(d * fps)))
        full = (t // n) * n
        if full:
            s = _batched_scores(model, audio[:full].reshape(-1, n, audio.shape[1]), visual[:full].reshape(-1, n, visual.shape[1]))
            total[:full] += weight * s.reshape(-1)
        if full < t:
            total[full:] += weight * model.scores(model.backend(audio[full:], visual[full:]))
    return (total / sum(DURATIONS.values())).astype(np.float32)


def _fold_maps(x: np.ndarray, block: int = BLOCK, lam: float = RIDGE) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """For each of two folds (alternate blocks): (test mask, projection P, train mean, train
    mask) so that the ridge prediction of a target y on the test frames is
    ``(x_te - mean) @ (P @ (y_tr - mean(y_tr))) + mean(y_tr)``."""
    t = len(x)
    fold = (np.arange(t) // block) % 2
    maps = []
    for f in (0, 1):
        tr = fold != f
        mean = x[tr].mean(axis=0)
        a = x[tr] - mean
        p = np.linalg.solve(a.T @ a + lam * len(a) * np.eye(x.shape[1]), a.T)
        maps.append((fold == f, p, mean, tr))
    return maps


def _cv_corr(x: np.ndarray, y: np.ndarray, maps: list) -> float:
    pred = np.empty(len(y))
    for te, p, mean, tr in maps:
        yt = y[tr]
        pred[te] = (x[te] - mean) @ (p @ (yt - yt.mean())) + yt.mean()
    if pred.std() < 1e-9 or y.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(pred, y)[0, 1])


def sync_z(visual: np.ndarray, loudness: np.ndarray, lags: int = LAGS, fps: float = 25.0) -> float | None:
    """How far the face's mouth follows this audio's loudness above chance, in null standard
    deviations. ``visual`` (T, 128); ``loudness`` (T + 2 MARGIN,) log energy per frame
    starting ``MARGIN`` frames early; lags ``-lags..lags`` (at most ``MARGIN``). None when the
    stretch is too short for a null (under 6 s)."""
    t = len(visual)
    if t < 6 * fps or 2 * BLOCK > t:
        return None
    x = (visual - visual.mean(0)) / (visual.std(0) + 1e-6)
    maps = _fold_maps(x)
    best = max(_cv_corr(x, loudness[MARGIN + k : MARGIN + k + t], maps) for k in range(-lags, lags + 1))
    base = loudness[MARGIN : MARGIN + t]
    shifts = np.linspace(2 * fps, t - 2 * fps, num=min(24, max(4, int((t - 4 * fps) // (fps / 2))))).astype(int)
    null = np.array([_cv_corr(x, np.roll(base, int(s)), maps) for s in shifts])
    return float((best - null.mean()) / (null.std() + 1e-3))


SAMPLES_AT_ONCE = 1 << 20  # audio samples turned to float at a time: memory does not grow with the track
BOOT_AT_ONCE = 1 << 16  # windows (x 18 lags) of bootstrap resamples gathered at a time


def loudness(pcm: np.ndarray, n_frames: int, per_frame: float) -> np.ndarray:
    """Log mean power per frame (n_frames,) of int16 ``pcm`` (``per_frame`` samples a frame).
    The running sum of squares is carried from block to block, so every value is the one a
    single pass over the whole track gives, bit for bit."""
    e = np.clip(np.round(np.arange(n_frames + 1) * per_frame).astype(int), 0, len(pcm))
    at = np.zeros(len(e))  # the running sum at each frame edge
    carry, j = 0.0, 0
    for a in range(0, len(pcm), SAMPLES_AT_ONCE):
        b = min(len(pcm), a + SAMPLES_AT_ONCE)
        x = pcm[a:b].astype(np.float64) / 32768.0
        c = np.cumsum(np.concatenate([[carry], x * x]))  # c[i]: the sum over pcm[:a + i]
        k = int(np.searchsorted(e, b, side="right"))
        at[j:k] = c[e[j:k] - a]
        j, carry = k, float(c[-1])
    power = (at[1:] - at[:-1]) / np.maximum(1, e[1:] - e[:-1])
    return np.log(power + 1e-7)
