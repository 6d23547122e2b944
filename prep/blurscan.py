"""``prep blur``: score photos and video frames for blur, decide, and explain.

Units of work (plain functions of (item, config) returning records, never raising for bad
input): :func:`score_photo` and :func:`score_video`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .blur import blur_score, grey_canonical
from .blurdecide import BlurConfig, blurred_frames, segments, video_reference
from .decode import iter_frames
from .detect import Detector, create_detector, main_face
from .errors import PrepError
from .images import read_image
from .probe import probe_video
from .progress import progress
from .videoscan import FrameAnalyzer


@dataclass(frozen=True)
class DetectSettings:
    detector: str = "auto"
    weights_dir: str | None = None
    score_threshold: float = 0.6


_cache: dict[DetectSettings, Detector] = {}


def detector_for(s: DetectSettings) -> Detector:
    if s not in _cache:
        _cache[s] = create_detector(s.detector, s.weights_dir, max_side=1280, score_threshold=s.score_threshold)
    return _cache[s]


def _error(path: str, exc: Exception) -> dict[str, Any]:
    from .crop import error_record

    return {**error_record(path, exc), "path": path}


def score_photo(path: str, det: DetectSettings, cfg: BlurConfig) -> dict[str, Any]:
    """Score the largest face of a photo (or the whole image when it has none) against the
    absolute photo threshold."""
    try:
        img = read_image(path)
        faces = [f for f in detector_for(det).detect(img) if f.score >= 0.8]
        face = main_face(faces)
        s = blur_score(img, face)
        blurry = s.score < cfg.photo_threshold
        return {
            "path": path,
            "kind": "photo",
            "status": "ok",
            "score": round(s.score, 4),
            "blurry": bool(blurry),
            "borderline": abs(s.score - cfg.photo_threshold) <= cfg.borderline,
            "on_face": s.on_face,
            "faces": len(faces),
            "direction": round(s.direction, 1),
            "threshold": cfg.photo_threshold,
            "reason": (f"blur score {s.score:.3f} below the photo threshold {cfg.photo_threshold}" if blurry else None)
            if face is not None
            else ("no face found: scored on the whole image" + (f"; {s.score:.3f} below {cfg.photo_threshold}" if blurry else "")),
        }
    except Exception as exc:  # noqa: BLE001 - an item's failure is a value
        return _error(path, exc)


def score_video(path: str, det: DetectSettings, cfg: BlurConfig, fps: float | None = None, show_progress: bool | None = None) -> dict[str, Any]:
    """Score every frame's face; a frame is blurred when it falls well below its own clip."""
    try:
        info = probe_video(path)
        analyzer = FrameAnalyzer(detector_for(det), every=1)
        rate = fps or info.fps
        scores = []
        for _, _, _, score in analyzer.run(progress(iter_frames(info, fps, max_side=960), None, Path(path).name, "frame", show_progress)):
            scores.append(score)
        s = np.array(scores, np.float64)
        flags = blurred_frames(s, rate, cfg)
        ref = video_reference(s, rate, cfg)
        frames = [
            {
                "frame": i,
                "time": round(i / rate, 4),
                "score": None if math.isnan(v) else round(float(v), 4),
                "blurry": bool(flags[i]),
                "borderline": bool(not math.isnan(v) and not math.isnan(ref[i]) and abs(v - (ref[i] - cfg.video_drop)) <= cfg.borderline),
                "reference": None if math.isnan(ref[i]) else round(float(ref[i]), 4),
            }
            for i, v in enumerate(s)
        ]
        finite = s[np.isfinite(s)]
        return {
            "path": path,
            "kind": "video",
            "status": "ok",
            "frames": frames,
            "fps": rate,
            "median": round(float(np.median(finite)), 4) if len(finite) else None,
            "blurred": int(flags.sum()),
            "no_face": int((~np.isfinite(s)).sum()),
            "segments": segments(flags),
            "rule": f"score more than {cfg.video_drop} below the clip's running median ({cfg.window_s:g} s)",
        }
    except Exception as exc:  # noqa: BLE001
        return _error(path, exc)


def video_tiles(path: str, indices: list[int], fps: float | None, det: DetectSettings) -> dict[int, np.ndarray]:
    """Face crops of the listed frames (a second decode, only when a sheet is asked for)."""
    want = set(indices)
    out: dict[int, np.ndarray] = {}
    info = probe_video(path)
    detector = detector_for(det)
    for i, frame in enumerate(iter_frames(info, fps, max_side=960)):
        if i in want:
            face = main_face(detector.detect(frame))
            out[i] = face_crop(frame, face)
            if len(out) == len(want):
                break
    return out


def face_crop(image: np.ndarray, face) -> np.ndarray:
    """What a person should look at: the aligned face in colour, or the whole image."""
    from .align import align

    return align(image, face, 256) if face is not None else image


def move_rejected(path: str, dest_dir: str | Path, reason: str) -> Path:
    """Move a rejected photo into ``dest_dir`` (never overwriting) and log why in ``rejected.jsonl``."""
    import json
    import shutil

    from .fsutil import check_writable_dir

    dest_dir = check_writable_dir(dest_dir)
    src = Path(path)
    target = dest_dir / src.name
    k = 1
    while target.exists():
        target = dest_dir / f"{src.stem}_{k}{src.suffix}"
        k += 1
    shutil.move(str(src), str(target))
    with open(dest_dir / "rejected.jsonl", "a") as log:
        log.write(json.dumps({"file": target.name, "from": str(src), "reason": reason}) + "\n")
    return target


__all__ = ["DetectSettings", "score_photo", "score_video", "move_rejected", "video_tiles", "PrepError"]
