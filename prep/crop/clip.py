"""One clip in, one face-centred square clip per size asked for out.

probe -> :func:`~prep.crop.analysis.analyse` (the one analysis decode) -> the subject's
speech facts -> :func:`~prep.crop.plan.clip_geometry` -> :func:`~prep.crop.write.encode`
and the report, once per size (``--tiers``).

A fixed window from a large source (1080p) is encoded in the analysis's own decode: a look at
a few key frames places a provisional window (:mod:`prep.crop.look`), one decode feeds both
the encoder and the analysis, and the clip is encoded a second time only when the analysed
window lies further from the provisional one than ``window_tolerance`` (when the speech check
moves the audio, the picture is copied and only the audio encoded again).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..config import CropConfig
from ..decode import frame_count_at
from ..encode import encode_fixed_reading, move_audio
from ..fsutil import atomic_path, commit, partial_path
from ..heap import trim
from ..probe import VideoInfo, probe_video
from ..video import speaking
from .analysis import Analysis, analyse, get_detector, track_speech
from .look import close_enough, provisional_window, shares_decode
from .outputs import combine, config_key, output_paths, previous, sizes, skipped
from .plan import clip_geometry, speech_report
from .write import clip_report, encode, rejected_report


def crop_clip(src: str, out_root: str | Path, cfg: CropConfig, item_id: str | None, show_progress: bool | None) -> dict[str, Any]:
    """Analyse once, then encode and report every size asked for (``cfg.tiers``: one folder each)."""
    t0 = time.perf_counter()
    records: list[dict[str, Any] | None] = []  # one per size, in the order asked for
    pending = []
    for c, root in sizes(cfg, out_root):
        video_path, report_path = output_paths(src, root, c, item_id)
        old = previous(report_path, video_path, config_key(c))
        if old is None:
            pending.append((len(records), c, video_path, report_path))
        records.append(None if old is None else skipped(old))
    if not pending:
        return combine(records)
    info = probe_video(src)
    t1 = time.perf_counter()
    detector = get_detector(cfg)
    look = provisional_window(info, cfg, detector) if shares_decode(info, cfg) else None
    tmps: list[Path] = []
    frames = None  # without the shared decode, the analysis decodes its own frames
    try:
        if look is not None:  # the clip is encoded while it is analysed, into temporaries
            for _, _, video_path, _ in pending:
                tmps.append(partial_path(video_path))  # one by one: a failure leaves none behind
            frames = encode_fixed_reading(info, look, cfg.pad, [(c, tmp) for (_, c, _, _), tmp in zip(pending, tmps)], frame_count_at(info, cfg.fps), cfg.analysis_side)
        an = analyse(info, cfg, detector, show_progress=show_progress, frames=frames)
        t2 = time.perf_counter()
        speech, advance = subject_speech(info, cfg, an)
        trim()  # what the analysis freed goes back before the encoders start
        timings = {"probe": t1 - t0, ("analyse_encode" if look is not None else "analyse"): t2 - t1, **({"speech": time.perf_counter() - t2} if speech is not None else {})}
        verdict = speaking.judge(speech, cfg) if speech is not None else None
        for k, (slot, c, video_path, report_path) in enumerate(pending):
            if verdict is not None:
                records[slot] = rejected_report(src, info, c, report_path, verdict, speech)
                continue
            t3 = time.perf_counter()
            geo = clip_geometry(info, c, an)
            analysed = tuple(int(v) for v in geo["windows"][0])
            if look is not None and close_enough(look, analysed, c.window_tolerance):  # already encoded
                geo = {**clip_geometry(info, c, an, window=look), "analysed_window": analysed}
                if advance:  # the speech check moves the audio: the picture is copied
                    with atomic_path(video_path) as moved:
                        move_audio(info, c, tmps[k], an.n_frames, moved, advance)
                else:
                    commit(tmps[k], video_path)
            else:  # track mode, or the look's window too far off the analysed one
                encode(info, c, geo, an.n_frames, video_path, advance=advance, show_progress=show_progress)
            records[slot] = clip_report(src, info, an, c, geo, video_path, report_path, {**timings, "encode": time.perf_counter() - t3}, speech)
    finally:
        if frames is not None:  # a failure mid-analysis: the shared decode and its encoders stop
            frames.close()
        for tmp in tmps:  # what was not renamed: a rejected clip, a failure
            tmp.unlink(missing_ok=True)
    return combine(records)


def subject_speech(info: VideoInfo, cfg: CropConfig, an: Analysis) -> tuple[dict[str, Any] | None, float]:
    """The clip's ``speech`` report (None with --speech off) and the audio advance in seconds
    that corrects a measured offset (``require`` only)."""
    if cfg.speech == "off":
        return None, 0.0
    sub = an.subject.subject
    frames = sorted(sub)
    faces = [sub[i] for i in frames]
    embedded = None
    if an.speech_crops is not None:
        embedded = an.speech_crops.track(frames, faces, 0, an.n_frames)
        an.speech_crops.release()  # (other faces' embeddings go before the encode)
    facts = track_speech(info, cfg, frames, faces, 0, an.n_frames, embedded)
    rep = speech_report(facts, cfg, 0, an.n_frames)
    return rep, (0.0 if isinstance(facts, dict) else speaking.correction(rep, cfg))
