"""``prep frames --group-by person`` over several videos: on the driver, once every video is
done, the local persons of all videos (each video's record carries them, see
:func:`prep.frames.extract_frames`) are clustered in input order, so the run gives the same
persons whatever the workers, and each frame moves from its video's staging folder into
``OUT/[<size>/]person_NN/<name>/``; every person gets one ``sheet.png``. Every step can be
repeated: a run stopped half-way and started again ends in the same tree."""

from __future__ import annotations

import glob

import os
from pathlib import Path
from typing import Any

import numpy as np

from .blurdecide import segments
from .frames import REPORT, frame_name
from .fsutil import write_json
from .images import write_png

SHEET_TILES = 48  # tiles on one person's sheet at most


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


def earlier_videos(out_root: str | Path, names: list[str]) -> list[str]:
    """Videos whose frames sit in ``OUT``'s person folders (``[<size>/]person_NN/<video>/``)
    from an earlier run but are not among ``names``, this run's videos. Their persons were
    numbered by that run's clustering: kept beside this run's, one ``person_NN`` folder could
    hold two people, so the run refuses to start (see :func:`prep.cli.frames`)."""
    out, mine = Path(out_root), set(names)
    found = set()
    for d in [*out.glob("person_*/*"), *out.glob("*/person_*/*")]:
        if d.is_dir() and d.parent.name[len("person_"):].isdigit() and d.name not in mine:
            found.add(d.name)
    return sorted(found)


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
        for d in sorted(root.glob(f"person_*/{glob.escape(name)}")):  # a name such as "Talk [dQw4w9WgXcQ]" is no pattern
            for f in sorted(d.glob("[0-9]*.png")):
                found.setdefault(f.name, []).append(f)
        for i in sorted(want):
            f = frame_name(i)
            _place(staged / f, found.pop(f, []), [root / p / name / f for p in sorted(want[i])])
        for stale in found.values():  # frames of this video no person of this run is on any more
            for f in stale:
                f.unlink(missing_ok=True)
        for d in root.glob(f"person_*/{glob.escape(name)}"):
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
