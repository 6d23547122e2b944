"""Blur decisions: an absolute threshold for photos, the clip itself as reference for video."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import from_dict, load_preset


@dataclass(frozen=True)
class BlurConfig:
    photo_threshold: float = 0.20
    video_drop: float = 0.25
    window_s: float = 5.0
    borderline: float = 0.05

    @classmethod
    def resolve(cls, preset: str = "blur", **overrides: object) -> "BlurConfig":
        data = load_preset(preset)
        values = dict(data.get("blur", {}))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return from_dict(cls, values, data["name"])


def running_median(scores: np.ndarray, window: int) -> np.ndarray:
    """Centred running median of ``scores`` over ``window`` frames (NaN ignored; shrinks at the ends)."""
    s = np.asarray(scores, np.float64)
    n = len(s)
    half = max(1, window // 2)
    out = np.empty(n)
    for i in range(n):
        seg = s[max(0, i - half) : min(n, i + half + 1)]
        seg = seg[~np.isnan(seg)]
        out[i] = np.median(seg) if len(seg) else np.nan
    return out


def video_reference(scores: np.ndarray, fps: float, cfg: BlurConfig) -> np.ndarray:
    return running_median(scores, max(3, int(round(cfg.window_s * fps))))


def blurred_frames(scores: np.ndarray, fps: float, cfg: BlurConfig) -> np.ndarray:
    """Boolean per frame: the score is ``video_drop`` below the clip's running median.

    A soft but steady clip has a low median and keeps its frames; frames without a face
    (NaN score) are never called blurred.
    """
    s = np.asarray(scores, np.float64)
    ref = video_reference(s, fps, cfg)
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(s < ref - cfg.video_drop, nan=False).astype(bool)


def segments(flags: np.ndarray) -> list[list[int]]:
    """Runs of True as ``[first, last]`` frame pairs."""
    out: list[list[int]] = []
    start = None
    for i, f in enumerate(list(flags) + [False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            out.append([start, i - 1])
            start = None
    return out
