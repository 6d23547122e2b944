"""One clip in, one face-centred square clip per size asked for out.

probe -> :func:`~prep.crop.analysis.analyse` (the one analysis decode) -> the subject's
speech facts -> :func:`~prep.crop.plan.clip_geometry` -> :func:`~prep.crop.write.encode`
and the report, once per size (``--tiers``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..config import CropConfig
from ..probe import VideoInfo, probe_video
from ..video import speaking
from .analysis import Analysis, analyse, track_speech
from .outputs import combine, config_key, output_paths, previous, sizes, skipped
from .plan import clip_geometry, speech_report
from .write import clip_report, encode, rejected_report


def crop_clip(src: str, out_root: str | Path, cfg: CropConfig, item_id: str | None, show_progress: bool | None) -> dict[str, Any]:
    """Analyse once, then encode and report every size asked for (``cfg.tiers``: one folder each)."""
    t0 = time.perf_counter()
    records, pending = [], []
    for c, root in sizes(cfg, out_root):
        video_path, report_path = output_paths(src, root, c, item_id)
        old = previous(report_path, video_path, config_key(c))
        if old is not None:
            records.append(skipped(old))
        else:
            pending.append((c, video_path, report_path))
    if not pending:
        return combine(records)
    info = probe_video(src)
    t1 = time.perf_counter()
    an = analyse(info, cfg, show_progress=show_progress)
    t2 = time.perf_counter()
    speech, advance = subject_speech(info, cfg, an)
    timings = {"probe": t1 - t0, "analyse": t2 - t1, **({"speech": time.perf_counter() - t2} if speech is not None else {})}
    verdict = speaking.judge(speech, cfg) if speech is not None else None
    for c, video_path, report_path in pending:
        if verdict is not None:
            records.append(rejected_report(src, info, c, report_path, verdict, speech))
            continue
        t3 = time.perf_counter()
        geo = clip_geometry(info, c, an)
        encode(info, c, geo, an.n_frames, video_path, advance=advance, show_progress=show_progress)
        records.append(clip_report(src, info, an, c, geo, video_path, report_path, {**timings, "encode": time.perf_counter() - t3}, speech))
    return combine(records)


def subject_speech(info: VideoInfo, cfg: CropConfig, an: Analysis) -> tuple[dict[str, Any] | None, float]:
    """The clip's ``speech`` report (None with --speech off) and the audio advance in seconds
    that corrects a measured offset (``require`` only)."""
    if cfg.speech == "off":
        return None, 0.0
    sub = an.subject.subject
    frames = sorted(sub)
    facts = track_speech(info, cfg, frames, [sub[i] for i in frames], 0, an.n_frames)
    rep = speech_report(facts, cfg, 0, an.n_frames)
    return rep, (0.0 if isinstance(facts, dict) else speaking.correction(rep, cfg))
