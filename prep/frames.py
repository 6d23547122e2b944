"""``prep frames``: a video's frames as PNG files (DeepFaceLab's ``%05d.png``), blurred ones set aside.

The unit of work :func:`extract_frames` streams frames to disk one at a time, scores each
face for blur, and at the end moves the frames judged blurred against their own clip into
``OUT/rejected/``. ``OUT/frames.json`` is written last; a finished folder is skipped when
the command runs again with the same settings.

``--group-by person`` over several videos is done in two steps, like ``crop --split``'s: each
video's unit of work clusters its own faces (:class:`prep.identity.GroupScan`), leaves its
frames in ``OUT/.prep/frames/<name>/staging/`` and records, per local person, a descriptor
(the cluster's unit mean vector) and its frames; once every video is done, the driver's
:func:`group_across` merges the local persons of all videos (in input order, so the run gives
the same persons whatever the workers) and moves the frames into ``OUT/person_NN/<name>/``.
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
    person: Any = None,
    group_by: str | None = None,
    group_dir: str | None = None,
) -> dict[str, Any]:
    """``tiers``: also (instead) write the frames shrunk so their longer side is each size, in
    ``OUT/<size>/``; scores are measured once, on the full frames. ``person``
    (:class:`prep.identity.Reference`): keep only the frames where that person is seen; the
    others are removed and listed with their similarity (file numbers stay the source's).
    ``group_by="person"``: the frames are sorted into ``OUT/person_NN/`` by who is on them (a
    frame with two people is in both folders), each with a ``sheet.png`` of its faces.
    ``group_dir`` (with ``group_by``, one of several videos): the frames wait in
    ``group_dir/staging/`` (``staging/<size>/`` with ``tiers``) and a few faces per person in
    ``group_dir/chips/``; the record's ``local_persons`` give each person of this video
    (``local`` label, ``vector``: 128 floats, unit length, ``segments`` of frames, ``chips``),
    for :func:`group_across` to merge with the other videos' persons."""
    from .errors import error_record

    try:
        return _extract(src, Path(out_dir), det, bcfg, fps, reject_blur, show_progress, tiers, person, group_by, group_dir)
    except Exception as exc:  # noqa: BLE001 - an item's failure is a value
        return {**error_record(src, exc)}


def _settings(det: DetectSettings, bcfg: BlurConfig, fps: float | None, reject_blur: bool, tiers: tuple[int, ...], person: Any = None, group_by: str | None = None, group_dir: str | None = None) -> dict[str, Any]:
    settings = {"fps": fps, "reject_blur": reject_blur, "blur": bcfg.__dict__, "detector": det.detector, "tiers": list(tiers)}
    if person is not None:
        settings["person"] = {"vectors": [list(v) for v in person.vectors], "threshold": person.threshold}
    if group_by:
        settings["group_by"] = group_by
        if group_dir is not None:  # persons merged across the run's videos
            settings["across_videos"] = True
    return settings


def done(src: str, out_dir: str, det: DetectSettings, bcfg: BlurConfig, fps: float | None = None, reject_blur: bool = False, show_progress: bool | None = None, tiers: tuple[int, ...] = (), person: Any = None, group_by: str | None = None, group_dir: str | None = None) -> dict[str, Any] | None:
    """The driver's resume check (same arguments as :func:`extract_frames`): the skipped record
    when ``OUT/frames.json`` (written last) holds this source and these settings, else None."""
    try:
        old = json.loads((Path(out_dir) / REPORT).read_text())
    except (OSError, ValueError):
        return None
    if old.get("status") == "ok" and old.get("settings") == json.loads(json.dumps(_settings(det, bcfg, fps, reject_blur, tuple(tiers), person, group_by, group_dir))) and old.get("source") == src:
        return {**old, "status": "skipped", "note": "done in an earlier run"}
    return None


def _extract(src: str, out: Path, det: DetectSettings, bcfg: BlurConfig, fps: float | None, reject_blur: bool, show_progress: bool | None, tiers: tuple[int, ...], person: Any = None, group_by: str | None = None, group_dir: str | None = None) -> dict[str, Any]:
    across = group_by == "person" and group_dir is not None
    homes = [out / str(t) for t in tiers] or [out]  # where each size's rejected/ folder is
    write_to = homes
    if across:  # the frames wait in the staging folder until the run's persons are known
        stage = Path(group_dir) / "staging"
        write_to = [stage / str(t) for t in tiers] or [stage]
    folders = list(zip(write_to, [*tiers] or [None]))
    report = out / REPORT
    settings = _settings(det, bcfg, fps, reject_blur, tiers, person, group_by, group_dir)
    old = done(src, str(out), det, bcfg, fps, reject_blur, None, tiers, person, group_by, group_dir)
    if old is not None:
        return old
    info = probe_video(src)
    check_writable_dir(out)
    if across:  # an earlier, unfinished or different extraction's frames and faces go
        import shutil

        shutil.rmtree(group_dir, ignore_errors=True)
    rate = fps or info.fps
    scan = None
    if person is not None:  # faces on every frame, so a change of person lands on its frame
        from .identity import PresenceScan

        scan = PresenceScan(person, stride=max(1, round(rate / 4)))
    elif group_by == "person":
        from .identity import GroupScan

        scan = GroupScan(stride=max(1, round(rate / 4)))
    # --person: faces on every frame, and a full search on the first frame after a cut (not only
    # where the previous shot's face was), so a change of person lands on its frame
    analyzer = FrameAnalyzer(detector_for(det), every=1, search_new_shots=True) if scan else FrameAnalyzer(detector_for(det), every=2)
    scores = []
    for i, frame, faces, score in analyzer.run(progress(iter_frames(info, fps), None, Path(src).name, "frame", show_progress)):
        for folder, size in folders:
            write_png(folder / frame_name(i), frame if size is None else shrink(frame, size))
        if scan is not None:
            scan.feed(i, frame, faces or [])
        scores.append(score)
    if not scores:
        raise PrepError(src, "no frames decoded")
    presence = scan.finish() if scan is not None else None
    absent = [p["frame"] for p in presence if not p["person"]] if person is not None else []
    if group_by == "person":
        absent = [p["frame"] for p in presence if not p["persons"]]
    for folder, _ in folders:
        for i in absent:
            (folder / frame_name(i)).unlink(missing_ok=True)
    s = np.array(scores, np.float64)
    flags = blurred_frames(s, rate, bcfg)
    if absent:
        flags[absent] = False
    rejected = [int(i) for i in np.flatnonzero(flags)]
    if reject_blur and rejected:
        for (folder, _), home in zip(folders, homes):
            rej = home / "rejected"
            rej.mkdir(parents=True, exist_ok=True)
            for i in rejected:
                os.replace(folder / frame_name(i), rej / frame_name(i))
    if across:
        persons = _local_persons(presence, scan, Path(group_dir) / "chips")
    elif group_by == "person":  # after the blurred frames are set aside: they stay in OUT/rejected/
        persons = _group_frames(folders, presence, scan)
    record = {
        "source": src,
        "status": "ok",
        "out": str(out),
        "settings": settings,
        "source_info": info.to_dict(),
        "frames": len(scores),
        "kept": len(scores) - len(absent) - (len(rejected) if reject_blur else 0),
        "blurred_frames": rejected,
        "blurred_segments": segments(flags),
        "set_aside": reject_blur,
        "blur_rule": bcfg.video_rule(),
        "scores": [None if not np.isfinite(v) else round(float(v), 4) for v in s],
    }
    if across:  # the final persons are written in by group_across once every video is done
        record["group_dir"] = group_dir
        record["local_persons"] = persons
        record["frames_without_person"] = absent
    elif group_by == "person":
        record["persons"] = persons
        record["frames_without_person"] = absent
    elif presence is not None:
        record["person"] = {
            "reference": person.to_dict(),
            "frames_with_person": len(scores) - len(absent),
            "frames_without": absent,
            "segments": segments(np.array([bool(p["person"]) for p in presence])),
            "faces_embedded": scan.embedded,
            "frames": presence,
        }
    write_json(report, record)
    return record


def _group_frames(folders: list[tuple[Path, int | None]], presence: list[dict[str, Any]], scan: Any) -> list[dict[str, Any]]:
    """Copy each frame into the folder of every person on it, remove the originals, and write
    one contact sheet per person; returns a summary per person."""
    import shutil

    from .identity import person_folder
    from .sheet import GREEN, Tile, write_sheet

    by_person: dict[int, list[int]] = {}
    for p in presence:
        for k in p["persons"]:
            by_person.setdefault(k, []).append(p["frame"])
    tiles = scan.sheet_tiles()
    for folder, _ in folders:
        for k, frames in sorted(by_person.items()):
            dest = folder / person_folder(k)
            dest.mkdir(parents=True, exist_ok=True)
            for i in frames:
                if (folder / frame_name(i)).is_file():
                    shutil.copyfile(folder / frame_name(i), dest / frame_name(i))
            write_sheet(dest / "sheet.png", [Tile(c, [f"frame {i}"], GREEN) for i, c in tiles.get(k, [])], f"{person_folder(k)}: {len(frames)} frames")
        for p in presence:
            (folder / frame_name(p["frame"])).unlink(missing_ok=True)
    return [{"person": person_folder(k), "frames": len(v), "segments": segments(np.isin(np.arange(len(presence)), v))} for k, v in sorted(by_person.items())]


# ---- --group-by person over several videos: one clustering for the whole run ------------

SHEET_CHIPS = 8  # faces kept per local person for the contact sheets
SHEET_TILES = 48  # tiles on one person's sheet at most


def video_group_dir(out_root: str | Path, name: str) -> Path:
    """Where a video's frames wait for their persons (``staging/``) and its sheet faces stay (``chips/``)."""
    return Path(out_root) / ".prep" / "frames" / name


def _local_persons(presence: list[dict[str, Any]], scan: Any, chips_dir: Path) -> list[dict[str, Any]]:
    """One entry per person of this video (local labels, 0 = most faces): its descriptor
    (unit mean vector, rounded), the frames it is on as ``[first, last]`` runs, and up to
    ``SHEET_CHIPS`` aligned faces written to ``chips_dir`` for the run's contact sheets."""
    from .identity import pick_evenly

    tiles = scan.sheet_tiles()
    centroids = scan.centroids()
    n = len(presence)
    persons = []
    for k in sorted(centroids):
        on = np.zeros(n, bool)
        on[[p["frame"] for p in presence if k in p["persons"]]] = True
        chips = []
        kept = tiles.get(k, [])
        for j in pick_evenly(len(kept), SHEET_CHIPS):
            i, c = kept[j]
            path = chips_dir / f"p{k:02d}_{frame_name(i)}"
            write_png(path, c)
            chips.append({"frame": i, "path": str(path)})
        persons.append({"local": k, "vector": [round(float(v), 5) for v in centroids[k]], "frames": int(on.sum()), "segments": segments(on), "chips": chips})
    return persons


def group_across(out_root: str | Path, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``frames --group-by person`` with several videos, on the driver once every video is done.

    ``records``: the videos' records in input order (done now or skipped as done before),
    each with ``local_persons``. The local persons of all videos are clustered with one
    :class:`prep.identity.Clusterer` in that order (video, then local label), so the same
    inputs give the same persons whatever the workers or the runner; person_00 is the one with
    the most frames over the run. Each frame is moved (``os.replace``; copied first when it
    shows two persons) from the video's staging folder, or from an earlier run's person folder,
    to ``OUT/[<size>/]person_NN/<name>/``, and each video's ``frames.json`` gets the final
    ``persons``. Every step can be repeated: a rerun after an interruption ends in the same
    tree. Each person gets ``sheet.png`` of faces from all its videos. Returns one summary per
    person: ``person``, ``frames``, ``videos``, ``folders`` and ``sheets`` (one per size)."""
    from .identity import Clusterer, person_folder

    out = Path(out_root)
    videos = [r for r in records if r.get("status") in ("ok", "skipped") and "local_persons" in r]
    cl = Clusterer()
    labels = [[cl.add(np.array(lp["vector"], np.float64))[0] for lp in rec["local_persons"]] for rec in videos]
    # the frames each run-wide person gets in each video (set-aside blurred frames stay out)
    frames_of: list[dict[int, set[int]]] = []
    for rec, labs in zip(videos, labels):
        rejected = set(rec["blurred_frames"]) if rec.get("set_aside") else set()
        mine: dict[int, set[int]] = {}
        for lp, g in zip(rec["local_persons"], labs):
            mine.setdefault(g, set()).update(i for a, b in lp["segments"] for i in range(a, b + 1) if i not in rejected)
        frames_of.append(mine)
    total: dict[int, int] = {}
    for mine in frames_of:
        for g, fr in mine.items():
            total[g] = total.get(g, 0) + len(fr)
    order = sorted((g for g in total if total[g]), key=lambda g: (-total[g], g))
    rank = {g: k for k, g in enumerate(order)}
    tiers = videos[0]["settings"]["tiers"] if videos else []
    roots = [out / str(t) for t in tiers] or [out]
    for rec, labs, mine in zip(videos, labels, frames_of):
        _place_video(rec, roots, {g: fr for g, fr in mine.items() if g in rank}, rank)
        _final_report(rec, roots, labs, mine, rank)
    summaries = []
    for g in order:
        name = person_folder(rank[g])
        tiles, names = [], set()
        for rec, labs, mine in zip(videos, labels, frames_of):
            if mine.get(g):
                names.add(_name(rec))
                tiles.extend((_name(rec), c) for lp, lab in zip(rec["local_persons"], labs) if lab == g for c in lp.get("chips", []))
        _write_sheet([r / name / "sheet.png" for r in roots], tiles, f"{name}: {total[g]} frames from {len(names)} video(s)")
        summaries.append({"person": name, "frames": total[g], "videos": len(names), "folders": [str(r / name) for r in roots], "sheets": [str(r / name / "sheet.png") for r in roots]})
    for root in roots:
        _drop_empty_persons(root, len(order))
    return summaries


def _name(rec: dict[str, Any]) -> str:
    """The video's output name (its folder ``OUT/<name>/``, its folder in every person's)."""
    return Path(rec["out"]).name


def _place_video(rec: dict[str, Any], roots: list[Path], mine: dict[int, set[int]], rank: dict[int, int]) -> None:
    """Put each frame of one video in the folder of every run-wide person on it, in each size's tree."""
    from .identity import person_folder

    name = _name(rec)
    want: dict[int, list[str]] = {}
    for g, fr in mine.items():
        for i in fr:
            want.setdefault(i, []).append(person_folder(rank[g]))
    stage = Path(rec["group_dir"]) / "staging"
    tiers = rec["settings"]["tiers"]
    stages = [stage / str(t) for t in tiers] or [stage]
    for root, staged in zip(roots, stages):
        found: dict[str, list[Path]] = {}  # this video's frames already in a person's folder (an earlier run's)
        for d in sorted(root.glob(f"person_*/{name}")):
            for f in sorted(d.glob("[0-9]*.png")):
                found.setdefault(f.name, []).append(f)
        for i in sorted(want):
            f = frame_name(i)
            _place(staged / f, found.pop(f, []), [root / p / name / f for p in sorted(want[i])])
        for stale in found.values():  # frames of this video no person of this run is on any more
            for f in stale:
                f.unlink(missing_ok=True)
        for d in root.glob(f"person_*/{name}"):
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
    for d in [*stages, stage] if tiers else [stage]:  # emptied: only the faces for the sheets stay
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()


def _place(fresh: Path, found: list[Path], dests: list[Path]) -> None:
    """One frame into ``dests``: from ``fresh`` (the staging file: a new extraction, so it wins)
    when it exists, else from a copy already placed by an earlier run (``found``). The file is
    copied (atomically) to all destinations but one and moved to that one; copies in folders it
    no longer belongs in are removed last. Interrupted anywhere, doing it again finishes it."""
    from .fsutil import copy_atomic

    if fresh.is_file():
        for d in dests[:-1]:
            copy_atomic(fresh, d)
        dests[-1].parent.mkdir(parents=True, exist_ok=True)
        os.replace(fresh, dests[-1])
    else:
        have = [f for f in found if f in dests] or found
        if not have:
            return  # nothing left of this frame (removed by hand): nothing to place
        missing = [d for d in dests if not d.is_file()]
        movable = have[0] not in dests
        for d in missing[:-1] if movable else missing:
            copy_atomic(have[0], d)
        if movable and missing:
            missing[-1].parent.mkdir(parents=True, exist_ok=True)
            os.replace(have[0], missing[-1])
    for f in found:
        if f not in dests:
            f.unlink(missing_ok=True)


def _final_report(rec: dict[str, Any], roots: list[Path], labs: list[int], mine: dict[int, set[int]], rank: dict[int, int]) -> None:
    """The video's record and ``frames.json`` with its run-wide persons (who, which frames, where)."""
    from .identity import person_folder

    n = rec["frames"]
    persons = []
    for g in sorted((g for g in mine if g in rank and mine[g]), key=lambda g: rank[g]):
        on = np.zeros(n, bool)
        on[sorted(mine[g])] = True
        name = person_folder(rank[g])
        persons.append({"person": name, "local": [lp["local"] for lp, lab in zip(rec["local_persons"], labs) if lab == g], "frames": int(on.sum()), "segments": segments(on), "folders": [str(r / name / _name(rec)) for r in roots]})
    rec["persons"] = persons
    write_json(Path(rec["out"]) / REPORT, {**{k: v for k, v in rec.items() if k not in ("note", "node")}, "status": "ok"})


def _write_sheet(dests: list[Path], tiles: list[tuple[str, dict[str, Any]]], title: str) -> None:
    """One contact sheet of ``(video name, chip)`` faces (evenly chosen when there are many)."""
    import cv2

    from .identity import pick_evenly
    from .sheet import GREEN, Tile, render

    shown = []
    for j in pick_evenly(len(tiles), SHEET_TILES):
        name, c = tiles[j]
        img = cv2.imread(c["path"])
        if img is not None:
            shown.append(Tile(img, [name[:24], f"frame {c['frame']}"], GREEN))
    sheet = render(shown, title)
    for d in dests:
        write_png(d, sheet)


def _drop_empty_persons(root: Path, n: int) -> None:
    """Person folders beyond this run's persons left with nothing but a sheet (after a rerun that found fewer people) go."""
    for d in sorted(root.glob("person_*")):
        number = d.name[len("person_"):]
        if d.is_dir() and number.isdigit() and int(number) >= n and all(f.name == "sheet.png" for f in d.iterdir()):
            (d / "sheet.png").unlink(missing_ok=True)
            d.rmdir()
