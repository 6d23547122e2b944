"""Segments: the stretches of a face track that make training clips, and why the rest do not.

A candidate is a track's span inside its shot. Frames where the head is turned beyond the
preset's limits or the face is blurred (against its own clip) are cut out, so a track is split
around them; each piece shorter than ``min_seconds`` is rejected as too short, and a piece
longer than ``max_seconds`` (when set) is cut into parts. Each remaining piece gets its own
window by the preset's rules and is rejected when its face is missing from too many frames,
would be enlarged beyond the preset's limit, or shares the output window with another face.

Frames are indices on the analysis timeline (frame ``i`` at ``i / fps`` s); a segment is the
half-open range ``[start, end)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..detect import Face
from ..window import Window, layout_windows, padding
from .pose import head_pose
from .tracks import REAL_SCORE, Track

# reasons, as written in reports
TOO_SHORT = "too_short"
POSE = "pose"
BLUR = "blurred"
FACE_MISSING = "face_missing"
TOO_SMALL = "face_too_small"
SEVERAL = "several_faces"
OTHER_MIN_FRACTION = 0.25  # a face smaller than this share of the subject's is background


@dataclass
class Segment:
    shot: int
    track: int
    start: int
    end: int
    status: str = "kept"  # kept | rejected
    reason: str | None = None
    detail: str | None = None
    part: int | None = None
    geometry: dict[str, Any] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return self.end - self.start

    def reject(self, reason: str, detail: str) -> "Segment":
        self.status, self.reason, self.detail = "rejected", reason, detail
        return self

    def name(self) -> str:
        return f"s{self.shot:02d}_t{self.track:02d}" + (f"_p{self.part:02d}" if self.part is not None else "")

    def to_dict(self, fps: float) -> dict[str, Any]:
        d = {"segment": self.name(), "shot": self.shot, "track": self.track, "source_start": round(self.start / fps, 3), "source_end": round(self.end / fps, 3), "frames": [self.start, self.end], "status": self.status}
        if self.reason:
            d["reason"] = self.reason
            d["why"] = self.detail
        return d


def pose_track(track: Track) -> dict[int, tuple[float, float, float] | None]:
    """Head pose on each analysed frame of the track (``None`` where the landmarks are estimated)."""
    return {i: head_pose(f) for i, f in zip(track.frames, track.faces)}


POSE_WINDOW = 0.5  # s each side: a pose is judged on the median over this window


def frame_marks(track: Track, start: int, end: int, poses: dict[int, Any], blurred: np.ndarray, every: int, limits: tuple[float, float, float], fps: float) -> list[str]:
    """Per frame of ``[start, end)``: ``""`` (usable), ``POSE`` or ``BLUR`` (``blurred``: the
    verdicts of the same frames). A pose holds for the
    frames up to the next analysed one; it is judged on the median over a second around it:
    five landmarks give yaw and roll well, pitch with some frame-to-frame noise (the nose tip's
    height between eyes and mouth), and one bad landmark must not cut a segment."""
    marks = [""] * (end - start)
    seen = [i for i in track.frames if start <= i < end]
    measured = np.array([i for i in seen if poses.get(i) is not None], np.int64)
    angles = np.array([poses[i] for i in measured], np.float64).reshape(-1, 3)
    half = POSE_WINDOW * fps
    for i in seen:
        lo, hi = np.searchsorted(measured, [i - half, i + half + 1e-9])
        if hi > lo and np.any(np.abs(np.median(angles[lo:hi], axis=0)) > np.asarray(limits)):
            for f in range(i, min(end, i + every)):
                marks[f - start] = POSE
    for f in range(start, end):
        if not marks[f - start] and f - start < len(blurred) and blurred[f - start]:
            marks[f - start] = BLUR
    return marks


def pieces(start: int, marks: list[str]) -> list[tuple[int, int, str]]:
    """Runs of equal marks as ``(start, end, mark)``."""
    out: list[tuple[int, int, str]] = []
    for k, m in enumerate(marks):
        if out and out[-1][2] == m and out[-1][1] == start + k:
            out[-1] = (out[-1][0], start + k + 1, m)
        else:
            out.append((start + k, start + k + 1, m))
    return out


def track_span(track: Track, shot_range: tuple[int, int], every: int) -> tuple[int, int]:
    """The frames ``[start, end)`` a track covers inside its shot."""
    a, b = shot_range
    return max(a, track.frames[0]), min(b, track.frames[-1] + every)


SPEECH_REASONS = {
    "no_speech": "no voice in the audio here (a second or more)",
    "not_speaking": "a voice, but this face is not the one speaking (a second or more)",
}


def split_track(shot: int, track_no: int, track: Track, shot_range: tuple[int, int], poses: dict[int, Any], blurred: np.ndarray, fps: float, every: int, cfg: Any, speech: list[str] | None = None) -> list[Segment]:
    """Candidates from one track: usable pieces (kept for now) and rejected ones, with reasons.
    ``blurred``: per frame of the track's span (:func:`track_span`), the blur rule's verdict.
    ``speech``: per frame of the span, ``""`` or a speech reason (the speech check's marks, see
    :func:`prep.video.speaking.marks`) that ends a speaker's turn."""
    start, end = track_span(track, shot_range, every)
    marks = frame_marks(track, start, end, poses, blurred, every, (cfg.max_yaw, cfg.max_pitch, cfg.max_roll), fps)
    if speech is not None:
        marks = [m or s for m, s in zip(marks, speech)]
    min_len = max(1, int(round(cfg.min_seconds * fps)))
    max_len = int(round(cfg.max_seconds * fps)) if cfg.max_seconds else 0
    out: list[Segment] = []
    for s, e, m in pieces(start, marks):
        if m == POSE:
            out.append(Segment(shot, track_no, s, e).reject(POSE, f"head turned beyond the preset's limits (yaw {cfg.max_yaw:g}, pitch {cfg.max_pitch:g}, roll {cfg.max_roll:g} degrees)"))
            continue
        if m == BLUR:
            out.append(Segment(shot, track_no, s, e).reject(BLUR, "the face is blurred (against its own clip)"))
            continue
        if m in SPEECH_REASONS:
            out.append(Segment(shot, track_no, s, e).reject(m, SPEECH_REASONS[m]))
            continue
        if e - s < min_len:
            out.append(Segment(shot, track_no, s, e).reject(TOO_SHORT, f"{(e - s) / fps:.2f} s, the preset needs {cfg.min_seconds:g} s"))
            continue
        cuts = list(range(s, e, max_len)) if max_len else [s]
        for k, p in enumerate(cuts):
            q = min(e, p + max_len) if max_len else e
            seg = Segment(shot, track_no, p, q)
            if q - p < min_len:
                seg.reject(TOO_SHORT, f"the last {(q - p) / fps:.2f} s after cutting into {cfg.max_seconds:g} s parts")
            out.append(seg)
    if len(out) > 1:  # one name per piece: s03_t01_p00, s03_t01_p01, ...
        for k, g in enumerate(out):
            g.part = k
    return out


def segment_geometry(seg: Segment, track: Track, detections: dict[int, list[Face]], frame_w: int, frame_h: int, fps: float, cfg: Any) -> Segment:
    """Window(s) for a kept candidate from its own frames, or the reason it cannot be used."""
    analysed = [i for i in detections if seg.start <= i < seg.end]
    own = {i: f for i, f in zip(track.frames, track.faces) if seg.start <= i < seg.end}
    if not analysed or not own:
        return seg.reject(FACE_MISSING, "no face on its analysed frames")
    presence = len(own) / len(analysed)
    if presence < cfg.segment_presence:
        return seg.reject(FACE_MISSING, f"the face is found on {presence:.0%} of its analysed frames (the preset needs {cfg.segment_presence:.0%})")
    t = np.array(sorted(own))
    faces = [own[i] for i in t]
    centers = np.array([f.center for f in faces])
    sizes = np.array([f.size for f in faces])
    n = seg.frames
    windows = layout_windows(t - seg.start, centers, sizes, n, cfg.mode, cfg.face_fraction, cfg.face_y, cfg.smoothing * fps)
    upscale = cfg.size / float(windows[:, 2].min())
    if upscale > cfg.max_upscale:
        return seg.reject(TOO_SMALL, f"the face ({np.median(sizes):.0f} px) would be enlarged {upscale:.1f}x to {cfg.size} px (the preset allows {cfg.max_upscale:g}x)")
    size = float(np.median(sizes))
    crowded = []
    for i in analysed:
        x, y, side = windows[i - seg.start]
        mine = own.get(i)
        for f in detections[i]:
            if f is mine or f.score < REAL_SCORE or f.size < OTHER_MIN_FRACTION * size:
                continue
            cx, cy = f.center
            if x <= cx <= x + side and y <= cy <= y + side:
                crowded.append(i)
                break
    if len(crowded) > max(1, 0.05 * len(analysed)):
        return seg.reject(SEVERAL, f"another face inside the output window on {len(crowded)} of {len(analysed)} analysed frames (first at {crowded[0] / fps:.2f} s)")
    side_at = windows[t - seg.start, 2]
    fractions = sizes / side_at
    pads = [padding(Window(*w), frame_w, frame_h) for w in (windows[:1] if cfg.mode == "fixed" else windows)]
    seg.geometry = {
        "windows": windows[:1] if cfg.mode == "fixed" else windows,
        "pads": pads,
        "upscale": round(upscale, 3),
        "presence": round(presence, 4),
        "face_scale": {"median": round(float(np.median(fractions)), 4), "min": round(float(fractions.min()), 4), "max": round(float(fractions.max()), 4), "target": cfg.face_fraction},
    }
    return seg


def pose_summary(poses: dict[int, Any], start: int, end: int, fps: float) -> dict[str, Any]:
    """Yaw, pitch and roll of a stretch: medians, largest magnitudes and the per-frame series."""
    series = [(i, p) for i, p in sorted(poses.items()) if start <= i < end and p is not None]
    if not series:
        return {"measured": False, "note": "landmarks estimated from the box (no pose)"}
    arr = np.array([p for _, p in series])
    return {
        "measured": True,
        "median": {k: round(float(v), 1) for k, v in zip(("yaw", "pitch", "roll"), np.median(arr, axis=0))},
        "max_abs": {k: round(float(v), 1) for k, v in zip(("yaw", "pitch", "roll"), np.abs(arr).max(axis=0))},
        "per_frame": [[round((i - start) / fps, 3), *(round(float(v), 1) for v in p)] for i, p in series],
    }
