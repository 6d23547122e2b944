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
import re
from pathlib import Path
from typing import Any

import numpy as np

from .blurdecide import BlurConfig, blurred_frames, segments
from .blurscan import DetectSettings, detector_for
from .decode import iter_frames
from .errors import PrepError
from .fsutil import check_writable_dir, copy_atomic, write_json
from .images import write_png
from .probe import frame_times, probe_video
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


_FRAME_FILE = re.compile(r"^\d{5,}\.png$")


def _clear_earlier(out: Path, homes: list[Path]) -> None:
    """Before a video is extracted again (other settings, or an extraction that did not end):
    its ``frames.json`` goes first, so an interrupted run is never taken for the earlier one,
    then the frames an earlier extraction wrote (numbered PNGs only: in each size's folder,
    its ``rejected/`` and its person folders), so no frame of other settings stays beside the
    new ones. Anything else in the folder (DeepFaceLab's ``aligned/``) is left alone."""
    (out / REPORT).unlink(missing_ok=True)
    for home in homes:
        for folder in [home, home / "rejected", *sorted(home.glob("person_*"))]:
            if folder.is_dir():
                for f in folder.iterdir():
                    if _FRAME_FILE.match(f.name) and f.is_file():
                        f.unlink(missing_ok=True)


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
    _clear_earlier(out, homes)
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
    flags = blurred_frames(s, rate, bcfg, frame_times(info) if fps is None and info.vfr else None)
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
        persons = _group_frames(folders, presence, scan, set(rejected) if reject_blur else set())
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


def _group_frames(folders: list[tuple[Path, int | None]], presence: list[dict[str, Any]], scan: Any, set_aside: set[int] = frozenset()) -> list[dict[str, Any]]:
    """Copy each frame into the folder of every person on it, remove the originals, and write
    one contact sheet per person; returns a summary per person (``set_aside``: the blurred
    frames moved to ``rejected/``, in no person's folder and not counted). Each copy is whole
    or absent (temporary name, then rename)."""
    from .identity import person_folder
    from .sheet import GREEN, Tile, write_sheet

    by_person: dict[int, list[int]] = {}
    for p in presence:
        for k in p["persons"]:
            if p["frame"] not in set_aside:
                by_person.setdefault(k, []).append(p["frame"])
    tiles = scan.sheet_tiles()
    for folder, _ in folders:
        for k, frames in sorted(by_person.items()):
            dest = folder / person_folder(k)
            dest.mkdir(parents=True, exist_ok=True)
            for i in frames:
                if (folder / frame_name(i)).is_file():
                    copy_atomic(folder / frame_name(i), dest / frame_name(i))
            write_sheet(dest / "sheet.png", [Tile(c, [f"frame {i}"], GREEN) for i, c in tiles.get(k, [])], f"{person_folder(k)}: {len(frames)} frames")
        for p in presence:
            (folder / frame_name(p["frame"])).unlink(missing_ok=True)
    return [{"person": person_folder(k), "frames": len(v), "segments": segments(np.isin(np.arange(len(presence)), v))} for k, v in sorted(by_person.items())]


# ---- --group-by person over several videos: one clustering for the whole run ------------

SHEET_CHIPS = 8  # faces kept per local person for the contact sheets


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
