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

from .blur import blur_score, measure_face
from .blurdecide import BlurConfig, describe, judge_photo, judge_video, segments
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


# Photos are searched from this longer side down (prep/detect/pyramid.py): faces from about
# 40 px are found in photos up to 2048 px, and from 40 * side / 2048 px in larger ones.
PHOTO_SIDE = 2048

_cache: dict[DetectSettings, Detector] = {}


def detector_for(s: DetectSettings) -> Detector:
    if s not in _cache:
        _cache[s] = create_detector(s.detector, s.weights_dir, max_side=PHOTO_SIDE, score_threshold=s.score_threshold)
    return _cache[s]


def _error(path: str, exc: Exception) -> dict[str, Any]:
    from .crop import error_record

    return {**error_record(path, exc), "path": path}


def score_photo(path: str, det: DetectSettings, cfg: BlurConfig) -> dict[str, Any]:
    """Score the largest face of a photo at its own resolution (or the whole image when it has
    none) against the absolute photo threshold, and say why a rejected face is soft."""
    try:
        img = read_image(path)
        faces = [f for f in detector_for(det).detect(img) if f.score >= 0.8]
        face = main_face(faces)
        rec: dict[str, Any] = {"path": path, "kind": "photo", "status": "ok", "on_face": face is not None, "faces": len(faces), "threshold": cfg.photo_threshold}
        if face is not None:
            m = measure_face(img, face)
            reason = judge_photo(m, cfg)
            rec.update(m.to_dict())
        else:
            s = blur_score(img, None)
            rec.update({"score": round(s.score, 4), "direction": round(s.direction, 1), "anisotropy": round(s.anisotropy, 4)})
            reason = {"kind": "no_face", "score": round(s.score, 4), "threshold": cfg.photo_threshold} if s.score < cfg.photo_threshold else None
        kept_low_res = reason is not None and reason["kind"] == "low_resolution" and cfg.keep_low_res
        rec["blurry"] = reason is not None and not kept_low_res
        rec["borderline"] = abs(rec["score"] - cfg.photo_threshold) <= cfg.borderline
        rec["reason"] = reason
        rec["why"] = describe(reason) if reason else None
        return rec
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
        vb = judge_video(s, rate, cfg)
        flags, ref, border = vb.blurred, vb.reference, vb.borderline(s, cfg.borderline)
        frames = [
            {
                "frame": i,
                "time": round(i / rate, 4),
                "score": None if math.isnan(v) else round(float(v), 4),
                "blurry": bool(flags[i]),
                "borderline": bool(border[i]),
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
            "rule": cfg.video_rule(),
        }
    except Exception as exc:  # noqa: BLE001
        return _error(path, exc)


def score_file(path: str, det: DetectSettings, cfg: BlurConfig) -> dict[str, Any]:
    """Unit of work of ``prep blur``: :func:`score_video` for a video, :func:`score_photo` otherwise."""
    from .decode import is_video_path

    return score_video(path, det, cfg) if is_video_path(path) else score_photo(path, det, cfg)


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


def move_rejected(path: str, dest_dir: str | Path, reason: dict[str, Any]) -> Path:
    """Move a rejected photo into ``dest_dir/<reason kind>/`` (never overwriting) and log where
    it came from and why in ``dest_dir/rejected.jsonl``."""
    import json
    import shutil

    from .fsutil import check_writable_dir

    dest_dir = check_writable_dir(dest_dir)
    folder = check_writable_dir(Path(dest_dir) / reason["kind"])
    src = Path(path)
    target = folder / src.name
    k = 1
    while target.exists():
        target = folder / f"{src.stem}_{k}{src.suffix}"
        k += 1
    shutil.move(str(src), str(target))
    with open(Path(dest_dir) / "rejected.jsonl", "a") as log:
        log.write(json.dumps({"file": str(target.relative_to(dest_dir)), "from": str(src), "reason": reason, "why": describe(reason)}) + "\n")
    return target


__all__ = ["DetectSettings", "score_photo", "score_video", "move_rejected", "video_tiles", "PrepError"]
