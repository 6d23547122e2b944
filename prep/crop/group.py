"""``--split --group-by person``: on the driver, once every source is done, the face tracks
of all sources are clustered by identity and each kept segment's clip moves into its
person's folder."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..fsutil import write_json
from ..identity import Clusterer, person_folder
from ..sheet import GREEN, Tile, write_sheet
from .outputs import STAGING


def group_segments(out_root: str | Path, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``--split --group-by person``, on the driver once every source is done: cluster the face
    tracks of all sources by identity (in source, shot, track order: the same run gives the
    same persons) and move each kept segment's clip and report from the staging folder (or an
    earlier run's person folder) into ``OUT/person_NN/<layout>``; each person gets ``sheet.png``
    of its segments. The sources' records (and their markers) are updated to the new places.
    Returns one summary per person (person_00 has the most face tracks; ties keep the order
    of first appearance)."""
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
            rel = relative_to_layout_root(cur, out)
            dest = folder / rel
            if cur != dest and cur.is_file():
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(cur, dest)
            e[field] = str(dest)
        _point_report_at(Path(e["report"]), e["output"], e["report"])
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


_SEGMENT_FILE = re.compile(r"^(.+)__s\d{2}_t\d{2}(_p\d{2})?\.mp4$")


def earlier_sources(out_root: str | Path, names: list[str]) -> list[str]:
    """Sources whose segments sit in ``OUT``'s person folders from an earlier run but are not
    among ``names``, this run's sources (output names). Their persons were numbered by that
    run's clustering: kept beside this run's, one ``person_NN`` folder could hold two people,
    so the run refuses to start (see :func:`prep.cli.crop`)."""
    mine = set(names)
    found = set()
    for f in Path(out_root).glob("person_*/**/*.mp4"):
        m = _SEGMENT_FILE.match(f.name)
        if m and m.group(1) not in mine:
            found.add(m.group(1))
    return sorted(found)


def _point_report_at(report: Path, output: str, where: str) -> None:
    """A moved segment's report names its clip's and its own new places."""
    if not report.is_file():
        return
    data = json.loads(report.read_text())
    if (data.get("output"), data.get("report")) != (output, where):
        write_json(report, {**data, "output": output, "report": where})


def relative_to_layout_root(path: Path, out: Path) -> Path:
    """A clip's place inside the layout, whether it sits in the staging folder or in a person's
    (an earlier run may have named OUT relatively and this one absolutely, or the other way)."""
    rel = path.resolve().relative_to(out.resolve())
    parts = rel.parts
    if parts[:2] == tuple(STAGING.split("/")):
        return Path(*parts[2:])
    if parts and parts[0].startswith("person_"):
        return Path(*parts[1:])
    return rel
