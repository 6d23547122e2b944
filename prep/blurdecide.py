"""Blur decisions: an absolute threshold for photos, the clip itself as reference for video.

Video: a frame is blurred when its score falls below the clip's running median (its
reference) by more than the clip's own frame-to-frame spread allows, and by at least a
floor. The spread is a robust standard deviation (1.4826 MAD) of the scores around their
reference, over a longer window. Judging the drop against the clip's own spread is what makes
the decision independent of the detector: a face aligned from landmarks (YuNet) or from a box
(HOG) scores at a somewhat different level and with different noise, but a blurred frame
stands out of its own clip by about as many spreads either way (README "Blur").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .config import from_dict, load_preset

if TYPE_CHECKING:
    from .blur import FaceBlur

MAD_TO_SD = 1.4826  # a normal distribution's standard deviation per median absolute deviation


@dataclass(frozen=True)
class BlurConfig:
    photo_threshold: float = 0.20
    video_drop: float = 0.20  # the least drop below the reference that can count as blur
    spread_k: float = 3.0  # ... and it must exceed this many robust SDs of the clip's spread
    window_s: float = 5.0  # running median (the reference), seconds
    spread_window_s: float = 30.0  # running spread, seconds
    borderline: float = 0.05
    low_res_enlargement: float = 2.0  # photos: faces enlarged more than this to reach the measuring scale are low resolution
    keep_low_res: bool = False  # photos: keep low-resolution faces that are not blurred
    motion_anisotropy: float = 0.1  # photos: a blurred face with log(l_max / l_min) above this is motion-blurred

    @classmethod
    def resolve(cls, preset: str = "blur", **overrides: object) -> "BlurConfig":
        data = load_preset(preset)
        values = dict(data.get("blur", {}))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return from_dict(cls, values, data["name"])

    def video_rule(self) -> str:
        return (
            f"score below the clip's running median ({self.window_s:g} s) by more than {self.spread_k:g} robust SDs "
            f"of the clip's own spread ({self.spread_window_s:g} s) and by at least {self.video_drop}"
        )


REASON_KINDS = ("motion", "defocus", "low_resolution", "no_face")


def judge_photo(m: "FaceBlur", cfg: BlurConfig) -> dict | None:
    """Why a photo's face is no sharp training target, or ``None`` when it is one.

    ``motion``: below the threshold and directional (with the direction and an estimated length
    in the photo's pixels); ``defocus``: below the threshold in every direction (defocus or
    soft focus); ``low_resolution``: not blurred at its own resolution, but so small that it had
    to be enlarged more than ``low_res_enlargement`` times to reach the measuring scale (kept
    with ``keep_low_res``).
    """
    if m.score < cfg.photo_threshold:
        base = {"score": round(m.score, 4), "threshold": cfg.photo_threshold, "anisotropy": round(m.anisotropy, 4)}
        if m.anisotropy >= cfg.motion_anisotropy:
            return {"kind": "motion", **base, "direction": round(m.direction, 1), "length_px": round(m.length_px, 1)}
        return {"kind": "defocus", **base}
    if m.enlargement > cfg.low_res_enlargement:
        return {"kind": "low_resolution", "enlargement": round(m.enlargement, 2), "limit": cfg.low_res_enlargement, "measured_px": m.measured_px}
    return None


def describe(reason: dict) -> str:
    """One line for people."""
    k = reason["kind"]
    if k == "motion":
        return f"motion blur along {reason['direction']:.0f} deg, about {reason['length_px']:.0f} px long (score {reason['score']:.3f} < {reason['threshold']})"
    if k == "defocus":
        return f"defocus or soft focus, not directional (score {reason['score']:.3f} < {reason['threshold']})"
    if k == "low_resolution":
        return f"low resolution: the face had to be enlarged {reason['enlargement']:.1f}x to reach the measuring scale (limit {reason['limit']})"
    return f"no face found: the whole image scores {reason['score']:.3f} < {reason['threshold']}"


def window_bounds(n: int, seconds: float, fps: float, times: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)``: frame ``i``'s centred window of about ``seconds`` is ``[lo[i], hi[i])``.
    Without ``times`` it is counted in frames at ``fps``; with each frame's own time (a
    variable-frame-rate video) it reaches as far in time either way, however many frames that is."""
    half = max(1, max(3, int(round(seconds * fps))) // 2)
    i = np.arange(n)
    if times is None:
        return np.maximum(0, i - half), np.minimum(n, i + half + 1)
    t = np.asarray(times, np.float64)[:n]
    if len(t) < n:  # frames past the last known time: on at the nominal rate
        last = t[-1] if len(t) else 0.0
        t = np.concatenate([t, last + np.arange(1, n - len(t) + 1) / fps])
    reach = half / fps + 1e-6
    return np.searchsorted(t, t - reach, "left"), np.searchsorted(t, t + reach, "right")


def running_median(scores: np.ndarray, window: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Running median of ``scores`` over each frame's window ``(lo, hi)`` from
    :func:`window_bounds` (NaN ignored; the windows shrink at the ends)."""
    s = np.asarray(scores, np.float64)
    n = len(s)
    lo, hi = window
    out = np.full(n, np.nan)
    for i in range(n):
        seg = s[lo[i] : hi[i]]
        seg = seg[~np.isnan(seg)]
        if len(seg):
            out[i] = np.median(seg)
    return out


@dataclass(frozen=True)
class VideoBlur:
    """Per-frame decisions of one clip: ``reference`` (running median), ``needed`` (the drop
    below it that counts as blur at that frame) and ``blurred``. NaN where no face was scored."""

    reference: np.ndarray
    needed: np.ndarray
    blurred: np.ndarray

    def borderline(self, scores: np.ndarray, margin: float) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.nan_to_num(np.abs(scores - (self.reference - self.needed)) <= margin, nan=False).astype(bool)


def judge_video(scores: np.ndarray, fps: float, cfg: BlurConfig, times: np.ndarray | None = None) -> VideoBlur:
    """Clip-relative decisions for per-frame ``scores`` (higher is sharper, NaN without a face).

    A soft but steady clip has a low median and keeps its frames; a noisy clip needs a
    deeper drop; frames without a face are never called blurred. ``times``: each frame's own
    time (a variable-frame-rate video), so the windows span seconds, not frames at the mean rate.
    """
    s = np.asarray(scores, np.float64)
    ref = running_median(s, window_bounds(len(s), cfg.window_s, fps, times))
    resid = np.abs(s - ref)
    spread = MAD_TO_SD * running_median(resid, window_bounds(len(s), cfg.spread_window_s, fps, times))
    needed = np.maximum(cfg.video_drop, cfg.spread_k * np.nan_to_num(spread, nan=0.0))
    with np.errstate(invalid="ignore"):
        blurred = np.nan_to_num(ref - s > needed, nan=False).astype(bool)
    return VideoBlur(ref, needed, blurred)


def blurred_frames(scores: np.ndarray, fps: float, cfg: BlurConfig, times: np.ndarray | None = None) -> np.ndarray:
    """Boolean per frame: judged blurred against its own clip (see :func:`judge_video`)."""
    return judge_video(scores, fps, cfg, times).blurred


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
