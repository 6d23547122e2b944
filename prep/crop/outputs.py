"""Where a crop's outputs go, the fingerprint of the settings that shape them, and whether an
earlier run already made them (the resume checks: a report is written last and marks its clip
as done; with --split, the source's split record marks the source)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from ..config import CropConfig
from ..layouts import video_layout

STAGING = ".prep/staging"  # --group-by person: where clips wait for their person's folder


def config_key(cfg: CropConfig) -> str:
    """Fingerprint of the settings that shape the output (resume skips only identical work)."""
    relevant = {k: v for k, v in cfg.to_dict().items() if k not in ("weights_dir", "speech_weights", "speech_missing") and not (k in ("person", "group_by") and v is None) and not ((k == "speech" or k.startswith("speech_")) and cfg.speech == "off") and not (k == "window_tolerance" and cfg.mode != "fixed")}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def sizes(cfg: CropConfig, root: str | Path) -> list[tuple[CropConfig, Path]]:
    """Every size asked for and its folder: ``--tiers`` gives each size a config and ``root/<size>``."""
    if cfg.tiers:
        return [(dataclasses.replace(cfg, size=t, tiers=()), Path(root) / str(t)) for t in cfg.tiers]
    return [(cfg, Path(root))]


def output_paths(src: str | Path, out_root: str | Path, cfg: CropConfig, item_id: str | None = None) -> tuple[Path, Path]:
    """The clip's video and report paths in the config's layout."""
    layout = video_layout(cfg.layout)
    item_id = item_id or Path(src).stem
    return layout.video_path(out_root, item_id), layout.report_path(out_root, item_id)


def split_marker(out_root: str | Path, item_id: str) -> Path:
    """The source's split record: written last, it marks the source as done."""
    return Path(out_root) / ".prep" / "split" / f"{item_id}.json"


def previous(report_path: Path, video_path: Path, key: str) -> dict[str, Any] | None:
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


def previous_split(marker: Path, key: str) -> dict[str, Any] | None:
    """An earlier run's split record of the source, when every clip it lists is still there."""
    try:
        rec = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if rec.get("config_key") != key or not all(Path(p).is_file() for p in rec.get("outputs", [])):
        return None
    return rec


def skipped(rec: dict[str, Any]) -> dict[str, Any]:
    """An earlier run's record as this run reports it."""
    return {**rec, "status": "skipped" if rec["status"] == "ok" else rec["status"], "note": "done in an earlier run"}


def combine(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One record per clip: the first size's, with every size listed under ``tiers`` in the
    order asked for (a size made now beside sizes an earlier run made: ``ok``)."""
    first = dict(records[0])
    if len(records) > 1:
        first["tiers"] = [{k: r[k] for k in ("status", "output", "report") if k in r} for r in records]
        if first["status"] != "ok" and any(r["status"] == "ok" for r in records):
            first["status"] = "ok"
            first.pop("note", None)
    return first


def taken(src: str, out_root: str | Path, cfg: CropConfig, item_id: str | None) -> str | None:
    """The other source whose outputs this source's id already names (two inputs with one id),
    from the record an earlier source left (--split: its split record; else its first size's report)."""
    from ..batch import read_record, taken_by

    if cfg.split:
        return taken_by(read_record(split_marker(out_root, item_id or Path(src).stem)), src)
    c, root = sizes(cfg, out_root)[0]
    return taken_by(read_record(output_paths(src, root, c, item_id)[1]), src)


def done(src: str | Path, out_root: str | Path, cfg: CropConfig, item_id: str | None = None, show_progress: bool | None = None) -> dict[str, Any] | None:
    """The driver's resume check (same arguments as :func:`prep.crop.crop_video`): the clip's
    skipped record when every size asked for has its report and video from the same settings
    (with --split: the source's split record and all its clips), else None."""
    other = taken(str(src), out_root, cfg, item_id)
    if other is not None:  # another source given the same id: reported, neither skipped nor overwritten
        from ..batch import clash
        from ..errors import error_record

        return error_record(str(src), clash(str(src), item_id or Path(src).stem, other))
    if cfg.split:
        prev = previous_split(split_marker(out_root, item_id or Path(src).stem), config_key(cfg))
        return None if prev is None else {**prev, "status": "skipped", "note": "done in an earlier run"}
    records = []
    for c, root in sizes(cfg, out_root):
        video_path, report_path = output_paths(str(src), root, c, item_id)
        old = previous(report_path, video_path, config_key(c))
        if old is None:
            return None
        records.append(skipped(old))
    return combine(records)
