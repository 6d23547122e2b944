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
from .detect import Detector, Face, cached_detector
from .videoscan import FrameAnalyzer
from .encode import FrameEncoder, encode_fixed
from .errors import PrepError
from .fsutil import atomic_path, write_json
from .layouts import video_layout
from .probe import VideoInfo, probe_video
from .progress import progress
from .subject import SubjectResult, choose_subject
from .video.review import keep_thumb
from .video import speaking
from .video.shots import Shots, ShotDetector
from .window import Window, jitter, layout_windows, padding

BORDERS = {"black": cv2.BORDER_CONSTANT, "edge": cv2.BORDER_REPLICATE, "mirror": cv2.BORDER_REFLECT_101}
SPLIT_FOLLOW = 0.1  # --split: faces down to this share of the largest are followed frame to frame
DRIFT_WARN = 0.05  # fixed mode: warn when the face strays this far (share of the side) from the centre

def get_detector(cfg: CropConfig) -> Detector:
    """The clip analysis's detector: the video scanner searches regions at known scales."""
    return cached_detector(cfg.detector, cfg.weights_dir, max_side=None, score_threshold=cfg.score_threshold)


def config_key(cfg: CropConfig) -> str:
    """Fingerprint of the settings that shape the output (resume skips only identical work)."""
    relevant = {k: v for k, v in cfg.to_dict().items() if k not in ("weights_dir", "speech_weights", "speech_missing") and not (k in ("person", "group_by") and v is None) and not ((k == "speech" or k.startswith("speech_")) and cfg.speech == "off")}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Analysis:
    n_frames: int
    sampled: list[int]
    subject: SubjectResult
    detector: str
    detector_note: str | None
    blur: np.ndarray  # per output frame, NaN where no face was known
    shots: Shots
    detections: dict[int, list[Face]]  # analysed frame -> faces (display px)


def analyse(info: VideoInfo, cfg: CropConfig, detector: Detector | None = None, show_progress: bool | None = None, thumbs: Path | None = None) -> Analysis:
    """Decode small frames at the output rate and find the subject's face on sampled frames.

    Face coordinates are returned in display pixels of the source. ``thumbs``: a folder that
    receives a small picture of the footage twice a second (for the review page).
    """
    detector = detector or get_detector(cfg)
    n = frame_count_at(info, cfg.fps)
    w, _ = scaled_size(info, cfg.analysis_side)
    back = info.display_width / w
    detections: dict[int, list[Face]] = {}
    # --split tracks every face that persists, so smaller faces are followed between full searches too
    scanner = FrameAnalyzer(detector, cfg.detect_every, cfg.face_px, full_every=max(1, round(cfg.fps / cfg.detect_every)), min_relative=SPLIT_FOLLOW if cfg.split else None)
    blur = np.full(n, np.nan)
    shots = ShotDetector(cfg.fps)

    def beside(i: int, frame: np.ndarray) -> None:  # on the scanner's second thread, in frame order
        shots.feed(i, frame)
        if thumbs is not None:
            keep_thumb(thumbs, i, frame, cfg.fps)

    for i, frame, faces, score in scanner.run(progress(iter_frames(info, cfg.fps, cfg.analysis_side), n, "analyse", "frame", show_progress), last=n - 1, also=beside):
        if faces is not None:
            detections[i] = [f.scaled(back) for f in faces]
        if i < n:
            blur[i] = score
    if cfg.person is not None and not cfg.split:  # --person: the subject is the face track that matches
        from .identity import choose_person

        subject = choose_person(info, detections, cfg.person, cfg.fps, max_gap=max_gap(cfg))
    else:
        subject = choose_subject(detections, max_gap=max_gap(cfg))
    if subject is None and not cfg.split:
        raise PrepError(info.path, f"no face found in any of {len(detections)} analysed frames")
    return Analysis(n, sorted(detections), subject, detector.name, getattr(detector, "auto_note", None), blur, shots.finish(n), detections)


def max_gap(cfg: CropConfig) -> int:
    """Frames a face may go unseen and still continue its track."""
    return int(round(1.5 * cfg.fps))


def plan(info: VideoInfo, cfg: CropConfig, an: Analysis) -> dict[str, Any]:
    """Window(s), padding, face scale and warnings for a clip; raises when the clip must fail."""
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
        windows = windows[:1]
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


def encode_track(info: VideoInfo, cfg: CropConfig, windows: np.ndarray, n: int, dest: Path, show_progress: bool | None = None, start: int = 0, audio_advance: float = 0.0) -> None:
    """Warp every frame through its own window and stream it to the encoder (``n`` frames of
    the output timeline from frame ``start`` on; ``windows[k]`` is for frame ``start + k``;
    the audio moved ``audio_advance`` seconds earlier)."""
    enc = FrameEncoder(info, cfg, n, dest, start, audio_advance)
    border = BORDERS[cfg.pad]
    out = None
    try:
        for i, frame in enumerate(progress(iter_frames(info, cfg.fps, start=start, count=n), n, "encode", "frame", show_progress)):
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
    if cfg.split:
        return _split(src, out_root, cfg, item_id or Path(src).stem, show_progress)
    targets = [(dataclasses.replace(cfg, size=t, tiers=()), Path(out_root) / str(t)) for t in cfg.tiers] if cfg.tiers else [(cfg, Path(out_root))]
    records, pending = [], []
    for c, root in targets:
        video_path, report_path = output_paths(src, root, c, item_id)
        done = _previous(report_path, video_path, config_key(c))
        if done is not None:
            records.append({**done, "status": "skipped" if done["status"] == "ok" else done["status"], "note": "done in an earlier run"})
        else:
            pending.append((c, video_path, report_path))
    if not pending:
        return _combine(records)
    info = probe_video(src)
    t1 = time.perf_counter()
    an = analyse(info, cfg, show_progress=show_progress)
    t2 = time.perf_counter()
    speech, advance = _subject_speech(info, cfg, an)
    timings = {"probe": t1 - t0, "analyse": t2 - t1, **({"speech": time.perf_counter() - t2} if speech is not None else {})}
    verdict = speaking.judge(speech, cfg) if speech is not None else None
    for c, video_path, report_path in pending:
        if verdict is not None:
            records.append(_rejected(src, info, c, report_path, verdict, speech))
        else:
            records.append(_encode(src, info, an, c, video_path, report_path, show_progress, timings, speech, advance))
    return _combine(records)


def _subject_speech(info: VideoInfo, cfg: CropConfig, an: Analysis) -> tuple[dict[str, Any] | None, float]:
    """The clip's ``speech`` report (None with --speech off) and the audio advance in seconds
    that corrects a measured offset (``require`` only)."""
    if cfg.speech == "off":
        return None, 0.0
    if not info.has_audio:
        return speaking.unmeasured("no audio"), 0.0
    sub = an.subject.subject
    frames = sorted(sub)
    try:
        ts = speaking.track_facts(info, cfg, frames, [sub[i] for i in frames], 0, an.n_frames)
    except Exception as exc:  # measure: the clip is still made, and its report says why speech is missing
        if cfg.speech == "require":
            raise
        return speaking.unmeasured(_problem(exc)), 0.0
    rep = speaking.stretch(ts, cfg, 0, an.n_frames)
    return rep, speaking.correction(rep, cfg)


def _rejected(src: str, info: VideoInfo, cfg: CropConfig, report_path: Path, verdict: tuple[str, str], speech: dict[str, Any]) -> dict[str, Any]:
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


def done(src: str | Path, out_root: str | Path, cfg: CropConfig, item_id: str | None = None, show_progress: bool | None = None) -> dict[str, Any] | None:
    """The driver's resume check (same arguments as :func:`crop_video`): the clip's skipped
    record when every size asked for has its report and video from the same settings (with
    --split: the source's split record and all its clips), else None."""
    if cfg.split:
        prev = _previous_split(split_marker(out_root, item_id or Path(src).stem), config_key(cfg))
        return None if prev is None else {**prev, "status": "skipped", "note": "done in an earlier run"}
    records = []
    for c, root in ([(dataclasses.replace(cfg, size=t, tiers=()), Path(out_root) / str(t)) for t in cfg.tiers] if cfg.tiers else [(cfg, Path(out_root))]):
        video_path, report_path = output_paths(str(src), root, c, item_id)
        old = _previous(report_path, video_path, config_key(c))
        if old is None:
            return None
        records.append({**old, "status": "skipped" if old["status"] == "ok" else old["status"], "note": "done in an earlier run"})
    return _combine(records)


def _combine(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One record per clip: the first size's, with the other sizes listed under ``tiers``."""
    first = dict(records[0])
    if len(records) > 1:
        first["tiers"] = [{k: r[k] for k in ("status", "output", "report") if k in r} for r in records]
        if any(r["status"] == "ok" for r in records):
            first["status"] = "ok"
    return first


def _encode(src: str, info: VideoInfo, an: Analysis, cfg: CropConfig, video_path: Path, report_path: Path, show_progress: bool | None, timings: dict[str, float], speech: dict[str, Any] | None = None, advance: float = 0.0) -> dict[str, Any]:
    t2 = time.perf_counter()
    geo = plan(info, cfg, an)
    try:
        with atomic_path(video_path) as tmp:
            if cfg.mode == "fixed":
                x, y, side = (int(v) for v in geo["windows"][0])
                encode_fixed(info, (x, y, side), geo["pads"][0], cfg.pad, cfg, an.n_frames, tmp, audio_advance=advance)
            else:
                encode_track(info, cfg, geo["windows"], an.n_frames, tmp, show_progress, audio_advance=advance)
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
        **({"person": an.subject.person} if an.subject.person else {}),
        **an.shots.to_dict(),
        **({"speech": speech} if speech is not None else {}),
        "warnings": geo["warnings"],
        "timings": {**{k: round(v, 3) for k, v in timings.items()}, "encode": round(t3 - t2, 3), "total": round(sum(timings.values()) + t3 - t2, 3)},
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
    """An earlier run's record of the same work: a clip with its video, or a clip the speech
    check rejected (no video)."""
    if not report_path.is_file():
        return None
    try:
        rec = json.loads(report_path.read_text())
    except (OSError, ValueError):
        return None
    if rec.get("config_key") != key:
        return None
    if rec.get("status") == "rejected" or (rec.get("status") == "ok" and video_path.is_file()):
        return rec
    return None


# ---- real footage: one clip per segment (--split) --------------------------------------


def split_marker(out_root: str | Path, item_id: str) -> Path:
    """The source's split record: written last, it marks the source as done."""
    return Path(out_root) / ".prep" / "split" / f"{item_id}.json"


def _split(src: str, out_root: str | Path, cfg: CropConfig, item_id: str, show_progress: bool | None) -> dict[str, Any]:
    """Shots, tracks and segments of one source; a clip and a report per kept segment."""
    from .blurdecide import BlurConfig, blurred_frames
    from .video import review
    from .video.segments import pose_track, segment_geometry, split_track, track_span
    from .video.tracks import face_tracks

    key = config_key(cfg)
    marker = split_marker(out_root, item_id)
    prev = _previous_split(marker, key)
    if prev is not None:
        return {**prev, "status": "skipped", "note": "done in an earlier run"}
    t0 = time.perf_counter()
    info = probe_video(src)
    an = analyse(info, cfg, show_progress=show_progress, thumbs=review.thumbs_dir(out_root, item_id))
    t1 = time.perf_counter()
    ranges = an.shots.ranges
    bcfg = BlurConfig.resolve()
    W, H = info.display_width, info.display_height
    candidates, per_track, blur_of = [], {}, {}
    numbered: dict[int, int] = {}
    speech_of: dict[tuple[int, int], Any] = {}
    min_len = max(1, int(round(cfg.min_seconds * cfg.fps)))
    for shot, tr in face_tracks(an.detections, ranges, max_gap(cfg)):
        tno = numbered.get(shot, 0)
        numbered[shot] = tno + 1
        poses = pose_track(tr)
        scores = _track_blur(an, tr, cfg.detect_every)
        blurred = blurred_frames(scores, cfg.fps, bcfg)
        per_track[(shot, tno)] = (tr, poses)
        blur_of[(shot, tno)] = scores
        start, end = track_span(tr, ranges[shot], cfg.detect_every)
        extra = None
        if cfg.speech != "off" and end - start >= min_len:
            speech_of[(shot, tno)] = ts = _track_speech(info, cfg, tr, start, end)
            if cfg.speech == "require" and not isinstance(ts, dict):
                extra = speaking.marks(ts, cfg, start, end)
        for seg in split_track(shot, tno, tr, ranges[shot], poses, blurred, cfg.fps, cfg.detect_every, cfg, extra):
            if seg.status == "kept":  # --tiers: judged at the largest size, so every size holds the same segments
                segment_geometry(seg, tr, an.detections, W, H, cfg.fps, dataclasses.replace(cfg, size=max(cfg.tiers)) if cfg.tiers else cfg)
            candidates.append(seg)
    identities = _identify(info, cfg, per_track) if cfg.person is not None or cfg.group_by else {}
    layout = video_layout(cfg.layout)
    # --group-by person: clips wait in a staging folder until the run's persons are known
    write_root = Path(out_root) / STAGING if cfg.group_by else Path(out_root)
    seg_records = []
    for seg in candidates:
        who = identities.get((seg.shot, seg.track))
        entry = seg.to_dict(cfg.fps)
        if cfg.person is not None and who is not None:
            entry["person"] = who.match.to_dict()
            if seg.status == "kept" and not who.match.matched:
                m = who.match
                seg.reject(OTHER_PERSON, f"not the person: similarity {m.similarity if m.similarity is not None else float('nan'):.3f} < {cfg.person.threshold:.3f}" + (f" (uncertain: {m.reason})" if m.uncertain else ""))
                entry = {**seg.to_dict(cfg.fps), "person": entry["person"]}
        advance = 0.0
        if (seg.shot, seg.track) in speech_of and seg.status == "kept":
            rep = _segment_speech(speech_of, seg, cfg)
            verdict = speaking.judge(rep, cfg) or _other_speaker(speech_of, seg, cfg, rep)
            if verdict is not None:
                seg.reject(*verdict)
                entry = {**seg.to_dict(cfg.fps), **{k: entry[k] for k in ("person",) if k in entry}}
            else:
                advance = speaking.correction(rep, cfg)
            entry["speech"] = rep
        if seg.status == "kept":
            _, poses = per_track[(seg.shot, seg.track)]
            sizes = [(dataclasses.replace(cfg, size=t, tiers=()), write_root / str(t)) for t in cfg.tiers] if cfg.tiers else [(cfg, write_root)]
            recs = [_encode_segment(src, info, c, seg, blur_of[(seg.shot, seg.track)], poses, layout, root, item_id, key, show_progress, entry.get("person"), entry.get("speech"), advance) for c, root in sizes]
            entry.update(output=recs[0]["output"], report=recs[0]["report"])
            if cfg.tiers:
                entry["tiers"] = [{"size": c.size, "output": r["output"], "report": r["report"]} for (c, _), r in zip(sizes, recs)]
        seg_records.append(entry)
    kept = [e for e in seg_records if e["status"] == "kept"]
    record: dict[str, Any] = {
        "source": src,
        "status": "ok" if kept else "empty",
        "split": True,
        "config_key": key,
        "config": cfg.to_dict(),
        "source_info": info.to_dict(),
        "detector": {"name": an.detector, "note": an.detector_note, "analysed_frames": len(an.sampled), "every": cfg.detect_every},
        **an.shots.to_dict(),
        "tracks": sum(numbered.values()),
        "segments": seg_records,
        **({"person": cfg.person.to_dict()} if cfg.person is not None else {}),
        **({"track_vectors": {f"s{k[0]:02d}_t{k[1]:02d}": [round(float(v), 5) for v in t.vector] for k, t in identities.items() if t.vector is not None}} if cfg.group_by else {}),
        "outputs": [t["output"] for e in kept for t in e.get("tiers", [e])],
        "marker": str(marker),
    }
    if not kept:
        record["reason"] = _why_empty(an, seg_records)
    record["review"] = review.collect(info, an, cfg, record, per_track, out_root, item_id, speech_of=speech_of)
    record["timings"] = {"analyse": round(t1 - t0, 3), "total": round(time.perf_counter() - t0, 3)}
    write_json(marker, record)  # last: marks the source as done
    return record


STAGING = ".prep/staging"  # --group-by: where clips wait for their person's folder
OTHER_PERSON = "other_person"


def _identify(info: VideoInfo, cfg: CropConfig, per_track: dict) -> dict:
    """The identity of every face track ((shot, track) -> TrackIdentity): a handful of each
    track's frames, decoded once more at a size fit for the descriptor, embedded."""
    from .identity import identify_tracks

    keys = list(per_track)
    found = identify_tracks(info, cfg.fps, [list(zip(per_track[k][0].frames, per_track[k][0].faces)) for k in keys], cfg.person, per_track=8)
    return dict(zip(keys, found))


def _why_empty(an: Analysis, segs: list[dict[str, Any]]) -> str:
    if not segs:
        if not any(an.detections.values()):
            return f"no face found in any of {len(an.sampled)} analysed frames"
        return "no face persists in any shot (faces seen only on single frames or too weak)"
    counts: dict[str, int] = {}
    for e in segs:
        counts[e["reason"]] = counts.get(e["reason"], 0) + 1
    return "every candidate segment was rejected: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def _track_blur(an: Analysis, tr: Any, every: int) -> np.ndarray:
    """The clip's per-frame blur scores where this track's face was the one scored (the
    frame's main face), NaN elsewhere: the blur rule then judges the track against itself."""
    from .detect import main_face

    out = np.full(an.n_frames, np.nan)
    for i, f in zip(tr.frames, tr.faces):
        if main_face(an.detections[i]) is f:
            out[i : i + every] = an.blur[i : i + every]
    return out


def _track_speech(info: VideoInfo, cfg: CropConfig, tr: Any, start: int, end: int) -> Any:
    """A track's speech facts, or the report of why they could not be had."""
    if not info.has_audio:
        return speaking.unmeasured("no audio")
    try:
        return speaking.track_facts(info, cfg, tr.frames, tr.faces, start, end)
    except Exception as exc:
        if cfg.speech == "require":
            raise
        return speaking.unmeasured(_problem(exc))


def _problem(exc: Exception) -> str:
    return exc.problem if isinstance(exc, PrepError) else f"the speech check failed: {type(exc).__name__}: {exc} (please report this)"


def _segment_speech(speech_of: dict, seg: Any, cfg: CropConfig) -> dict[str, Any]:
    ts = speech_of[(seg.shot, seg.track)]
    return dict(ts) if isinstance(ts, dict) else speaking.stretch(ts, cfg, seg.start, seg.end)


def _other_speaker(speech_of: dict, seg: Any, cfg: CropConfig, rep: dict[str, Any]) -> tuple[str, str] | None:
    """Two faces in a shot and one voice: the one whose mouth follows it more is the speaker."""
    if cfg.speech != "require" or rep.get("sync") is None:
        return None
    for (shot, tno), ts in speech_of.items():
        if shot != seg.shot or tno == seg.track or isinstance(ts, dict):
            continue
        if ts.t0 * cfg.fps >= seg.end or (ts.t0 + ts.n / speaking.sp.RATE) * cfg.fps <= seg.start:
            continue
        other = speaking.stretch(ts, cfg, seg.start, seg.end)
        if other.get("sync") is not None and other["sync"] >= cfg.speech_min_sync and other["sync"] > rep["sync"]:
            return speaking.sp.NOT_SPEAKING, f"another face in the shot is the one speaking (its sync {other['sync']:.1f} against this face's {rep['sync']:.1f})"
    return None


def _encode_segment(src: str, info: VideoInfo, cfg: CropConfig, seg: Any, scores: np.ndarray, poses: dict, layout: Any, out_root: str | Path, item_id: str, key: str, show_progress: bool | None, person: dict | None = None, speech: dict | None = None, advance: float = 0.0) -> dict[str, Any]:
    from .video.segments import pose_summary

    seg_id = f"{item_id}__{seg.name()}"
    video_path, report_path = layout.video_path(out_root, seg_id), layout.report_path(out_root, seg_id)
    done = _previous(report_path, video_path, key)
    if done is not None:
        return done
    geo, n = seg.geometry, seg.frames
    windows = geo["windows"]
    t0 = time.perf_counter()
    try:
        with atomic_path(video_path) as tmp:
            if cfg.mode == "fixed":
                encode_fixed(info, tuple(int(v) for v in windows[0]), geo["pads"][0], cfg.pad, cfg, n, tmp, start=seg.start, audio_advance=advance)
            else:
                encode_track(info, cfg, windows, n, tmp, show_progress, start=seg.start, audio_advance=advance)
    except OSError as exc:
        raise PrepError(video_path, f"cannot write output ({exc.strerror or exc})") from None
    pads = geo["pads"]
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
        "window": _window_report(info, windows, cfg.mode),
        "face_scale": geo["face_scale"],
        "upscale": round(cfg.size / float(np.asarray(windows)[:, 2].min()), 3),  # this size's (with --tiers, judged at the largest)
        "face_presence": geo["presence"],
        "padding": {"frames_padded": sum(p.any for p in pads) * (n if cfg.mode == "fixed" else 1), "max_area_fraction": round(max(p.area_fraction for p in pads), 4), "mode": cfg.pad},
        "blur": _blur_report(scores[seg.start : seg.end], cfg),
        "pose": pose_summary(poses, seg.start, seg.end, cfg.fps),
        **({"person": person} if person else {}),
        **({"speech": speech} if speech is not None else {}),
        "timings": {"encode": round(time.perf_counter() - t0, 3)},
    }
    write_json(report_path, record)  # last: the segment's report marks it as done
    return record


def _previous_split(marker: Path, key: str) -> dict[str, Any] | None:
    try:
        rec = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if rec.get("config_key") != key or not all(Path(p).is_file() for p in rec.get("outputs", [])):
        return None
    return rec


def group_segments(out_root: str | Path, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``--split --group-by person``, on the driver once every source is done: cluster the face
    tracks of all sources by identity (in source, shot, track order: the same run gives the
    same persons) and move each kept segment's clip and report from the staging folder (or an
    earlier run's person folder) into ``OUT/person_NN/<layout>``; each person gets ``sheet.png``
    of its segments. The sources' records (and their markers) are updated to the new places.
    Returns one summary per person (person_00 has the most segments)."""
    import os

    from .identity import Clusterer, person_folder
    from .sheet import GREEN, Tile, write_sheet

    out = Path(out_root)
    cl = Clusterer()
    first: dict[tuple[str, str], int] = {}
    entries = []
    for rec in records:
        if not rec.get("split") or rec["status"] == "error":
            continue
        for e in rec["segments"]:
            if e["status"] != "kept":
                continue
            tk = f"s{e['shot']:02d}_t{e['track']:02d}"
            vec = rec.get("track_vectors", {}).get(tk)
            if vec is None:
                continue
            if (rec["source"], tk) not in first:
                first[(rec["source"], tk)] = cl.add(np.array(vec, np.float64))[0]
            entries.append((first[(rec["source"], tk)], rec, e))
    rank = cl.ranking()
    groups: dict[int, list[dict]] = {}
    for label, rec, e in entries:
        k = rank[label]
        folder = out / person_folder(k)
        for field in ("output", "report"):
            cur = Path(e[field])
            rel = _relative_to_layout_root(cur, out)
            dest = folder / rel
            if cur != dest and cur.is_file():
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(cur, dest)
            e[field] = str(dest)
        e["person_group"] = person_folder(k)
        groups.setdefault(k, []).append({**e, "source": rec["source"], "images": next((s.get("images", []) for s in rec.get("review", {}).get("segments", []) if s["segment"] == e["segment"]), [])})
    for rec in records:
        if rec.get("split") and rec["status"] != "error":
            rec["outputs"] = [e["output"] for e in rec["segments"] if e["status"] == "kept"]
            for s in rec.get("review", {}).get("segments", []):
                match = next((e for e in rec["segments"] if e["segment"] == s["segment"]), None)
                if match is not None:
                    s.update({k: match[k] for k in ("output", "report", "person_group") if k in match})
            if rec.get("marker"):
                write_json(rec["marker"], {k: v for k, v in rec.items() if k not in ("status", "note")} | {"status": "ok" if rec["outputs"] else "empty"})
    summaries = []
    for k in sorted(groups):
        folder = out / person_folder(k)
        tiles = []
        for e in groups[k][:48]:
            imgs = e.get("images") or []
            if imgs and (out / imgs[len(imgs) // 2]).is_file():
                tiles.append(Tile(cv2.imread(str(out / imgs[len(imgs) // 2])), [Path(e["source"]).name[:24], e["segment"]], GREEN))
        write_sheet(folder / "sheet.png", tiles, f"{person_folder(k)}: {len(groups[k])} segments")
        summaries.append({"person": person_folder(k), "segments": len(groups[k]), "sources": len({e["source"] for e in groups[k]})})
    return summaries


def _relative_to_layout_root(path: Path, out: Path) -> Path:
    """A clip's place inside the layout, whether it sits in the staging folder or in a person's."""
    rel = path.relative_to(out)
    parts = rel.parts
    if parts[:2] == tuple(STAGING.split("/")):
        return Path(*parts[2:])
    if parts and parts[0].startswith("person_"):
        return Path(*parts[1:])
    return rel
