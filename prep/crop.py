"""``prep crop``: one video in, one face-centred square clip and its report out.

The unit of work is :func:`crop_video` — a plain, picklable function of (source, output root,
resolved config) that returns a result record and never raises for bad input, so a local
process pool, a cluster scheduler or a plain loop can map it over a batch.

Path of a clip: probe -> analysis pass (decode small frames at the output rate, detect on
every ``detect_every``-th) -> subject -> window(s) -> encode pass -> report (written last;
it is the resume marker).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .config import CropConfig
from .decode import frame_count_at, iter_frames, scaled_size
from .detect import Detector, Face, create_detector
from .videoscan import FrameAnalyzer
from .encode import FrameEncoder, encode_fixed
from .errors import PrepError
from .fsutil import atomic_path, write_json
from .layouts import video_layout
from .probe import VideoInfo, probe_video
from .progress import progress
from .subject import SubjectResult, choose_subject
from .window import Window, fill_gaps, fixed_window, integer_window, jitter, padding, track_windows

BORDERS = {"black": cv2.BORDER_CONSTANT, "edge": cv2.BORDER_REPLICATE, "mirror": cv2.BORDER_REFLECT_101}
DRIFT_WARN = 0.05  # fixed mode: warn when the face strays this far (share of the side) from the centre

_detectors: dict[tuple, Detector] = {}


def get_detector(cfg: CropConfig) -> Detector:
    """One detector per process and setting (model loading is not repeated per clip)."""
    key = (cfg.detector, cfg.weights_dir, cfg.score_threshold)
    if key not in _detectors:
        _detectors[key] = create_detector(cfg.detector, cfg.weights_dir, max_side=None, score_threshold=cfg.score_threshold)
    return _detectors[key]


def config_key(cfg: CropConfig) -> str:
    """Fingerprint of the settings that shape the output (resume skips only identical work)."""
    relevant = {k: v for k, v in cfg.to_dict().items() if k not in ("weights_dir",)}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Analysis:
    n_frames: int
    sampled: list[int]
    subject: SubjectResult
    detector: str
    detector_note: str | None
    blur: np.ndarray  # per output frame, NaN where no face was known


def analyse(info: VideoInfo, cfg: CropConfig, detector: Detector | None = None, show_progress: bool | None = None) -> Analysis:
    """Decode small frames at the output rate and find the subject's face on sampled frames.

    Face coordinates are returned in display pixels of the source.
    """
    detector = detector or get_detector(cfg)
    n = frame_count_at(info, cfg.fps)
    w, _ = scaled_size(info, cfg.analysis_side)
    back = info.display_width / w
    detections: dict[int, list[Face]] = {}
    scanner = FrameAnalyzer(detector, cfg.detect_every, cfg.face_px, full_every=max(1, round(cfg.fps / cfg.detect_every)))
    blur = np.full(n, np.nan)
    for i, _, faces, score in scanner.run(progress(iter_frames(info, cfg.fps, cfg.analysis_side), n, "analyse", "frame", show_progress), last=n - 1):
        if faces is not None:
            detections[i] = [f.scaled(back) for f in faces]
        if i < n:
            blur[i] = score
    subject = choose_subject(detections, max_gap=int(round(1.5 * cfg.fps)))
    if subject is None:
        raise PrepError(info.path, f"no face found in any of {len(detections)} analysed frames")
    return Analysis(n, sorted(detections), subject, detector.name, getattr(detector, "auto_note", None), blur)


def plan(info: VideoInfo, cfg: CropConfig, an: Analysis) -> dict[str, Any]:
    """Window(s), padding, face scale and warnings for a clip; raises when the clip must fail."""
    subj = an.subject
    sampled = len(an.sampled)
    if subj.presence < cfg.min_presence:
        raise PrepError(
            info.path,
            f"the subject's face is in only {subj.presence:.0%} of {sampled} analysed frames (preset {cfg.preset} needs {cfg.min_presence:.0%})",
        )
    multi = subj.multi_face_frames()
    if cfg.single_face and multi:
        raise PrepError(
            info.path, f"several faces in {len(multi)} of {sampled} analysed frames (first at frame {multi[0]}); preset {cfg.preset} needs exactly one"
        )
    t = np.array(sorted(subj.subject))
    faces = [subj.subject[i] for i in t]
    centers = np.array([f.center for f in faces])
    sizes = np.array([f.size for f in faces])
    warnings: list[str] = []
    W, H = info.display_width, info.display_height
    if cfg.mode == "fixed":
        x, y, side = integer_window(fixed_window(centers, sizes, cfg.face_fraction, cfg.face_y))
        windows = np.array([[x, y, side]], np.float64)
        win_list = Window(x, y, side)
        pads = [padding(win_list, W, H)]
        cx, cy = x + side / 2.0, y + cfg.face_y * side
        drift = float(np.max(np.hypot(centers[:, 0] - cx, centers[:, 1] - cy)) / side)
        if drift > DRIFT_WARN:
            warnings.append(f"fixed window: the face moves up to {drift:.0%} of the side away from its place; --mode track follows it")
        fractions = sizes / side
    else:
        per_frame_c = fill_gaps(t, centers, an.n_frames)
        per_frame_s = fill_gaps(t, sizes[:, None], an.n_frames)[:, 0]
        sigma = cfg.smoothing * cfg.fps
        windows = track_windows(per_frame_c, per_frame_s, cfg.face_fraction, cfg.face_y, sigma, 2 * sigma)
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


def encode_track(info: VideoInfo, cfg: CropConfig, windows: np.ndarray, n: int, dest: Path, show_progress: bool | None = None) -> None:
    """Warp every frame through its own window and stream it to the encoder."""
    enc = FrameEncoder(info, cfg, n, dest)
    border = BORDERS[cfg.pad]
    out = None
    try:
        for i, frame in enumerate(progress(iter_frames(info, cfg.fps), n, "encode", "frame", show_progress)):
            if i >= n:
                break
            out = warp_window(frame, windows[min(i, len(windows) - 1)], cfg.size, border)
            enc.write(out)
        while enc.frames < n and out is not None:  # decoder fell one short of the rounded count
            enc.write(out)
    except BaseException:
        enc.abort()
        raise
    enc.close()


def warp_window(frame: np.ndarray, win: np.ndarray, size: int, border: int) -> np.ndarray:
    """Resample the square window ``win = (x, y, side)`` of ``frame`` to ``size`` x ``size``.

    Large reductions are first halved with area averaging so the result does not alias.
    """
    from .window import affine_to_output

    x, y, side = (float(v) for v in win)
    f = 1.0
    while side * f / size > 2.0:
        f *= 0.5
    if f < 1.0:
        frame = cv2.resize(frame, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        x, y, side = (x + 0.5) * f - 0.5, (y + 0.5) * f - 0.5, side * f
    m = affine_to_output(np.array([x, y, side]), size)
    return cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_CUBIC, borderMode=border)


def output_paths(src: str | Path, out_root: str | Path, cfg: CropConfig, item_id: str | None = None) -> tuple[Path, Path]:
    layout = video_layout(cfg.layout)
    item_id = item_id or Path(src).stem
    return layout.video_path(out_root, item_id), layout.report_path(out_root, item_id)


def crop_video(src: str | Path, out_root: str | Path, cfg: CropConfig, item_id: str | None = None, show_progress: bool | None = None) -> dict[str, Any]:
    """Crop one clip. Returns a record: ``status`` is ``ok``, ``skipped`` (done before) or ``error``."""
    src = str(src)
    try:
        return _crop(src, out_root, cfg, item_id, show_progress)
    except PrepError as exc:
        return error_record(src, exc)
    except Exception as exc:  # a bug or an input nobody foresaw: reported, and the batch goes on
        return error_record(src, exc)


def _crop(src: str, out_root: str | Path, cfg: CropConfig, item_id: str | None, show_progress: bool | None) -> dict[str, Any]:
    """Analyse once, then encode and report every size asked for (``cfg.tiers``: one folder each)."""
    t0 = time.perf_counter()
    targets = [(dataclasses.replace(cfg, size=t, tiers=()), Path(out_root) / str(t)) for t in cfg.tiers] if cfg.tiers else [(cfg, Path(out_root))]
    records, pending = [], []
    for c, root in targets:
        video_path, report_path = output_paths(src, root, c, item_id)
        done = _previous(report_path, video_path, config_key(c))
        if done is not None:
            records.append({**done, "status": "skipped", "note": "done in an earlier run"})
        else:
            pending.append((c, video_path, report_path))
    if not pending:
        return _combine(records)
    info = probe_video(src)
    t1 = time.perf_counter()
    an = analyse(info, cfg, show_progress=show_progress)
    t2 = time.perf_counter()
    for c, video_path, report_path in pending:
        records.append(_encode(src, info, an, c, video_path, report_path, show_progress, {"probe": t1 - t0, "analyse": t2 - t1}))
    return _combine(records)


def done(src: str | Path, out_root: str | Path, cfg: CropConfig, item_id: str | None = None, show_progress: bool | None = None) -> dict[str, Any] | None:
    """The driver's resume check (same arguments as :func:`crop_video`): the clip's skipped
    record when every size asked for has its report and video from the same settings, else None."""
    records = []
    for c, root in ([(dataclasses.replace(cfg, size=t, tiers=()), Path(out_root) / str(t)) for t in cfg.tiers] if cfg.tiers else [(cfg, Path(out_root))]):
        video_path, report_path = output_paths(str(src), root, c, item_id)
        old = _previous(report_path, video_path, config_key(c))
        if old is None:
            return None
        records.append({**old, "status": "skipped", "note": "done in an earlier run"})
    return _combine(records)


def _combine(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One record per clip: the first size's, with the other sizes listed under ``tiers``."""
    first = dict(records[0])
    if len(records) > 1:
        first["tiers"] = [{k: r[k] for k in ("status", "output", "report") if k in r} for r in records]
        if any(r["status"] == "ok" for r in records):
            first["status"] = "ok"
    return first


def _encode(src: str, info: VideoInfo, an: Analysis, cfg: CropConfig, video_path: Path, report_path: Path, show_progress: bool | None, timings: dict[str, float]) -> dict[str, Any]:
    t2 = time.perf_counter()
    geo = plan(info, cfg, an)
    try:
        with atomic_path(video_path) as tmp:
            if cfg.mode == "fixed":
                x, y, side = (int(v) for v in geo["windows"][0])
                encode_fixed(info, (x, y, side), geo["pads"][0], cfg.pad, cfg, an.n_frames, tmp)
            else:
                encode_track(info, cfg, geo["windows"], an.n_frames, tmp, show_progress)
    except OSError as exc:
        raise PrepError(video_path, f"cannot write output ({exc.strerror or exc})") from None
    t3 = time.perf_counter()
    windows = geo["windows"]
    key = config_key(cfg)
    record = {
        "source": src,
        "status": "ok",
        "output": str(video_path),
        "report": str(report_path),
        "config_key": key,
        "config": cfg.to_dict(),
        "source_info": info.to_dict(),
        "output_info": {"size": cfg.size, "fps": cfg.fps, "frames": an.n_frames, "duration": round(an.n_frames / cfg.fps, 6), "audio": info.has_audio},
        "detector": {"name": an.detector, "note": an.detector_note, "analysed_frames": len(an.sampled), "every": cfg.detect_every},
        "mode": cfg.mode,
        "window": _window_report(info, windows, cfg.mode),
        "face_scale": geo["face_scale"],
        "face_drift": geo["drift"],
        "upscale": geo["upscale"],
        "padding": geo["padding"],
        "blur": _blur_report(an.blur, cfg),
        "frames_without_face": an.subject.no_face_frames(),
        "frames_with_several_faces": an.subject.multi_face_frames(),
        "warnings": geo["warnings"],
        "timings": {"probe": round(timings["probe"], 3), "analyse": round(timings["analyse"], 3), "encode": round(t3 - t2, 3), "total": round(sum(timings.values()) + t3 - t2, 3)},
    }
    write_json(report_path, record)  # last: the report marks the clip as done
    return record


def error_record(src: str, exc: Exception) -> dict[str, Any]:
    """The record of a failed item: one line for people, the traceback kept for bug reports."""
    if isinstance(exc, PrepError):
        line = exc.line() if exc.path else f"{src}: {exc.problem}"
        return {"source": src, "status": "error", "error": exc.problem, "message": line}
    import traceback

    problem = f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())} (please report this)"
    return {"source": src, "status": "error", "error": problem, "message": f"{src}: {problem}", "traceback": traceback.format_exc()}


def _blur_report(scores: np.ndarray, cfg: CropConfig) -> dict[str, Any]:
    """Per-frame blur scores and the frames judged blurred against the clip itself."""
    from .blurdecide import BlurConfig, blurred_frames, segments

    bcfg = BlurConfig.resolve()
    flags = blurred_frames(scores, cfg.fps, bcfg)
    finite = scores[np.isfinite(scores)]
    return {
        "rule": bcfg.video_rule(),
        "median": round(float(np.median(finite)), 4) if len(finite) else None,
        "blurred_frames": [int(i) for i in np.flatnonzero(flags)],
        "blurred_segments": segments(flags),
        "scores": [None if not np.isfinite(v) else round(float(v), 4) for v in scores],
    }


def _window_report(info: VideoInfo, windows: np.ndarray, mode: str) -> dict[str, Any]:
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
        rep["stored_px"] = {"x": round(float(first[0]) / sar, 2), "y": round(float(first[1]), 2), "w": round(float(first[2]) / sar, 2), "h": round(float(first[2]), 2)}
    if mode == "track":
        rep["per_frame"] = np.round(windows, 1).tolist()
        rep["jitter"] = round(jitter(windows), 6)
        rep["side_range"] = [round(float(windows[:, 2].min()), 1), round(float(windows[:, 2].max()), 1)]
    return rep


def _previous(report_path: Path, video_path: Path, key: str) -> dict[str, Any] | None:
    if not (report_path.is_file() and video_path.is_file()):
        return None
    try:
        rec = json.loads(report_path.read_text())
    except (OSError, ValueError):
        return None
    return rec if rec.get("status") == "ok" and rec.get("config_key") == key else None
