"""Real footage (``--split``): one source in, one clip per kept segment out.

probe -> :func:`~prep.crop.analysis.analyse` (the one analysis decode, with the review
page's thumbnails) -> face tracks per shot -> per track: pose, blur, speech facts ->
segments (:mod:`prep.video.segments`) -> identity (--person, --group-by) and speech
verdicts per segment (:mod:`prep.crop.plan`) -> a clip and report per kept segment and size
(:mod:`prep.crop.write`) -> the review page -> the source's split record (written last: it
marks the source as done).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from ..blurdecide import BlurConfig, blurred_frames
from ..config import CropConfig
from ..layouts import video_layout
from ..probe import VideoInfo, probe_video
from ..video import review, speaking
from ..video.segments import pose_summary, pose_track, segment_geometry, split_track, track_span
from ..video.tracks import TrackFacts, face_tracks
from ..fsutil import write_json
from ..heap import trim
from .analysis import analyse, max_gap, min_len, track_speech
from .outputs import STAGING, config_key, previous, previous_split, sizes, split_marker
from .plan import not_the_person, other_speaker, speech_report, track_blur, why_empty
from .write import detector_report, encode, segment_report


def split_source(src: str, out_root: str | Path, cfg: CropConfig, item_id: str, show_progress: bool | None) -> dict[str, Any]:
    """Shots, tracks and segments of one source; a clip and a report per kept segment."""
    key = config_key(cfg)
    marker = split_marker(out_root, item_id)
    prev = previous_split(marker, key)
    if prev is not None:
        return {**prev, "status": "skipped", "note": "done in an earlier run"}
    t0 = time.perf_counter()
    info = probe_video(src)
    tp = time.perf_counter()
    an = analyse(info, cfg, show_progress=show_progress, thumbs=review.thumbs_dir(out_root, item_id))
    t1 = time.perf_counter()
    facts = track_facts(info, an, cfg)
    candidates = candidate_segments(an, cfg, facts, info.display_width, info.display_height)
    # identity decides only about kept segments: tracks without one are not embedded
    wanted = {(seg.shot, seg.track) for seg in candidates if seg.status == "kept"}
    identities = identify(info, an, cfg, {k: f for k, f in facts.items() if k in wanted}) if cfg.person is not None or cfg.group_by else {}
    trim()  # what the analysis freed goes back before the encoders start
    layout = video_layout(cfg.layout)
    write_root = Path(out_root) / STAGING if cfg.group_by else Path(out_root)  # --group-by: clips wait until the run's persons are known
    seg_records = []
    for seg in candidates:
        entry = judge_segment(seg, cfg, identities.get((seg.shot, seg.track)), facts)
        if seg.status == "kept":
            f = facts[(seg.shot, seg.track)]
            advance = speaking.correction(entry["speech"], cfg) if "speech" in entry else 0.0
            targets = sizes(cfg, write_root)
            recs = [write_segment(src, info, c, seg, f, layout, root, item_id, key, show_progress, entry.get("person"), entry.get("speech"), advance) for c, root in targets]
            entry.update(output=recs[0]["output"], report=recs[0]["report"])
            if cfg.tiers:
                entry["tiers"] = [{"size": c.size, "output": r["output"], "report": r["report"]} for (c, _), r in zip(targets, recs)]
        seg_records.append(entry)
    kept = [e for e in seg_records if e["status"] == "kept"]
    record: dict[str, Any] = {
        "source": src,
        "status": "ok" if kept else "empty",
        "split": True,
        "config_key": key,
        "config": cfg.to_dict(),
        "source_info": info.to_dict(),
        "detector": detector_report(an, cfg),
        **an.shots.to_dict(),
        "tracks": len(facts),
        "segments": seg_records,
        **({"person": cfg.person.to_dict()} if cfg.person is not None else {}),
        **({"track_vectors": {f"s{k[0]:02d}_t{k[1]:02d}": [round(float(v), 5) for v in t.vector] for k, t in identities.items() if t.vector is not None}} if cfg.group_by else {}),
        "outputs": [t["output"] for e in kept for t in e.get("tiers", [e])],
        "marker": str(marker),
    }
    if not kept:
        record["reason"] = why_empty(an, seg_records)
    record["review"] = review.collect(info, an, cfg, record, facts, out_root, item_id)
    record["timings"] = {"probe": round(tp - t0, 3), "analyse": round(t1 - tp, 3), "total": round(time.perf_counter() - t0, 3)}
    write_json(marker, record)  # last: marks the source as done
    return record


def track_facts(info: VideoInfo, an: Any, cfg: CropConfig) -> dict[tuple[int, int], TrackFacts]:
    """The face tracks of every shot, numbered within their shot (``(shot, track)``), with their
    pose, blur and (with the check on, for a track long enough to keep) speech facts."""
    ranges = an.shots.ranges
    shortest = min_len(cfg)
    bcfg = BlurConfig.resolve()
    tracks = [(shot, tr, *track_span(tr, ranges[shot], cfg.detect_every)) for shot, tr in face_tracks(an.detections, ranges, max_gap(cfg))]
    heard = [cfg.speech != "off" and end - start >= shortest for _, _, start, end in tracks]
    # the speech model's face crops of every track: cut in the analysis pass, else from one decode per stretch of footage
    embedded = iter(speaking.tracks_embedded(info, cfg, [(tr.frames, tr.faces, start, end) for (_, tr, start, end), h in zip(tracks, heard) if h], an.speech_crops))
    facts: dict[tuple[int, int], TrackFacts] = {}
    numbered: dict[int, int] = {}
    for (shot, tr, start, end), h in zip(tracks, heard):
        tno = numbered.get(shot, 0)
        numbered[shot] = tno + 1
        blur = track_blur(an, tr, cfg.detect_every, start, end)
        f = facts[(shot, tno)] = TrackFacts(tr, pose_track(tr), blur, blurred_frames(blur, cfg.fps, bcfg), start, end)
        if h:
            f.speech = track_speech(info, cfg, tr.frames, tr.faces, start, end, next(embedded))
    return facts


def candidate_segments(an: Any, cfg: CropConfig, facts: dict[tuple[int, int], TrackFacts], W: int, H: int) -> list[Any]:
    """Every track's candidate segments (kept ones with their window geometry), in track order."""
    judged = dataclasses.replace(cfg, size=max(cfg.tiers)) if cfg.tiers else cfg  # --tiers: every size holds the same segments
    candidates = []
    for (shot, tno), f in facts.items():
        heard = f.speech is not None and not isinstance(f.speech, dict)
        turns = speaking.marks(f.speech, cfg, f.start, f.end) if cfg.speech == "require" and heard else None
        for seg in split_track(shot, tno, f.track, an.shots.ranges[shot], f.poses, f.blurred, cfg.fps, cfg.detect_every, cfg, turns):
            if seg.status == "kept":
                segment_geometry(seg, f.track, an.detections, W, H, cfg.fps, judged)
            candidates.append(seg)
    return candidates


def judge_segment(seg: Any, cfg: CropConfig, who: Any, facts: dict[tuple[int, int], TrackFacts]) -> dict[str, Any]:
    """A candidate segment's entry in the source's record, after the identity (--person) and
    speech verdicts, which may reject it."""
    entry = seg.to_dict(cfg.fps)
    if cfg.person is not None and who is not None:
        entry["person"] = who.match.to_dict()
        if seg.status == "kept" and not who.match.matched:
            seg.reject(*not_the_person(who.match, cfg))
            entry = {**seg.to_dict(cfg.fps), "person": entry["person"]}
    speech = facts[(seg.shot, seg.track)].speech
    if speech is not None and seg.status == "kept":
        rep = speech_report(speech, cfg, seg.start, seg.end)
        verdict = speaking.judge(rep, cfg) or other_speaker(facts, seg, cfg, rep)
        if verdict is not None:
            seg.reject(*verdict)
            entry = {**seg.to_dict(cfg.fps), **{k: entry[k] for k in ("person",) if k in entry}}
        entry["speech"] = rep
    return entry


def identify(info: VideoInfo, an: Any, cfg: CropConfig, facts: dict[tuple[int, int], TrackFacts]) -> dict:
    """The identity of every face track ((shot, track) -> TrackIdentity), from the chips the
    analysis pass kept (a handful per track, embedded)."""
    from ..identity import track_identities

    keys = list(facts)
    found = track_identities(info, cfg.fps, an.detections, [list(zip(facts[k].track.frames, facts[k].track.faces)) for k in keys], an.chips, cfg.person, per_track=8)
    return dict(zip(keys, found))


def write_segment(src: str, info: VideoInfo, cfg: CropConfig, seg: Any, facts: TrackFacts, layout: Any, out_root: str | Path, item_id: str, key: str, show_progress: bool | None, person: dict | None = None, speech: dict | None = None, advance: float = 0.0) -> dict[str, Any]:
    """A kept segment's clip and report at one size (an earlier run's record when it is done);
    its blur is the track's, as the planner judged it, over the segment's frames."""
    seg_id = f"{item_id}__{seg.name()}"
    video_path, report_path = layout.video_path(out_root, seg_id), layout.report_path(out_root, seg_id)
    done = previous(report_path, video_path, key)
    if done is not None:
        return done
    t0 = time.perf_counter()
    encode(info, cfg, seg.geometry, seg.frames, video_path, start=seg.start, advance=advance, show_progress=show_progress)
    a, b = seg.start - facts.start, seg.end - facts.start
    return segment_report(src, info, cfg, seg, facts.blur[a:b], facts.blurred[a:b], pose_summary(facts.poses, seg.start, seg.end, cfg.fps), video_path, report_path, key, time.perf_counter() - t0, person, speech)
