"""The speech check on a video's face tracks: facts per track, marks that split a track into
the speaker's turns, and each clip's or segment's ``speech`` report and verdict.

The offset and the evidence that the mouth follows the voice are properties of the recording,
measured over the whole track (a few seconds of speech do not place an offset within a frame;
twenty do); the share of frames where the face speaks is each stretch's own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..detect import Face
from ..errors import PrepError
from ..probe import VideoInfo
from ..speech import track as sp
from .shots import ShotDetector
from .trackcrops import SplitCrops

QUIET_RUN = 1.0  # s: a stretch this long without a voice (or with the face silent) ends a turn


def track_facts(info: VideoInfo, cfg: Any, frames: list[int], faces: list[Face], start: int, end: int, embedded: tuple[np.ndarray, bool] | None = None) -> sp.TrackSpeech:
    """Speech facts of a face track (``faces`` on analysed ``frames`` of the output timeline)
    over output frames ``[start, end)``; ``embedded``: its visual side, made in the analysis
    pass (:func:`pass_crops`)."""
    if cfg.speech_missing:
        raise PrepError(None, cfg.speech_missing)
    times, boxes = _boxes(cfg, frames, faces)
    return sp.analyse_track(info, start / cfg.fps, end / cfg.fps, times, boxes, cfg.speech_config(), cfg.analysis_side, embedded)


def _boxes(cfg: Any, frames: list[int], faces: list[Face]) -> tuple[np.ndarray, np.ndarray]:
    """A track's times (s) and boxes ((N, 3) centre x, centre y, side, display px)."""
    return np.asarray(frames, np.float64) / cfg.fps, np.array([[*f.center, f.size] for f in faces], np.float64)


def tracks_embedded(info: VideoInfo, cfg: Any, tracks: list[tuple[list[int], list[Face], int, int]], passed: Any = None) -> list[tuple[np.ndarray, bool] | None]:
    """The visual side of the speech check for several face tracks (``(frames, faces, start,
    end)`` each, as :func:`track_facts` takes them): from the analysis pass (``passed``:
    :func:`pass_crops` or :func:`split_crops`) for a track it cut, the others cut from shared
    decodes (:func:`prep.speech.track.tracks_embeddings`). ``None`` for a track whose own
    check says why it has none (no audio, under 2 s, no model), and for all the shared
    decode's tracks when it fails: each track's own decode then runs and reports what went
    wrong, as before."""
    out = [passed.track(frames, faces, start, end) if passed is not None else None for frames, faces, start, end in tracks]
    jobs = {}
    for k, (frames, faces, start, end) in enumerate(tracks):
        j0, n = sp.speech_frames(start / cfg.fps, end / cfg.fps)
        if out[k] is None and n >= sp.sync.WINDOW:
            jobs[k] = (j0, n, *_boxes(cfg, frames, faces))
    model = _model(info, cfg) if jobs else None
    if model is None:
        return out
    try:
        got = sp.tracks_embeddings(model, info, list(jobs.values()), cfg.analysis_side)
    except Exception:  # noqa: BLE001 - the tracks' own decodes say what it is
        return out
    for k, e in zip(jobs, got):
        out[k] = e
    return out


def pass_crops(info: VideoInfo, cfg: Any, n: int) -> sp.PassCrops | None:
    """The clip's face crops cut from the analysis pass (:class:`prep.speech.track.PassCrops`)
    when they can be: a face over the whole clip (the one-clip path, ``prep speech``), at the
    model's 25 fps, with audio, a clip long enough for the check and the model at hand; else
    ``None``."""
    if cfg.fps != sp.RATE or n < sp.sync.WINDOW:
        return None
    model = _model(info, cfg)
    return None if model is None else sp.PassCrops(model, info, cfg.analysis_side, n)


def split_crops(info: VideoInfo, cfg: Any, n: int, shots: ShotDetector, every: int, max_gap: int, min_len: int, from_start: bool = False, judge: Any = None, floor: float = 0.0) -> SplitCrops | None:
    """--split, and --person on the one-clip path: every face track's crops cut from the
    analysis pass of ``n`` frames (:class:`prep.video.trackcrops.SplitCrops`), at the model's
    25 fps, with audio and the model at hand; else ``None`` (the tracks are decoded again after
    the pass). ``from_start``, ``judge``, ``floor``: the one-clip path with --person (see
    :class:`SplitCrops`)."""
    if cfg.fps != sp.RATE or (from_start and n < sp.sync.WINDOW):
        return None
    model = _model(info, cfg)
    return None if model is None else SplitCrops(model, info, cfg.analysis_side, n, shots, every, max_gap, min_len, from_start=from_start, judge=judge, floor=floor)


def _model(info: VideoInfo, cfg: Any) -> Any:
    """The speech model, when the check runs on this clip; else ``None`` (the check itself
    says why, once, after the pass)."""
    if cfg.speech == "off" or not info.has_audio or cfg.speech_missing:
        return None
    sc = cfg.speech_config()
    try:
        return sp.load_default(sc.weights_dir, sc.checkpoint)
    except PrepError:
        return None


def unmeasured(problem: str) -> dict[str, Any]:
    return {"measured": False, "note": problem}


def whole_track(ts: sp.TrackSpeech, cfg: Any) -> dict[str, Any]:
    """The whole track's ``speech`` summary (offset and sync), made once and kept on it."""
    if ts.whole is None:
        ts.whole = sp.summarize(ts, cfg.speech_config())
    return ts.whole


def stretch(ts: sp.TrackSpeech, cfg: Any, start: int, end: int) -> dict[str, Any]:
    """The ``speech`` report of output frames ``[start, end)`` of a track: offset and sync from
    the whole track, speaking and voiced shares from the stretch itself."""
    whole = whole_track(ts, cfg)
    if not whole.get("measured"):
        return whole
    a, b = ts.frame_of(start / cfg.fps), ts.frame_of((end - 1) / cfg.fps) + 1
    synced = whole["sync"] is None or whole["sync"] >= cfg.speech_min_sync
    return {**whole, **sp.shares(ts, a, b, synced), "measured_over": {"start": round(ts.t0, 3), "seconds": round(ts.n / sp.RATE, 3)}}


def correction(rep: dict[str, Any], cfg: Any) -> float:
    """Seconds to move the audio earlier so lips and voice meet (``require`` only, for a
    trusted offset within the limit); written into the report as ``corrected_ms``."""
    if cfg.speech != "require" or not rep.get("measured") or rep.get("offset_frames") in (None, 0):
        return 0.0  # an offset under a frame (offset_frames 0) is left alone
    if rep["confidence"] < cfg.speech_min_confidence or abs(rep["offset_exact"]) > cfg.speech_max_offset + 0.5:
        return 0.0
    seconds = rep["offset_exact"] / sp.RATE  # audio needs no whole frames: the refined peak
    rep["corrected_ms"] = round(seconds * 1000.0, 1)
    return seconds


def judge(rep: dict[str, Any], cfg: Any) -> tuple[str, str] | None:
    """The reason and the words for rejecting a stretch under ``require``, else None."""
    if cfg.speech != "require":
        return None
    return sp.verdict(rep, cfg.speech_config())


def marks(ts: sp.TrackSpeech, cfg: Any, start: int, end: int) -> list[str]:
    """Per output frame of ``[start, end)``: ``""``, ``no_speech`` (a second or more without a
    voice) or ``not_speaking`` (a second or more of voice while this face is silent): the
    places where a speaker's turn ends. A face whose mouth does not follow the voice at all
    gets no marks: its track stays one candidate, rejected as a whole."""
    out = [""] * (end - start)
    if not ts.has_audio or ts.visual is None:
        return out
    whole = whole_track(ts, cfg)
    if whole.get("sync") is not None and whole["sync"] < cfg.speech_min_sync:
        return out  # not the speaker anywhere: one candidate, rejected whole with the reason in full
    talk = sp.speaking_frames(ts)
    run = int(round(QUIET_RUN * sp.RATE))
    label = np.full(ts.n, "", dtype=object)
    for flags, name in ((~ts.voiced, sp.NO_SPEECH), (ts.voiced & ~talk, sp.NOT_SPEAKING)):
        for a, b in _runs(flags):
            if b - a >= run:
                label[a:b] = name
    for i in range(start, end):
        out[i - start] = label[ts.frame_of(i / cfg.fps)]
    return out


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``[a, b)`` runs of True."""
    d = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def decide_model(cfg: Any) -> Any:
    """On the driver, once: ``cfg`` with the folder of the speech model every worker (on every
    node) will load, or, when it cannot be had, ``speech_missing``: the one line saying what to
    put where (``require`` makes it an error, ``measure`` a note and an unmeasured report)."""
    import dataclasses

    from ..detect.weights import resolve
    from ..speech.lightasd import CHECKPOINTS

    if cfg.speech == "off":
        return cfg
    model = CHECKPOINTS["ava"]
    try:
        path = resolve(model, cfg.speech_weights)
    except PrepError as exc:
        problem = f"speech check: {exc.problem}; get {model.filename} from {model.url} (MIT licence) and put it in --weights-dir or $PREP_WEIGHTS_DIR"
        return dataclasses.replace(cfg, speech_missing=problem)
    return dataclasses.replace(cfg, speech_weights=str(path.parent), speech_missing=None)
