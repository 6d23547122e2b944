"""Writing: the encode pass (a fixed window: one ffmpeg graph that crops, pads and scales;
a window that follows the face: a decode of the part of each frame the windows read, each
frame warped through its own window and streamed to the encoder; either way the audio moved
by the speech check's correction) and the reports. Every output is written under a temporary name and renamed when whole; a report is
written last, because it marks its clip as done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..config import CropConfig
from ..decode import iter_frames
from ..encode import FrameEncoder, encode_fixed
from ..errors import PrepError
from ..fsutil import atomic_path, write_json
from ..probe import VideoInfo
from ..progress import progress
from ..window import affine_to_output, jitter
from .analysis import Analysis
from .outputs import config_key

BORDERS = {"black": cv2.BORDER_CONSTANT, "edge": cv2.BORDER_REPLICATE, "mirror": cv2.BORDER_REFLECT_101}
SHORT_TAIL = 2  # frames a decode may fall short of the rounded frame count; the last one is repeated


def encode_track(info: VideoInfo, cfg: CropConfig, windows: np.ndarray, n: int, dest: Path, show_progress: bool | None = None, start: int = 0, audio_advance: float = 0.0) -> None:
    """Warp every frame through its own window and stream it to the encoder (``n`` frames of
    the output timeline from frame ``start`` on; ``windows[k]`` is for frame ``start + k``;
    the audio moved ``audio_advance`` seconds earlier)."""
    border = BORDERS[cfg.pad]
    W, H = info.display_width, info.display_height
    region = read_region(windows[:n], W, H, cfg.size)
    canvas = np.empty((H, W, 3), np.uint8) if region is not None else None
    rx, ry, rw, rh = region if region is not None else (0, 0, W, H)
    out = None
    enc = FrameEncoder(info, cfg, n, dest, start, audio_advance)
    try:
        for i, frame in enumerate(progress(iter_frames(info, cfg.fps, start=start, count=n, region=region), n, "encode", "frame", show_progress)):
            if i >= n:
                break
            if canvas is not None:  # the part the warp reads, at its place in the frame
                canvas[ry : ry + rh, rx : rx + rw] = frame
                frame = canvas
            out = warp_window(frame, windows[min(i, len(windows) - 1)], cfg.size, border)
            enc.write(out)
        if n - enc.frames > SHORT_TAIL:  # not a rounding of the frame count: the decode broke off
            raise PrepError(info.path, f"the decoder gave {enc.frames} of the {n} frames it should (a damaged stretch?)")
        while enc.frames < n and out is not None:  # decoder fell a frame short of the rounded count
            enc.write(out)
    except BaseException:
        enc.abort()
        raise
    enc.close()


def read_region(windows: np.ndarray, W: int, H: int, size: int, whole: float = 0.8) -> tuple[int, int, int, int] | None:
    """``(x, y, w, h)``: the part of a ``W`` x ``H`` frame that :func:`warp_window` reads for
    any of ``windows`` (``(k, 3)``), or ``None`` when that is most of the frame (``whole``).

    Around the windows: the cubic kernel's reach and the halving's 2 x 2 blocks, in source
    pixels, with room to spare. Where a window passes the frame's edge, the region reaches
    that edge and as far in as the window passes it (a mirrored border reads that far in), so
    the warp of the frame with only this part filled in is the warp of the whole frame."""
    w = np.asarray(windows, np.float64).reshape(-1, 3)
    if not len(w):
        return None
    margin = 4.0 / min(_halving(side, size) for side in w[:, 2]) + 4.0
    x0, x1 = _span(float(w[:, 0].min()), float((w[:, 0] + w[:, 2]).max()), W, margin)
    y0, y1 = _span(float(w[:, 1].min()), float((w[:, 1] + w[:, 2]).max()), H, margin)
    if x1 <= x0 or y1 <= y0 or (x1 - x0) * (y1 - y0) >= whole * W * H:
        return None
    return x0, y0, x1 - x0, y1 - y0


def _span(lo: float, hi: float, length: int, margin: float) -> tuple[int, int]:
    """``[a, b)`` of ``[0, length)`` covering ``[lo, hi]`` and ``margin``; a window past an
    edge by ``d`` makes it reach ``d`` in from that edge (a mirrored border reads that far)."""
    past_lo, past_hi = max(0.0, -lo), max(0.0, hi - length)
    return max(0, int(np.floor(min(lo, length - past_hi) - margin))), min(length, int(np.ceil(max(hi, past_lo) + margin)))


def _halving(side: float, size: int) -> float:
    """The factor :func:`warp_window` first shrinks a frame by for a window of ``side``."""
    f = 1.0
    while side * f / size > 2.0:
        f *= 0.5
    return f


def warp_window(frame: np.ndarray, win: np.ndarray, size: int, border: int) -> np.ndarray:
    """Resample the square window ``win = (x, y, side)`` of ``frame`` to ``size`` x ``size``.

    Large reductions are first halved with area averaging so the result does not alias.
    """
    x, y, side = (float(v) for v in win)
    f = _halving(side, size)
    if f < 1.0:
        frame = cv2.resize(frame, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        x, y, side = (x + 0.5) * f - 0.5, (y + 0.5) * f - 0.5, side * f
    m = affine_to_output(np.array([x, y, side]), size)
    return cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_CUBIC, borderMode=border)


def encode(info: VideoInfo, cfg: CropConfig, geo: dict[str, Any], n: int, video_path: Path, start: int = 0, advance: float = 0.0, show_progress: bool | None = None) -> None:
    """The clip of ``n`` output frames from ``start`` through the planned window(s), written
    whole or not at all: one ffmpeg command for a fixed window, the frame loop for a moving one."""
    windows = geo["windows"]
    try:
        with atomic_path(video_path) as tmp:
            if cfg.mode == "fixed":
                encode_fixed(info, tuple(int(v) for v in windows[0]), cfg.pad, cfg, n, tmp, start=start, audio_advance=advance)
            else:
                encode_track(info, cfg, windows, n, tmp, show_progress, start=start, audio_advance=advance)
    except OSError as exc:
        raise PrepError(video_path, f"cannot write output ({exc.strerror or exc})") from None


def clip_report(src: str, info: VideoInfo, an: Analysis, cfg: CropConfig, geo: dict[str, Any], video_path: Path, report_path: Path, timings: dict[str, float], speech: dict[str, Any] | None) -> dict[str, Any]:
    """A single clip's record, written as its report (last: the report marks the clip as done)."""
    record = {
        "source": src,
        "status": "ok",
        "output": str(video_path),
        "report": str(report_path),
        "config_key": config_key(cfg),
        "config": cfg.to_dict(),
        "source_info": info.to_dict(),
        "output_info": {"size": cfg.size, "fps": cfg.fps, "frames": an.n_frames, "duration": round(an.n_frames / cfg.fps, 6), "audio": info.has_audio},
        "detector": detector_report(an, cfg),
        "mode": cfg.mode,
        "window": {**window_report(info, geo["windows"], cfg.mode), **({"analysed": list(geo["analysed_window"]), "placed_by": "key frames"} if "analysed_window" in geo else {})},
        "face_scale": geo["face_scale"],
        "face_drift": geo["drift"],
        "upscale": geo["upscale"],
        "padding": geo["padding"],
        "blur": blur_report(an.blur, cfg),
        "frames_without_face": an.subject.no_face_frames(),
        "frames_with_several_faces": an.subject.multi_face_frames(),
        **({"person": an.subject.person} if an.subject.person else {}),
        **an.shots.to_dict(),
        **({"speech": speech} if speech is not None else {}),
        "warnings": geo["warnings"],
        "timings": {**{k: round(v, 3) for k, v in timings.items()}, "total": round(sum(timings.values()), 3)},
    }
    write_json(report_path, record)
    return record


def segment_report(src: str, info: VideoInfo, cfg: CropConfig, seg: Any, blur: np.ndarray, blurred: np.ndarray, pose: dict[str, Any], video_path: Path, report_path: Path, key: str, seconds: float, person: dict | None = None, speech: dict | None = None) -> dict[str, Any]:
    """A --split segment's record, written as its report (last: it marks the segment as done)."""
    geo, n = seg.geometry, seg.frames
    windows, pads = geo["windows"], geo["pads"]
    record = {
        "source": src,
        "status": "ok",
        "segment": seg.name(),
        "source_start": round(seg.start / cfg.fps, 3),
        "source_end": round(seg.end / cfg.fps, 3),
        "shot": seg.shot,
        "track": seg.track,
        "output": str(video_path),
        "report": str(report_path),
        "config_key": key,
        "source_info": {"path": src, "display_width": info.display_width, "display_height": info.display_height, "fps": info.fps},
        "output_info": {"size": cfg.size, "fps": cfg.fps, "frames": n, "duration": round(n / cfg.fps, 6), "audio": info.has_audio},
        "mode": cfg.mode,
        "window": window_report(info, windows, cfg.mode),
        "face_scale": geo["face_scale"],
        "upscale": round(cfg.size / float(np.asarray(windows)[:, 2].min()), 3),  # this size's (with --tiers, judged at the largest)
        "face_presence": geo["presence"],
        "padding": {"frames_padded": sum(p.any for p in pads) * (n if cfg.mode == "fixed" else 1), "max_area_fraction": round(max(p.area_fraction for p in pads), 4), "mode": cfg.pad},
        "blur": blur_report(blur, cfg, blurred),
        "pose": pose,
        **({"person": person} if person else {}),
        **({"speech": speech} if speech is not None else {}),
        "timings": {"encode": round(seconds, 3)},
    }
    write_json(report_path, record)
    return record


def rejected_report(src: str, info: VideoInfo, cfg: CropConfig, report_path: Path, verdict: tuple[str, str], speech: dict[str, Any]) -> dict[str, Any]:
    """A clip rejected by the speech check: no video, a report saying why (it marks the clip
    as done, so a rerun with the same settings does not analyse it again)."""
    reason, why = verdict
    record = {
        "source": src,
        "status": "rejected",
        "reason": reason,
        "why": why,
        "message": f"{src}: rejected ({reason.replace('_', ' ')}): {why}",
        "report": str(report_path),
        "config_key": config_key(cfg),
        "config": cfg.to_dict(),
        "source_info": info.to_dict(),
        "speech": speech,
    }
    write_json(report_path, record)
    return record


def detector_report(an: Analysis, cfg: CropConfig) -> dict[str, Any]:
    return {"name": an.detector, "note": an.detector_note, "analysed_frames": len(an.sampled), "every": cfg.detect_every}


def blur_report(scores: np.ndarray, cfg: CropConfig, flags: np.ndarray | None = None) -> dict[str, Any]:
    """Per-frame blur scores and the frames judged blurred against the clip itself (``flags``:
    the verdicts already made over a longer stretch, such as a --split segment's whole track)."""
    from ..blurdecide import BlurConfig, blurred_frames, segments

    bcfg = BlurConfig.resolve()
    flags = blurred_frames(scores, cfg.fps, bcfg) if flags is None else flags
    finite = scores[np.isfinite(scores)]
    return {
        "rule": bcfg.video_rule(),
        "median": round(float(np.median(finite)), 4) if len(finite) else None,
        "blurred_frames": [int(i) for i in np.flatnonzero(flags)],
        "blurred_segments": segments(flags),
        "scores": [None if not np.isfinite(v) else round(float(v), 4) for v in scores],
    }


def window_report(info: VideoInfo, windows: np.ndarray, mode: str) -> dict[str, Any]:
    """Windows in display pixels and in stored source pixels (x scaled back by the pixel aspect)."""
    sar = float(info.sar)
    first = windows[0]
    rep: dict[str, Any] = {
        "coordinates": "display (upright, square pixels)",
        "x": round(float(first[0]), 2),
        "y": round(float(first[1]), 2),
        "side": round(float(first[2]), 2),
    }
    if sar != 1.0 and info.rotation % 180 == 0:
        x, y, side = (float(v) for v in first)
        if info.rotation == 180:  # the stored frame is upside down: the window from its other corner
            x, y = info.display_width - x - side, info.display_height - y - side
        rep["stored_px"] = {"x": round(x / sar, 2), "y": round(y, 2), "w": round(side / sar, 2), "h": round(side, 2)}
    if mode == "track":
        rep["per_frame"] = np.round(windows, 1).tolist()
        rep["jitter"] = round(jitter(windows), 6)
        rep["side_range"] = [round(float(windows[:, 2].min()), 1), round(float(windows[:, 2].max()), 1)]
    return rep
