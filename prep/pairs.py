"""``prep pairs``: sharp/degraded training pairs for face restoration and super-resolution.

The unit of work :func:`make_pairs` turns one photo into its samples (the photo itself, or
each face aligned to the FFHQ template with ``align``), degrades each ``copies`` times and
writes the pairs where the layout says. Its random state comes from (seed, item key, face,
copy) only, so the bytes written do not depend on the number of workers or on what was done
before. A small record per photo, written last under ``OUT/.prep/pairs/``, marks it done;
:func:`finish` gathers the records into ``OUT/degradations.jsonl`` and the run report.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import cv2
import numpy as np

from .align import align, face_scale, outside_shares
from .degrade import degrade, load_params
from .errors import PrepError
from .fsutil import write_json
from .images import read_image, write_png, write_pngs
from .layouts import pair_layout

MARKERS = ".prep/pairs"


@dataclass(frozen=True)
class PairsConfig:
    degrade: str = "bsrgan"
    size: int = 512
    scale: int = 1
    val_fraction: float = 0.05
    copies: int = 1
    seed: int = 0
    align: bool = False
    layout: str = "gpen"
    max_upscale: float = 1.25  # --align: faces needing more enlargement than this are skipped
    max_face_outside: float = 0.02  # --align: faces more of whose region (forehead to chin) lies outside the photo are skipped
    min_face_score: float = 0.8
    detector: str = "auto"
    weights_dir: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # the degradation preset, resolved
    person: Any = None  # identity.Reference: keep only this person's faces (--person)
    group_by: str | None = None  # "person": write OUT/person_NN/<layout> (--group-by person)

    def __post_init__(self) -> None:
        problems = []
        if self.scale not in (1, 2, 4):
            problems.append(f"scale must be 1, 2 or 4, got {self.scale}")
        if self.size < 16 or self.size % self.scale:
            problems.append(f"size must be at least 16 and divisible by the scale {self.scale}, got {self.size}")
        if not 0 <= self.val_fraction < 1:
            problems.append(f"val fraction must be in [0, 1), got {self.val_fraction}")
        if self.copies < 1:
            problems.append("copies must be at least 1")
        if not 0 <= self.max_face_outside <= 1:
            problems.append(f"max_face_outside must be in [0, 1], got {self.max_face_outside}")
        pair_layout(self.layout)
        if self.group_by not in (None, "person"):
            problems.append(f"group_by must be person, got {self.group_by!r}")
        if problems:
            raise PrepError(None, "; ".join(problems))

    @classmethod
    def resolve(cls, **values: Any) -> "PairsConfig":
        values = {k: v for k, v in values.items() if v is not None}
        values["params"] = load_params(values.get("degrade", "bsrgan"))
        return cls(**values)

    def key(self) -> str:
        """Fingerprint of everything that shapes a pair's bytes."""
        d = dataclasses.asdict(self)
        for k in ("weights_dir", "detector"):
            d.pop(k)
        d["draws"] = 2  # 2026-12-02: 64-bit seeds and the degradations as their sources draw them (other bytes than before)
        if not self.align:  # used only by --align: earlier runs' fingerprints without it stay valid
            d.pop("max_face_outside")
        for k in ("person", "group_by"):  # absent when unused: earlier runs' fingerprints stay valid
            if d[k] is None:
                d.pop(k)
        if "person" in d:
            d["person"] = {"vectors": d["person"]["vectors"], "threshold": d["person"]["threshold"]}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def stable_int(*parts: Any) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest(), "little")


def split_of(item_id: str, cfg: PairsConfig) -> str:
    """train or val, from (seed, item) alone: stable across runs, orders and workers. All
    samples of one photo (faces, copies) go to the same split, so val never sees a train face."""
    u = stable_int("split", cfg.seed, item_id) / 2.0**64
    return "val" if u < cfg.val_fraction else "train"


def rng_for(cfg: PairsConfig, item_id: str, face: int, copy: int) -> np.random.Generator:
    # the whole 64 bits of the seed and of the photo's hash (32 of each gave two photos the same
    # draws about once in 90,000 photos, and --seed -1 the draws of --seed 4294967295)
    return np.random.default_rng([cfg.seed % 2**64, stable_int(item_id), face, copy])


def square(img: np.ndarray, size: int) -> np.ndarray:
    """Centre square, resized to ``size`` (area averaging when shrinking)."""
    h, w = img.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    crop = img[y0 : y0 + s, x0 : x0 + s]
    if s == size:
        return np.ascontiguousarray(crop)
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if s > size else cv2.INTER_CUBIC)


def marker_path(out: str | Path, item_id: str) -> Path:
    return Path(out) / MARKERS / f"{item_id}.json"


def samples_of(img: np.ndarray, src: str, cfg: PairsConfig) -> tuple[list[tuple[int, np.ndarray, dict]], list[dict]]:
    """(face index, HQ image, facts) for each sample, and the faces skipped with reasons.

    With ``cfg.person`` only faces of that person are kept (a face crop, ``--no-align``, is
    checked on its main face); every kept and skipped face carries its ``person`` match.
    With ``cfg.group_by`` each sample's facts carry its identity ``vector``.
    """
    identify = cfg.person is not None or cfg.group_by == "person"
    if not cfg.align:
        h, w = img.shape[:2]
        facts: dict[str, Any] = {"crop": "centre square" if h != w else "whole", "source_size": [w, h]}
        if identify:
            from .detect import main_face

            face = main_face(_faces(img, cfg))
            if face is None:
                return [], [{"face": None, "reason": "no face found to identify the person"}]
            facts, why = _identify(img, face, cfg, facts)
            if why:
                return [], [{"face": 0, "person": facts["person"], "reason": why}]
        return [(0, square(img, cfg.size), facts)], []
    faces = _faces(img, cfg)
    if not faces:
        return [], [{"face": None, "reason": "no face found (use --no-align for photos that are already face crops)"}]
    faces.sort(key=lambda f: (f.box[0], f.box[1]))  # a stable order: left to right
    out, skipped = [], []
    for j, face in enumerate(faces):
        up = face_scale(face, cfg.size)
        if up > cfg.max_upscale:
            skipped.append({"face": j, "box": [round(v) for v in face.box], "kind": "too_small", "enlarged": round(up, 3), "reason": f"face too small: would be enlarged {up:.1f}x to reach {cfg.size} px"})
            continue
        whole, own = outside_shares(img.shape, face, cfg.size)
        if own > cfg.max_face_outside:  # the crop would mirror the photo's edge across the face itself
            skipped.append({"face": j, "box": [round(v) for v in face.box], "kind": "at_edge", "outside": round(own, 3), "reason": f"face at the photo's edge: {own:.0%} of it would lie outside the photo (limit {cfg.max_face_outside:.0%})"})
            continue
        facts = {"face": j, "box": [round(v, 1) for v in face.box], "enlarged": round(up, 3), "outside": round(whole, 3)}
        if identify:
            facts, why = _identify(img, face, cfg, facts)
            if why:
                skipped.append({"face": j, "box": facts["box"], "person": facts["person"], "reason": why})
                continue
        out.append((j, align(img, face, cfg.size), facts))
    return out, skipped


def _faces(img: np.ndarray, cfg: PairsConfig) -> list:
    from .blurscan import DetectSettings, detector_for

    return [f for f in detector_for(DetectSettings(cfg.detector, cfg.weights_dir)).detect(img) if f.score >= cfg.min_face_score]


def _identify(img: np.ndarray, face: Any, cfg: PairsConfig, facts: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """``facts`` with the face's ``person`` match (and its identity ``vector`` when grouping),
    and the reason to skip the face (``None``: keep it)."""
    from .identity import face_match, embed

    e = embed(img, face)
    facts = dict(facts)
    if cfg.group_by == "person":
        facts["vector"] = [round(float(v), 5) for v in e.vector]
    if cfg.person is None:
        return facts, None
    m = face_match(e, cfg.person)
    facts["person"] = m
    return facts, None if m["matched"] else f"not the person (similarity {m['similarity']:.3f} < {cfg.person.threshold:.3f})"


def done(src: str, item_id: str, out: str, cfg: PairsConfig) -> dict[str, Any] | None:
    """The resume check (same arguments as :func:`make_pairs`, cheap enough for the driver):
    the photo's skipped record when its marker holds the same settings, else None."""
    from .batch import read_record

    return _judged(read_record(marker_path(out, item_id)), src, item_id, cfg)


def _judged(old: dict[str, Any] | None, src: str, item_id: str, cfg: PairsConfig) -> dict[str, Any] | None:
    """What the photo's earlier marker ``old`` says: another photo's under this id (its error
    record: neither skipped nor overwritten), this photo done with these settings (skipped), or
    nothing (None: to be made)."""
    from .batch import clash, taken_by
    from .errors import error_record

    other = taken_by(old, src)
    if other is not None:
        return error_record(src, clash(src, item_id, other))
    return {**old, "status": "skipped"} if old is not None and old.get("config_key") == cfg.key() else None


def make_pairs(src: str, item_id: str, out: str, cfg: PairsConfig) -> dict[str, Any]:
    """Unit of work for one photo. Returns a record (status ok, skipped or error)."""
    from .errors import error_record

    try:
        from .batch import read_record

        marker = marker_path(out, item_id)
        earlier = read_record(marker)  # read once: the resume check and the clean-up both need it
        old = _judged(earlier, src, item_id, cfg)
        if old is not None:
            return old
        _remove_earlier_outputs(earlier, out)
        img = read_image(src)
        samples, skipped = samples_of(img, src, cfg)
        layout = pair_layout(cfg.layout)
        split = split_of(item_id, cfg)
        written = []
        for j, hq_in, facts in samples:
            base = item_id if not cfg.align else f"{item_id}_{j:02d}"
            for c in range(cfg.copies if (split == "val" or layout.train_lq) else 1):
                name = base + (f"_{c}" if cfg.copies > 1 else "") + ".png"
                hq_path, lq_path = layout.paths(out, split, name)
                if lq_path is None:  # the trainer degrades on the fly: keep the sharp face only
                    write_png(hq_path, hq_in)
                    written.append({"name": name, "split": split, "copy": c, "source": src, **facts, "hq": str(hq_path)})
                    continue
                hq, lq, steps = degrade(hq_in, rng_for(cfg, item_id, j, c), cfg.scale, cfg.params)
                write_pngs([(hq_path, hq), (lq_path, lq)])  # the pair whole or not at all
                written.append({"name": name, "split": split, "copy": c, "source": src, **facts, "hq": str(hq_path), "lq": str(lq_path), "degradation": cfg.degrade, "scale": cfg.scale, "steps": steps})
        record = {"source": src, "item": item_id, "status": "ok" if written else "empty", "reason": None if written else _why_empty(skipped, cfg), "config_key": cfg.key(), "split": split, "pairs": written, "skipped_faces": skipped}
        write_json(marker, record)  # last: marks the photo as done
        return record
    except Exception as exc:  # noqa: BLE001 - an item's failure is a value
        return error_record(src, exc)


def _remove_earlier_outputs(old: dict[str, Any] | None, out: str) -> None:
    """The pairs an earlier run with other settings wrote for this photo (its marker ``old``
    lists them) are removed before the photo is done again: a changed --seed or --val-fraction
    could otherwise leave the photo in train and in val, a lower --copies stray copies."""
    root = Path(out).resolve()
    for pair in (old or {}).get("pairs", []):
        for key in ("hq", "lq"):
            p = Path(pair.get(key) or "")
            if p.name and p.resolve().is_relative_to(root):  # never a file outside this output folder
                p.unlink(missing_ok=True)


def _why_empty(skipped: list[dict], cfg: PairsConfig) -> str:
    if skipped and skipped[0]["face"] is None:
        return skipped[0]["reason"]
    others = [f for f in skipped if "person" in f]
    if others:
        best = max(f["person"]["similarity"] for f in others)
        return f"the person is not in the photo ({len(others)} other face(s), best similarity {best:.3f} < {cfg.person.threshold:.3f})" + (f"; {len(skipped) - len(others)} face(s) too small" if len(others) < len(skipped) else "")
    small = [f for f in skipped if f.get("kind") == "too_small"]
    parts = []
    if small:
        worst = min(f["enlarged"] for f in small)
        parts.append(f"{len(small)} face(s) too small for {cfg.size} px (the largest would be enlarged {worst:.1f}x; at most {cfg.max_upscale}x allowed)")
    if len(small) < len(skipped):
        parts.append(f"{len(skipped) - len(small)} face(s) at the photo's edge (more than {cfg.max_face_outside:.0%} of the face outside it)")
    return "; ".join(parts) if len(small) < len(skipped) else parts[0].replace("face(s) too small", "face(s), all too small")


def finish(out: str | Path, cfg: PairsConfig, records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Consume the run's records as they come (a stream is fine): write ``degradations.jsonl``
    (one line per pair, sorted by split and name; memory does not grow with the number of
    pairs), the BasicSR options snippet for that layout, and return the summary."""
    from .fsutil import write_sorted_lines

    out = Path(out)
    counts = {"train": 0, "val": 0}
    tally = {"faces_skipped": 0, "faces_at_edge": 0, "other_people": 0, "errors": 0}

    def lines() -> Iterator[tuple[str, str]]:
        for r in records:
            if r["status"] == "error":
                tally["errors"] += 1
                continue
            for f in r.get("skipped_faces", []):
                if f["face"] is not None:
                    tally["other_people" if "person" in f else "faces_at_edge" if f.get("kind") == "at_edge" else "faces_skipped"] += 1
            for p in r.get("pairs", []):
                counts[p["split"]] += 1
                yield f"{p['split']}\x00{p['name']}", json.dumps({k: v for k, v in p.items() if k not in ("hq", "lq", "vector")}, sort_keys=True)

    write_sorted_lines(out / "degradations.jsonl", lines())
    if cfg.layout == "basicsr":
        write_basicsr_options(out, cfg)
    return {"pairs": counts, **tally}


def write_basicsr_options(out: Path, cfg: PairsConfig) -> Path:
    """Dataset options for BasicSR's PairedImageDataset, loadable as they are."""
    import yaml

    from .fsutil import atomic_path

    root = out.resolve()
    layout = pair_layout(cfg.layout)

    def ds(split: str) -> dict[str, Any]:
        hq, lq = (layout.train_hq, layout.train_lq) if split == "train" else (layout.val_hq, layout.val_lq)
        d: dict[str, Any] = {
            "name": f"prep_{split}",
            "type": "PairedImageDataset",
            "dataroot_gt": str(root / hq),
            "dataroot_lq": str(root / lq),
            "filename_tmpl": "{}",
            "io_backend": {"type": "disk"},
        }
        if split == "train":
            d.update({"gt_size": min(cfg.size, 256), "use_hflip": True, "use_rot": False, "scale": cfg.scale})
        return d

    doc = {"scale": cfg.scale, "datasets": {"train": ds("train"), "val": ds("val")}}
    dest = out / "basicsr_options.yml"
    with atomic_path(dest) as tmp:
        tmp.write_text("# Written by prep pairs: BasicSR PairedImageDataset options (merge into your training options).\n" + yaml.safe_dump(doc, sort_keys=False))
    return dest


STAGING = ".prep/staging"


def earlier_items(out: str | Path, names: list[str]) -> list[str]:
    """Photos an earlier ``--group-by person`` run into ``OUT`` sorted into its person folders
    (their markers in the staging folder) that are not among ``names``, this run's photos: kept
    beside this run's persons, one ``person_NN`` could hold two people, so the run refuses to
    start (see :func:`prep.cli.pairs`)."""
    out = Path(out)
    if not any(d.is_dir() for d in out.glob("person_*")):
        return []
    mine = set(names)
    return sorted(m.stem for m in (out / STAGING / MARKERS).glob("*.json") if m.stem not in mine)


def group_by_person(out: str | Path, cfg: PairsConfig, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``--group-by person``: cluster the faces written under ``OUT/.prep/staging`` (records in
    input order, faces in order: the same run gives the same persons) and move each pair into
    ``OUT/person_NN/<layout>``; each person folder gets its ``degradations.jsonl`` and a
    ``sheet.png`` of its faces. Returns one summary per person (person_00 has the most faces)."""
    import os

    from .identity import Clusterer, person_folder

    out = Path(out)
    staging = out / STAGING
    cl = Clusterer()
    label: dict[tuple[str, int], int] = {}
    entries = []
    for r in records:
        if r["status"] not in ("ok", "skipped"):
            continue
        for p in r["pairs"]:
            key = (r["item"], p.get("face", 0))
            if key not in label:
                label[key] = cl.add(np.array(p["vector"], np.float64))[0]
            entries.append((label[key], p))
    rank = cl.ranking()
    groups: dict[int, list[dict]] = {}
    for first, p in entries:
        k = rank[first]
        folder = out / person_folder(k)
        for side in ("hq", "lq"):
            if p.get(side):
                src = Path(p[side])
                dest = folder / src.relative_to(staging)
                if src.is_file():
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(src, dest)
                p[side] = str(dest)
        p["person_group"] = person_folder(k)
        groups.setdefault(k, []).append(p)
    summaries = []
    for k in sorted(groups):
        folder = out / person_folder(k)
        finish(folder, cfg, [{"status": "ok", "pairs": groups[k]}])
        write_person_sheet(folder / "sheet.png", groups[k], person_folder(k))
        summaries.append({"person": person_folder(k), "pairs": len(groups[k]), "faces": len({(p["source"], p.get("face", 0)) for p in groups[k]})})
    return summaries


def write_person_sheet(dest: Path, pairs: list[dict[str, Any]], title: str, limit: int = 48) -> None:
    """One contact sheet of a person's sharp faces (the first ``limit``, one per face)."""
    from .images import read_image
    from .sheet import GREEN, Tile, write_sheet

    seen, tiles = set(), []
    for p in pairs:
        key = (p["source"], p.get("face", 0))
        if key in seen or len(tiles) >= limit:
            continue
        seen.add(key)
        tiles.append(Tile(read_image(p["hq"]), [Path(p["source"]).name, f"face {p.get('face', 0)}"], GREEN))
    write_sheet(dest, tiles, f"{title}: {len(seen)} faces" + (f" (first {limit} shown)" if len(seen) > limit else ""))
