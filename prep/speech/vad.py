"""Voice activity: which video frames have a voice in their audio (Google WebRTC's VAD).

WebRTC's detector judges 20 ms of 16 kHz audio at a time from sub-band energies with a
Gaussian mixture (no model file). A video frame is voiced when at least half of its 20 ms
pieces are; gaps shorter than ``bridge`` seconds (stops between syllables) are closed.
"""

from __future__ import annotations

import numpy as np

from .audio import RATE

PIECE = 320  # samples: 20 ms at 16 kHz
PIECES_AT_ONCE = 4096
MIN_RMS = 10 ** (-55 / 20) * 32768  # int16 RMS below -55 dBFS is silence, whatever the VAD says


def voiced_pieces(pcm: np.ndarray, aggressiveness: int = 2) -> np.ndarray:
    """One bool per 20 ms piece of 16 kHz mono int16 ``pcm`` (a partial last piece is dropped)."""
    import webrtcvad

    vad = webrtcvad.Vad(aggressiveness)
    n = len(pcm) // PIECE
    x = np.ascontiguousarray(pcm[: n * PIECE], dtype=np.int16).reshape(n, PIECE)
    out = np.zeros(n, bool)
    for a in range(0, n, PIECES_AT_ONCE):  # a block at a time: memory does not grow with the track
        block = x[a : a + PIECES_AT_ONCE]
        loud = np.sqrt(np.mean(block.astype(np.float64) ** 2, axis=1)) >= MIN_RMS
        out[a : a + len(block)] = [bool(lo) and vad.is_speech(piece.tobytes(), RATE) for lo, piece in zip(loud, block)]
    return out


def voiced_frames(pcm: np.ndarray, fps: float, n_frames: int, aggressiveness: int = 2, bridge: float = 0.3) -> np.ndarray:
    """``(n_frames,)`` bool: video frame ``i`` (from ``i / fps`` to ``(i + 1) / fps`` s of
    ``pcm``) has a voice."""
    pieces = voiced_pieces(pcm, aggressiveness).astype(np.float64)
    out = np.zeros(n_frames, bool)
    edges = np.round(np.arange(n_frames + 1) * RATE / fps / PIECE).astype(int)
    for i in range(n_frames):
        a, b = edges[i], max(edges[i] + 1, edges[i + 1])
        if a < len(pieces):
            out[i] = pieces[a:b].mean() >= 0.5
    return close_gaps(out, int(round(bridge * fps)))


def close_gaps(flags: np.ndarray, gap: int) -> np.ndarray:
    """``flags`` with runs of False of at most ``gap`` frames between two True runs set True."""
    out = flags.copy()
    idx = np.flatnonzero(flags)
    for a, b in zip(idx[:-1], idx[1:]):
        if 1 < b - a <= gap + 1:
            out[a + 1 : b] = True
    return out
