"""``prep frames``: a video's frames as PNG files (DeepFaceLab's ``%05d.png``), blurred ones set aside.

The unit of work :func:`extract_frames` streams frames to disk one at a time, scores each
face for blur, and at the end moves the frames judged blurred against their own clip into
``OUT/rejected/``. ``OUT/frames.json`` is written last; a finished folder is skipped when
the command runs again with the same settings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .blurdecide import BlurConfig, blurred_frames, segments
from .blurscan import DetectSettings, detector_for
from .decode import iter_frames
from .errors import PrepError
from .fsutil import check_writable_dir, write_json
from .images import write_png
from .probe import probe_video
from .progress import progress
from .videoscan import FrameAnalyzer

REPORT = "frames.json"


def shrink(frame: np.ndarray, longer: int) -> np.ndarray:
    """The frame with its longer side ``longer`` px (never enlarged)."""
    import cv2

    h, w = frame.shape[:2]
    f = longer / max(h, w)
    if f >= 1:
        return frame
    return cv2.resize(frame, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def frame_name(index: int) -> str:
    """DeepFaceLab's naming: 00001.png for the first frame."""
    return f"{index + 1:05d}.png"


def extract_frames(
    src: str,
    out_dir: str,
    det: DetectSettings,
    bcfg: BlurConfig,
    fps: float | None = None,
    reject_blur: bool = False,
    show_progress: bool | None = None,
    tiers: tuple[int, ...] = (),
) -> dict[str, Any]:
    """``tiers``: also (instead) write the frames shrunk so their longer side is each size, in
    ``OUT/<size>/``; scores are measured once, on the full frames."""
    from .crop import error_record

    try:
        return _extract(src, Path(out_dir), det, bcfg, fps, reject_blur, show_progress, tiers)
    except Exception as exc:  # noqa: BLE001 - an item's failure is a value
        return {**error_record(src, exc)}


def _settings(det: DetectSettings, bcfg: BlurConfig, fps: float | None, reject_blur: bool, tiers: tuple[int, ...]) -> dict[str, Any]:
    return {"fps": fps, "reject_blur": reject_blur, "blur": bcfg.__dict__, "detector": det.detector, "tiers": list(tiers)}


def done(src: str, out_dir: str, det: DetectSettings, bcfg: BlurConfig, fps: float | None = None, reject_blur: bool = False, show_progress: bool | None = None, tiers: tuple[int, ...] = ()) -> dict[str, Any] | None:
    """The driver's resume check (same arguments as :func:`extract_frames`): the skipped record
    when ``OUT/frames.json`` (written last) holds this source and these settings, else None."""
    try:
        old = json.loads((Path(out_dir) / REPORT).read_text())
    except (OSError, ValueError):
        return None
    if old.get("status") == "ok" and old.get("settings") == _settings(det, bcfg, fps, reject_blur, tuple(tiers)) and old.get("source") == src:
        return {**old, "status": "skipped", "note": "done in an earlier run"}
    return None


def _extract(src: str, out: Path, det: DetectSettings, bcfg: BlurConfig, fps: float | None, reject_blur: bool, show_progress: bool | None, tiers: tuple[int, ...]) -> dict[str, Any]:
    settings = _settings(det, bcfg, fps, reject_blur, tiers)
    folders = [(out / str(t), t) for t in tiers] or [(out, None)]
    report = out / REPORT
    old = done(src, str(out), det, bcfg, fps, reject_blur, None, tiers)
    if old is not None:
        return old
    info = probe_video(src)
    check_writable_dir(out)
    analyzer = FrameAnalyzer(detector_for(det), every=2)
    scores = []
    for i, frame, _, score in analyzer.run(progress(iter_frames(info, fps), None, Path(src).name, "frame", show_progress)):
        for folder, size in folders:
            write_png(folder / frame_name(i), frame if size is None else shrink(frame, size))
        scores.append(score)
    if not scores:
        raise PrepError(src, "no frames decoded")
    s = np.array(scores, np.float64)
    rate = fps or info.fps
    flags = blurred_frames(s, rate, bcfg)
    rejected = [int(i) for i in np.flatnonzero(flags)]
    if reject_blur and rejected:
        for folder, _ in folders:
            rej = folder / "rejected"
            rej.mkdir(exist_ok=True)
            for i in rejected:
                os.replace(folder / frame_name(i), rej / frame_name(i))
    record = {
        "source": src,
        "status": "ok",
        "out": str(out),
        "settings": settings,
        "source_info": info.to_dict(),
        "frames": len(scores),
        "kept": len(scores) - (len(rejected) if reject_blur else 0),
        "blurred_frames": rejected,
        "blurred_segments": segments(flags),
        "set_aside": reject_blur,
        "blur_rule": bcfg.video_rule(),
        "scores": [None if not np.isfinite(v) else round(float(v), 4) for v in s],
    }
    write_json(report, record)
    return record
