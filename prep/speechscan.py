"""``prep speech``: is each face of an existing clip the one speaking, and at what audio offset?
With ``--fix-offset``, a copy of the clip whose audio is moved onto the lips.

For clips that already exist (a Hallo or LatentSync dataset, HDTF, VoxCeleb-style folders):
face-centred clips, usually one face. Path of a clip: probe -> analysis pass (faces, shots;
:func:`prep.crop.analyse`) -> face tracks -> per track of 2 s or more (the lag search's window), the speech facts
over its span (:func:`prep.video.speaking.track_facts`) and its report and verdict under the
``require`` rules -> optionally the fixed copy (video stream copied, audio moved earlier and
re-encoded) and its sidecar report, written last: the resume marker.

The unit of work is :func:`score_clip`, a plain picklable function of (source, resolved
config, output folder, item id) that returns a record and never raises for bad input.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .config import CropConfig
from .errors import PrepError
from .probe import VideoInfo

MIN_TRACK_SECONDS = 2.0  # shorter face tracks are not scored (the lag search judges 2 s windows)
NO_AUDIO = "the clip has no audio stream"
COMMAND = "speech"  # written into each sidecar, so a crop report of the same name is never taken for one


def _require(cfg: CropConfig) -> CropConfig:
    """``cfg`` with the speech check in ``require`` mode: verdicts and corrections follow its rules."""
    return cfg if cfg.speech == "require" else dataclasses.replace(cfg, speech="require")


def fix_paths(out_dir: str | Path, src: str | Path, item_id: str | None = None) -> tuple[Path, Path]:
    """``OUT/<name>.mp4`` (the fixed clip) and ``OUT/<name>.json`` (its sidecar, the resume marker)."""
    name = item_id or Path(src).stem
    return Path(out_dir) / f"{name}.mp4", Path(out_dir) / f"{name}.json"


def settings_key(cfg: CropConfig) -> str:
    """Fingerprint of the settings that decide a fix (same key: the same measurement and offset)."""
    from .crop import config_key

    return config_key(_require(cfg))


def score_clip(src: str | Path, cfg: CropConfig, out_dir: str | Path | None = None, item_id: str | None = None, show_progress: bool | None = None) -> dict[str, Any]:
    """Score every face track of one clip; with ``out_dir``, also write the clip with its audio
    offset corrected when the main face's offset is trusted, within the limit and not zero.

    Returns ``{"source", "status": "ok" | "skipped" | "error", "faces": [...], ...}``: one
    entry per face track of at least 2 s (``face`` k, ``start``/``end`` s, ``speaking``
    share, ``score``, ``offset_frames`` at 25 fps, positive when the voice lags the lips,
    ``confidence``, ``sync``, ``voiced``, ``verdict`` ``ok`` or ``not_speaking`` /
    ``no_speech`` / ``out_of_sync``, ``why``), judged under the ``require`` rules whatever
    ``cfg.speech`` says. A clip without a face: an empty list and a ``reason``. With
    ``out_dir``: ``main_face``, and ``fixed`` (the new clip's path) or ``fix`` (why not)."""
    src = str(src)
    try:
        if out_dir is not None:
            old = previous(src, cfg, out_dir, item_id)
            if old is not None:
                return old
        return _score(src, _require(cfg), out_dir, item_id, show_progress)
    except Exception as exc:  # noqa: BLE001 - an item's failure is a value
        from .errors import error_record

        return error_record(src, exc)


def _score(src: str, cfg: CropConfig, out_dir: str | Path | None, item_id: str | None, show_progress: bool | None) -> dict[str, Any]:
    from .probe import probe_video

    t0 = time.perf_counter()
    info = probe_video(src)
    rec: dict[str, Any] = {"source": src, "status": "ok"}
    if not info.has_audio:  # nothing to measure: no face needs to be looked for
        rec["faces"] = [_entry(src, None, 0.0, info.duration, {"measured": False, "note": "no audio"}, cfg)]
    else:
        rec.update(_faces(src, info, cfg, show_progress))
    rec["timings"] = {"total": round(time.perf_counter() - t0, 3)}
    if out_dir is not None:
        _fix(rec, info, cfg, out_dir, item_id)
    return rec


def _faces(src: str, info: VideoInfo, cfg: CropConfig, show_progress: bool | None) -> dict[str, Any]:
    """The ``faces`` of a clip with audio (and a ``reason`` when there is none to score)."""
    from .crop import analyse, max_gap
    from .crop.analysis import min_len
    from .video import speaking
    from .video.segments import track_span
    from .video.tracks import face_tracks

    # every face that persists is followed (not only the largest), and a clip without one is
    # a value, not an error: the analysis runs as --split's does, and cuts the speech model's
    # crops of every track of MIN_TRACK_SECONDS or more in its pass
    scan = dataclasses.replace(cfg, split=True, min_seconds=MIN_TRACK_SECONDS)
    an = analyse(info, scan, show_progress=show_progress)
    ranges = an.shots.ranges
    shortest = min_len(scan)
    faces = []
    tracks = [(shot, tr, *track_span(tr, ranges[shot], cfg.detect_every)) for shot, tr in face_tracks(an.detections, ranges, max_gap(cfg))]
    short = sum(end - start < shortest for _, _, start, end in tracks)
    tracks = [t for t in tracks if t[3] - t[2] >= shortest]
    # the visual side: from this pass, else from one decode per stretch of footage shared by
    # the tracks on it
    embedded = speaking.tracks_embedded(info, cfg, [(tr.frames, tr.faces, start, end) for _, tr, start, end in tracks], an.speech_crops)
    for (shot, tr, start, end), emb in zip(tracks, embedded):
        ts = speaking.track_facts(info, cfg, tr.frames, tr.faces, start, end, emb)
        rep = speaking.stretch(ts, cfg, start, end)
        entry = _entry(src, len(faces), start / cfg.fps, end / cfg.fps, rep, cfg)
        entry["shot"] = shot
        faces.append(entry)
    out: dict[str, Any] = {"faces": faces, "shots": len(ranges)}
    if not faces:
        if not any(an.detections.values()):
            out["reason"] = f"no face found in any of {len(an.sampled)} analysed frames"
        elif short:
            out["reason"] = f"no face stays on screen for {MIN_TRACK_SECONDS:g} s or more ({short} shorter track(s))"
        else:
            out["reason"] = "no face persists in any shot (faces seen only on single frames or too weak)"
    return out


def _entry(src: str, k: int | None, start: float, end: float, rep: dict[str, Any], cfg: CropConfig) -> dict[str, Any]:
    """One face's line: the facts of its ``speech`` report and the verdict under ``require``."""
    from .speech.track import verdict

    found = verdict(rep, cfg.speech_config())
    entry = {
        "path": src,
        "face": k,
        "start": round(start, 3),
        "end": round(end, 3),
        "speaking": rep.get("speaking"),
        "score": rep.get("score"),
        "offset_frames": rep.get("offset_frames"),
        "confidence": rep.get("confidence"),
        "sync": rep.get("sync"),
        "voiced": rep.get("voiced"),
        "verdict": found[0] if found else "ok",
        "why": found[1] if found else None,
    }
    if rep.get("note") and rep.get("measured"):
        entry["note"] = rep["note"]
    entry["speech"] = rep
    return entry


def main_face(faces: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The clip's main face: the one speaking on the most frames (the first track on a tie)."""
    scored = [f for f in faces if f["face"] is not None]
    if not scored:
        return None
    return max(scored, key=lambda f: ((f["speaking"] or 0.0) * (f["end"] - f["start"]), -f["face"]))


def _fix(rec: dict[str, Any], info: VideoInfo, cfg: CropConfig, out_dir: str | Path, item_id: str | None) -> None:
    """``--fix-offset``: write the corrected clip and its sidecar when the main face's offset
    is to be trusted and is not zero; say in ``rec`` what was done and why."""
    from .fsutil import write_json
    from .video.speaking import correction

    face = main_face(rec["faces"])
    rec["main_face"] = None if face is None else face["face"]
    if face is None:
        rec["fix"] = "not possible (" + (NO_AUDIO if not info.has_audio else rec.get("reason", "no face")) + ")"
        return
    if face["verdict"] != "ok":
        rec["fix"] = f"not trusted ({face['verdict'].replace('_', ' ')}: {face['why']})"
        return
    if not face["offset_frames"]:
        rec["fix"] = "not needed (offset 0)"
        return
    advance = correction(face["speech"], cfg)  # sets the report's corrected_ms
    if not advance:  # verdict ok implies a trusted offset within the limit; kept as a guard
        rec["fix"] = f"not trusted (offset {face['offset_frames']:+d} frames, confidence {face['confidence']:.2f})"
        return
    video, sidecar = fix_paths(out_dir, rec["source"], item_id)
    t0 = time.perf_counter()
    try:
        shift_audio(info, advance, video, cfg.audio_bitrate)
    except PrepError as exc:  # the scores stay in the record; the clip counts as failed
        rec.update(status="error", error=exc.problem, message=exc.line(), fix=f"failed ({exc.problem})")
        return
    rec["fixed"] = str(video)
    rec["advance_ms"] = round(advance * 1000.0, 1)
    rec["timings"]["fix"] = round(time.perf_counter() - t0, 3)
    write_json(sidecar, {**rec, "command": COMMAND, "config_key": settings_key(cfg), "config": cfg.to_dict()})  # last: the marker


def shift_audio(info: VideoInfo, advance: float, dest: str | Path, audio_bitrate: str = "192k") -> None:
    """Write ``dest``: ``info``'s first video stream copied as it is, its audio moved
    ``advance`` seconds earlier (silence fills the end, the first ``advance`` seconds are
    dropped; a negative ``advance`` delays it) and re-encoded as AAC, the length unchanged.
    Written under a temporary name and renamed (an interrupted run leaves no half file)."""
    import ffmpeg

    from .encode import _first_error
    from .ffmpeg import ffmpeg_exe
    from .fsutil import atomic_path

    inp = ffmpeg.input(info.path)
    # Timestamps stay the ones the copied video has (relative to the container's start): the
    # audio is only moved against them, trimmed at 0 or padded there, and padded at the end.
    a = inp["a:0"].filter("asetpts", f"PTS{-advance:+.6f}/TB").filter("aresample", **{"async": 1, "first_pts": 0}).filter("apad")
    ends = [info.start_time + info.duration]
    if info.audio_start is not None and info.audio_duration is not None:
        ends.append(info.audio_start + info.audio_duration)
    starts = [info.start_time] + ([info.audio_start] if info.audio_start is not None else [])
    length = max(ends) - min(starts)  # the output starts where the source's first stream does
    try:
        with atomic_path(dest) as tmp:
            out = ffmpeg.output(inp["v:0"], a, str(tmp), vcodec="copy", acodec="aac", audio_bitrate=audio_bitrate, t=f"{length:.6f}", movflags="+faststart", map_metadata=0)
            args = out.global_args("-nostdin", "-hide_banner", "-loglevel", "error", "-y").compile(cmd=ffmpeg_exe())
            with tempfile.TemporaryFile() as err:
                proc = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
                if proc.returncode != 0:
                    err.seek(0)
                    raise PrepError(info.path, f"ffmpeg could not write the fixed clip ({_first_error(err.read())})")
    except OSError as exc:
        raise PrepError(dest, f"cannot write output ({exc.strerror or exc})") from None


def previous(src: str | Path, cfg: CropConfig, out_dir: str | Path, item_id: str | None = None) -> dict[str, Any] | None:
    """An earlier run's record of the same clip fixed with the same settings (its sidecar and
    its clip both there), marked ``skipped``; else None."""
    video, sidecar = fix_paths(out_dir, src, item_id)
    if not sidecar.is_file() or not video.is_file():
        return None
    try:
        rec = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None
    if rec.get("command") != COMMAND or rec.get("config_key") != settings_key(cfg) or rec.get("source") != str(src):
        return None
    return {**{k: v for k, v in rec.items() if k not in ("command", "config_key", "config")}, "status": "skipped", "note": "fixed in an earlier run"}


def done(src: str | Path, cfg: CropConfig, out_dir: str | Path | None = None, item_id: str | None = None, show_progress: bool | None = None) -> dict[str, Any] | None:
    """The driver's resume check (same arguments as :func:`score_clip`)."""
    return None if out_dir is None else previous(src, cfg, out_dir, item_id)


__all__ = ["score_clip", "shift_audio", "main_face", "fix_paths", "done", "previous", "settings_key"]
