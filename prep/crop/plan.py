"""Planning: plain functions from analysed facts to windows, segments, verdicts and reasons.

Nothing here decodes or writes. A single clip gets :func:`clip_geometry` (its window or
per-frame windows, padding, face scale and warnings, or the error that fails it); --split
gets each face track's blur series and speech verdicts per segment (the segments themselves
come from :mod:`prep.video.segments`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import CropConfig
from ..detect import main_face
from ..errors import PrepError
from ..probe import VideoInfo
from ..video import speaking
from ..window import Window, layout_windows, padding
from .analysis import Analysis

DRIFT_WARN = 0.05  # fixed mode: warn when the face strays this far (share of the side) from the centre
OTHER_PERSON = "other_person"


def clip_geometry(info: VideoInfo, cfg: CropConfig, an: Analysis, window: tuple[int, int, int] | None = None) -> dict[str, Any]:
    """Window(s), padding, face scale and warnings for a clip; raises when the clip must fail.
    ``window``: fixed mode, the window the clip was encoded with (the key-frame look's, kept
    because it is close to the analysed one), described instead of the analysed one."""
    subj = an.subject
    sampled = len(an.sampled)
    warnings: list[str] = []
    if an.shots.transitions:
        cuts = ", ".join(f"{c:.2f} s" for c in an.shots.cuts)
        if cfg.mode == "fixed":
            raise PrepError(info.path, f"the clip has {len(an.shots.transitions)} cut(s) (at {cuts}); preset {cfg.preset} keeps one fixed window, which needs one continuous shot: use --split to make one clip per shot and person")
        warnings.append(f"the clip has {len(an.shots.transitions)} cut(s) (at {cuts}): --split makes one clip per shot and person")
    if subj.presence < cfg.min_presence:
        raise PrepError(
            info.path,
            f"the subject's face is in only {subj.presence:.0%} of {sampled} analysed frames (preset {cfg.preset} needs {cfg.min_presence:.0%})",
        )
    missing = subj.no_face_frames()
    if missing:  # allowed by the preset, but a trainer that reads landmarks per frame meets them
        warnings.append(f"no face found on {len(missing)} of {sampled} analysed frames (first at {missing[0] / cfg.fps:.2f} s): a trainer that needs a face on every frame (GeneFace++'s landmark step) trips on them; cut them out or use another clip")
    multi = subj.multi_face_frames()
    if cfg.single_face and multi:
        raise PrepError(
            info.path, f"several faces in {len(multi)} of {sampled} analysed frames (first at frame {multi[0]}); preset {cfg.preset} needs exactly one"
        )
    t = np.array(sorted(subj.subject))
    faces = [subj.subject[i] for i in t]
    centers = np.array([f.center for f in faces])
    sizes = np.array([f.size for f in faces])
    W, H = info.display_width, info.display_height
    sigma = cfg.smoothing * cfg.fps
    windows = layout_windows(t, centers, sizes, an.n_frames, cfg.mode, cfg.face_fraction, cfg.face_y, sigma)
    if cfg.mode == "fixed":
        windows = windows[:1] if window is None else np.array([window], np.float64)
        x, y, side = windows[0]
        pads = [padding(Window(x, y, side), W, H)]
        cx, cy = x + side / 2.0, y + cfg.face_y * side
        drift = float(np.max(np.hypot(centers[:, 0] - cx, centers[:, 1] - cy)) / side)
        if drift > DRIFT_WARN:
            warnings.append(f"fixed window: the face moves up to {drift:.0%} of the side away from its place; --mode track follows it")
        fractions = sizes / side
    else:
        pads = [padding(Window(*row), W, H) for row in windows]
        side_at = windows[t, 2]
        cx = windows[t, 0] + side_at / 2.0
        cy = windows[t, 1] + cfg.face_y * side_at
        drift = float(np.max(np.hypot(centers[:, 0] - cx, centers[:, 1] - cy) / side_at))
        fractions = sizes / side_at
    min_side = float(windows[:, 2].min())
    upscale = cfg.size / min_side
    if upscale > cfg.max_upscale:
        warnings.append(f"the face is enlarged {upscale:.1f}x (window {min_side:.0f} px for {cfg.size} px output): low-resolution result")
    padded = [p for p in pads if p.any]
    pad_max = max((p.area_fraction for p in pads), default=0.0)
    if padded:
        warnings.append(f"the window leaves the frame: up to {pad_max:.0%} of the picture is padding ({cfg.pad})")
    lo, hi = cfg.face_fraction_range
    med = float(np.median(fractions))
    if not lo <= med <= hi:
        warnings.append(f"face scale {med:.2f} is outside the preset's range {lo}-{hi}")
    no_face = subj.no_face_frames()
    if no_face:
        warnings.append(f"no face in {len(no_face)} of {sampled} analysed frames")
    if multi:
        warnings.append(f"several faces in {len(multi)} of {sampled} analysed frames")
    return {
        "windows": windows,
        "pads": pads,
        "warnings": warnings,
        "face_scale": {"median": round(med, 4), "min": round(float(fractions.min()), 4), "max": round(float(fractions.max()), 4), "target": cfg.face_fraction},
        "drift": round(drift, 4),
        "upscale": round(upscale, 3),
        "padding": {
            "frames_padded": len(padded) if cfg.mode == "track" else (an.n_frames if padded else 0),
            "max_area_fraction": round(pad_max, 4),
            "max_px": {k: round(max(getattr(p, k) for p in pads), 1) for k in ("left", "top", "right", "bottom")},
            "mode": cfg.pad,
        },
    }


def speech_report(facts: Any, cfg: CropConfig, start: int, end: int) -> dict[str, Any]:
    """The ``speech`` report of output frames ``[start, end)`` of a track from its facts (or
    the report of why it has none)."""
    return dict(facts) if isinstance(facts, dict) else speaking.stretch(facts, cfg, start, end)


def track_blur(an: Analysis, tr: Any, every: int, start: int, end: int) -> np.ndarray:
    """Per output frame of the track's span ``[start, end)``: the clip's blur score where this
    track's face was the one scored (the frame's main face), NaN elsewhere, so the blur rule
    judges the track against itself. Only the span is kept: memory grows with the tracks'
    length, not with their number times the video's."""
    out = np.full(end - start, np.nan)
    for i, f in zip(tr.frames, tr.faces):
        if start <= i < end and main_face(an.detections[i]) is f:
            b = min(end, i + every)
            out[i - start : b - start] = an.blur[i:b]
    return out


def other_speaker(facts: dict, seg: Any, cfg: CropConfig, rep: dict[str, Any]) -> tuple[str, str] | None:
    """Two faces in a shot and one voice: the one whose mouth follows it more is the speaker,
    where it speaks in this segment's stretch (in a dialogue, each face keeps its own turns).
    ``facts``: every track's :class:`~prep.video.tracks.TrackFacts`, by ``(shot, track)``."""
    if cfg.speech != "require" or rep.get("sync") is None:
        return None
    for (shot, tno), f in facts.items():
        ts = f.speech
        if shot != seg.shot or tno == seg.track or ts is None or isinstance(ts, dict):
            continue
        if ts.t0 * cfg.fps >= seg.end or (ts.t0 + ts.n / speaking.sp.RATE) * cfg.fps <= seg.start:
            continue
        other = speaking.stretch(ts, cfg, seg.start, seg.end)
        speaks_here = (other.get("speaking") or 0.0) >= cfg.speech_min_speaking
        if speaks_here and other.get("sync") is not None and other["sync"] >= cfg.speech_min_sync and other["sync"] > rep["sync"]:
            return speaking.sp.NOT_SPEAKING, f"another face in the shot is the one speaking (its sync {other['sync']:.1f} against this face's {rep['sync']:.1f})"
    return None


def not_the_person(match: Any, cfg: CropConfig) -> tuple[str, str]:
    """--person: the reason and the words for a segment whose face is someone else."""
    sim = match.similarity if match.similarity is not None else float("nan")
    return OTHER_PERSON, f"not the person: similarity {sim:.3f} < {cfg.person.threshold:.3f}" + (f" (uncertain: {match.reason})" if match.uncertain else "")


def why_empty(an: Analysis, segs: list[dict[str, Any]]) -> str:
    """Why a source gave no clip at all."""
    if not segs:
        if not any(an.detections.values()):
            return f"no face found in any of {len(an.sampled)} analysed frames"
        return "no face persists in any shot (faces seen only on single frames or too weak)"
    counts: dict[str, int] = {}
    for e in segs:
        counts[e["reason"]] = counts.get(e["reason"], 0) + 1
    return "every candidate segment was rejected: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))
