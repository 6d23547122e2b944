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
from .detect import Detector, cached_detector, main_face
from .errors import PrepError
from .images import read_image
from .probe import frame_times, probe_video
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

def detector_for(s: DetectSettings) -> Detector:
    return cached_detector(s.detector, s.weights_dir, max_side=PHOTO_SIDE, score_threshold=s.score_threshold)


def _error(path: str, exc: Exception) -> dict[str, Any]:
    from .errors import error_record

    return {**error_record(path, exc), "path": path}


def score_photo(path: str, det: DetectSettings, cfg: BlurConfig, person: Any = None) -> dict[str, Any]:
    """Score the largest face of a photo at its own resolution (or the whole image when it has
    none) against the absolute photo threshold, and say why a rejected face is soft.

    ``person`` (:class:`prep.identity.Reference`): score the largest face of that person; a
    photo without them is not judged (``other_person`` true) and carries the best similarity."""
    try:
        img = read_image(path)
        faces = [f for f in detector_for(det).detect(img) if f.score >= 0.8]
        match = None
        if person is not None:
            faces, match = _person_faces(img, faces, person)
            if not faces:
                return {"path": path, "kind": "photo", "status": "ok", "other_person": True, "person": match, "blurry": False, "borderline": False, "reason": None,
                        "why": "the person is not in this photo" + (f" (best similarity {match['similarity']:.3f} < {person.threshold:.3f})" if match else " (no face)")}
        face = main_face(faces)
        rec: dict[str, Any] = {"path": path, "kind": "photo", "status": "ok", "on_face": face is not None, "faces": len(faces), "threshold": cfg.photo_threshold}
        if match is not None:
            rec["person"] = match
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


def _person_faces(img: np.ndarray, faces: list, person: Any) -> tuple[list, dict[str, Any] | None]:
    """The faces of ``person`` among ``faces`` and the match of the best face (``None`` without faces)."""
    from .identity import embed, face_match

    matches = [(f, face_match(embed(img, f), person)) for f in faces]
    if not matches:
        return [], None
    kept = [(f, m) for f, m in matches if m["matched"]]
    best = max(kept or matches, key=lambda fm: (fm[0].size if kept else fm[1]["similarity"]))
    return [f for f, _ in kept], best[1]


def score_video(path: str, det: DetectSettings, cfg: BlurConfig, fps: float | None = None, show_progress: bool | None = None, person: Any = None) -> dict[str, Any]:
    """Score every frame's face; a frame is blurred when it falls well below its own clip.

    ``person`` (:class:`prep.identity.Reference`): score that person's face, ignore the others;
    frames without the person count as frames without a face."""
    try:
        info = probe_video(path)
        rate = fps or info.fps
        frames_in = progress(iter_frames(info, fps, max_side=960), None, Path(path).name, "frame", show_progress)
        if person is not None:
            s, presence = _person_scores(frames_in, det, person, rate)
        else:
            analyzer = FrameAnalyzer(detector_for(det), every=1)
            s, presence = np.array([score for _, _, _, score in analyzer.run(frames_in)], np.float64), None
        times = frame_times(info) if fps is None and info.vfr else None  # every frame of a VFR video: its own time
        vb = judge_video(s, rate, cfg, times)
        flags, ref, border = vb.blurred, vb.reference, vb.borderline(s, cfg.borderline)
        frames = [
            {
                "frame": i,
                "time": round(float(times[i]) if times is not None and i < len(times) else i / rate, 4),
                "score": None if math.isnan(v) else round(float(v), 4),
                "blurry": bool(flags[i]),
                "borderline": bool(border[i]),
                "reference": None if math.isnan(ref[i]) else round(float(ref[i]), 4),
            }
            for i, v in enumerate(s)
        ]
        finite = s[np.isfinite(s)]
        if presence is not None:
            for fr, p in zip(frames, presence):
                fr["person"], fr["similarity"] = p["person"], p["similarity"]
        return {
            "path": path,
            "kind": "video",
            "status": "ok",
            "frames": frames,
            "fps": rate,
            "median": round(float(np.median(finite)), 4) if len(finite) else None,
            "blurred": int(flags.sum()),
            "no_face": int((~np.isfinite(s)).sum()),
            **({"person": person.to_dict()} if person is not None else {}),
            "segments": segments(flags),
            "rule": cfg.video_rule(),
        }
    except Exception as exc:  # noqa: BLE001
        return _error(path, exc)


def _person_scores(frames: Any, det: DetectSettings, person: Any, rate: float) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Blur scores of the person's face on every frame (NaN where the person is not seen) and
    the per-frame presence of :class:`prep.identity.PresenceScan`. Every confident face is
    scored (cheap); which one is the person's is known on the embedded frames and carried to
    the others by position (the face nearest to where the person was on the nearest embedded frame)."""
    from .identity import PresenceScan

    scan = PresenceScan(person, stride=max(1, round(rate / 4)))
    analyzer = FrameAnalyzer(detector_for(det), every=1, blur=False, search_new_shots=True)
    per_frame: list[list[tuple[tuple[float, float], float]]] = []
    for i, frame, faces, _ in analyzer.run(frames):
        confident = [f for f in (faces or []) if f.score >= scan.min_score]
        scan.feed(i, frame, confident)
        per_frame.append([(f.center, blur_score(frame, f).score) for f in confident])
    presence = scan.finish()
    measured = np.array(sorted(scan.best_face))
    scores = np.full(len(per_frame), np.nan)
    for i, faces in enumerate(per_frame):
        if not presence[i]["person"] or not faces:
            continue
        if i in scan.best_face:
            scores[i] = faces[scan.best_face[i]][1]
            continue
        near = [int(k) for k in measured[np.argsort(np.abs(measured - i), kind="stable")] if presence[int(k)]["person"]][:1]
        if near:
            cx, cy = per_frame[near[0]][scan.best_face[near[0]]][0]
            scores[i] = min(faces, key=lambda fs: (fs[0][0] - cx) ** 2 + (fs[0][1] - cy) ** 2)[1]
    return scores, presence


def score_file(path: str, det: DetectSettings, cfg: BlurConfig, person: Any = None) -> dict[str, Any]:
    """Unit of work of ``prep blur``: :func:`score_video` for a video, :func:`score_photo` otherwise."""
    from .decode import is_video_path

    return score_video(path, det, cfg, person=person) if is_video_path(path) else score_photo(path, det, cfg, person=person)


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
