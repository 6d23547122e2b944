"""The review page: ``OUT/report.html``, one file that a person reads instead of JSON.

For each source: a strip of shot thumbnails with their times, each kept segment's first,
middle and last output frames, each rejected candidate's thumbnail with its reason, and the
blur and head-pose timelines as inline SVG. Images are JPEG files beside the page
(``OUT/report_files/<source>/``), written by the unit of work that made the segments; the page
itself is written by the run from the sources' records, and needs no network.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..decode import iter_frames
from ..fsutil import atomic_path
from ..probe import probe_video

THUMB_SIDE = 200  # px, longer side of every image on the page
MAX_REJECTED = 40  # rejected candidates shown with a picture per source (all are listed)
SERIES_POINTS = 600  # timeline samples kept per series


THUMBS_PER_SECOND = 2  # pictures of the footage kept by the analysis pass


def files_dir(out_root: str | Path, item_id: str) -> Path:
    return Path(out_root) / "report_files" / item_id


def thumbs_dir(out_root: str | Path, item_id: str) -> Path:
    """Where the analysis pass leaves its pictures of the footage (removed once the page's are chosen)."""
    return files_dir(out_root, item_id) / ".analysis"


def keep_thumb(folder: Path, index: int, frame: np.ndarray, fps: float) -> None:
    """Called by the analysis pass on every frame: keeps one small picture every half second,
    on disk, so memory does not grow with the footage's length."""
    every = max(1, int(round(fps / THUMBS_PER_SECOND)))
    if index % every:
        return
    folder.mkdir(parents=True, exist_ok=True)
    h, w = frame.shape[:2]
    f = THUMB_SIDE / max(h, w)
    small = cv2.resize(frame, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA) if f < 1 else frame
    cv2.imwrite(str(folder / f"{index:08d}.jpg"), small, [cv2.IMWRITE_JPEG_QUALITY, 85])


def nearest_thumb(folder: Path, index: int, fps: float, lo: int = 0, hi: int | None = None) -> np.ndarray | None:
    """The analysis pass's picture nearest to frame ``index`` within ``[lo, hi)``."""
    every = max(1, int(round(fps / THUMBS_PER_SECOND)))
    base = index - index % every
    for cand in sorted({base, base + every, base - every}, key=lambda c: abs(c - index)):
        if cand >= lo and (hi is None or cand < hi) and (folder / f"{cand:08d}.jpg").is_file():
            return cv2.imread(str(folder / f"{cand:08d}.jpg"))
    return None


def _save(img: np.ndarray, path: Path) -> None:
    with atomic_path(path) as tmp:
        cv2.imwrite(str(tmp), img, [cv2.IMWRITE_JPEG_QUALITY, 85])


def _box(img: np.ndarray, face: Any, scale: float, color: tuple[int, int, int]) -> np.ndarray:
    x, y, w, h = (v * scale for v in face.box)
    out = img.copy()
    cv2.rectangle(out, (int(x), int(y)), (int(x + w), int(y + h)), color, 2)
    return out


def collect(info: Any, an: Any, cfg: Any, record: dict[str, Any], per_track: dict, out_root: str | Path, item_id: str) -> dict[str, Any]:
    """Write the source's thumbnails; return what the page shows (paths relative to OUT)."""
    import shutil

    root = Path(out_root)
    d = files_dir(out_root, item_id)
    pictures = thumbs_dir(out_root, item_id)
    shots = []
    for k, (a, b) in enumerate(an.shots.ranges):
        img = nearest_thumb(pictures, (a + b) // 2, cfg.fps, a, b)
        if img is not None:
            p = d / f"shot{k:02d}.jpg"
            _save(img, p)
            shots.append({"shot": k, "start": round(a / cfg.fps, 2), "end": round(b / cfg.fps, 2), "image": str(p.relative_to(root))})
    segs = []
    shown_rejected = 0
    for e in record["segments"]:
        item = dict(e)
        if e["status"] == "kept":
            out_info = probe_video(e["output"])
            n = out_info.frame_count
            want = {0: "first", n // 2: "middle", max(0, n - 1): "last"}
            imgs = []
            # one small decode of the (short, square) clip gives all three pictures
            for i, img in enumerate(iter_frames(out_info, None, THUMB_SIDE)):
                if i in want:
                    p = d / f"{e['segment']}_{want[i]}.jpg"
                    _save(img, p)
                    imgs.append(str(p.relative_to(root)))
            item["images"] = imgs
        elif shown_rejected < MAX_REJECTED:
            a, b = e["frames"]
            mid = (a + b) // 2
            img = nearest_thumb(pictures, mid, cfg.fps, a, b) if b - a > 1 else None
            img = img if img is not None else nearest_thumb(pictures, mid, cfg.fps)
            if img is not None:
                tr, _ = per_track[(e["shot"], e["track"])]
                near = min(tr.frames, key=lambda i: abs(i - mid))
                img = _box(img, tr.faces[tr.frames.index(near)], img.shape[1] / info.display_width, (40, 40, 220))
                p = d / f"{e['segment']}_rejected.jpg"
                _save(img, p)
                item["images"] = [str(p.relative_to(root))]
                shown_rejected += 1
        segs.append(item)
    shutil.rmtree(pictures, ignore_errors=True)
    blur = an.blur
    step = max(1, len(blur) // SERIES_POINTS)
    blur_series = [[round(i / cfg.fps, 2), None if not np.isfinite(v) else round(float(v), 3)] for i, v in list(enumerate(blur))[::step]]
    pose_series = {}
    for (shot, tno), (tr, poses) in per_track.items():
        pts = [[round(i / cfg.fps, 2), round(p[0], 1), round(p[1], 1)] for i, p in sorted(poses.items()) if p is not None]
        if pts:
            pose_series[f"s{shot:02d}_t{tno:02d}"] = pts[:: max(1, len(pts) // SERIES_POINTS)]
    return {"duration": round(an.n_frames / cfg.fps, 3), "shots": shots, "segments": segs, "blur": blur_series, "pose": pose_series, "limits": {"yaw": cfg.max_yaw, "pitch": cfg.max_pitch}}


# ---- the page ------------------------------------------------------------------------------

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px}h2{font-size:16px;margin-top:32px;border-top:1px solid #ccc;padding-top:12px}
.strip{display:flex;flex-wrap:wrap;gap:8px}.card{background:#fff;border:1px solid #ddd;padding:6px;border-radius:4px}
.card img{display:block;max-height:140px}.kept{border-color:#2a2}.rejected{border-color:#c33}
.why{color:#c33;max-width:260px}.meta{color:#666;font-size:12px}.tri{display:flex;gap:4px}
svg{background:#fff;border:1px solid #ddd}
"""


def _timeline(series: list, duration: float, shots: list, segs: list, label: str, lo: float, hi: float, limits: tuple[float, ...] = (), cols: tuple[int, ...] = (1,)) -> str:
    w, h, m = 900, 120, 30
    x = lambda t: m + (w - 2 * m) * (t / duration if duration else 0)  # noqa: E731
    y = lambda v: h - 10 - (h - 20) * (min(max(v, lo), hi) - lo) / (hi - lo)  # noqa: E731
    parts = [f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{html.escape(label)}">']
    for e in segs:
        if e["status"] == "kept":
            parts.append(f'<rect x="{x(e["source_start"]):.1f}" y="0" width="{max(1, x(e["source_end"]) - x(e["source_start"])):.1f}" height="{h}" fill="#dfd"/>')
    for s in shots[1:]:
        parts.append(f'<line x1="{x(s["start"]):.1f}" x2="{x(s["start"]):.1f}" y1="0" y2="{h}" stroke="#999" stroke-dasharray="3,3"/>')
    for v in limits:
        parts.append(f'<line x1="{m}" x2="{w - m}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#c33" stroke-width="0.5"/>')
    colors = ["#36c", "#c63", "#393"]
    for ci, col in enumerate(cols):
        pts = " ".join(f"{x(p[0]):.1f},{y(p[col]):.1f}" for p in series if p[col] is not None)
        if pts:
            parts.append(f'<polyline fill="none" stroke="{colors[ci % 3]}" stroke-width="1.2" points="{pts}"/>')
    parts.append(f'<text x="4" y="12" font-size="11">{html.escape(label)}</text></svg>')
    return "".join(parts)


def page(records: list[dict[str, Any]], title: str = "prep crop --split") -> str:
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for rec in records:
        rv = rec.get("review")
        if rec.get("status") == "error" or not rv:
            out.append(f"<h2>{html.escape(str(rec.get('source')))}</h2><p class='why'>{html.escape(str(rec.get('message', 'no review')))}</p>")
            continue
        kept = sum(e["status"] == "kept" for e in rv["segments"])
        out.append(f"<h2>{html.escape(rec['source'])}</h2><p class='meta'>{len(rv['shots'])} shot(s), cuts at {', '.join(f'{c:.2f} s' for c in rec.get('transitions_at', [])) or 'none'}; {kept} segment(s) kept, {len(rv['segments']) - kept} rejected"
                   + (f"; <span class='why'>{html.escape(rec['reason'])}</span>" if rec.get("reason") else "") + "</p>")
        out.append("<h3>Shots</h3><div class='strip'>")
        for s in rv["shots"]:
            out.append(f"<div class='card'><img src='{html.escape(s['image'])}' alt='shot {s['shot']}'><div class='meta'>shot {s['shot']}: {s['start']:.2f}-{s['end']:.2f} s</div></div>")
        out.append("</div><h3>Kept segments</h3><div class='strip'>")
        for e in rv["segments"]:
            if e["status"] == "kept":
                imgs = "".join(f"<img src='{html.escape(p)}' alt='{html.escape(e['segment'])}'>" for p in e.get("images", []))
                who = ""
                if e.get("person"):
                    who = f"; person similarity {e['person']['similarity']:.3f}" + (" (uncertain)" if e["person"]["uncertain"] else "")
                if e.get("person_group"):
                    who += f"; {html.escape(e['person_group'])}"
                out.append(f"<div class='card kept' id='{html.escape(e['segment'])}'><div class='tri'>{imgs}</div><div class='meta'>{html.escape(e['segment'])}: {e['source_start']:.2f}-{e['source_end']:.2f} s &rarr; {html.escape(Path(e.get('output', '')).name)}{who}</div></div>")
        out.append("</div><h3>Rejected candidates</h3><div class='strip'>")
        for e in rv["segments"]:
            if e["status"] != "kept":
                img = "".join(f"<img src='{html.escape(p)}' alt='{html.escape(e['segment'])}'>" for p in e.get("images", []))
                out.append(f"<div class='card rejected' id='{html.escape(e['segment'])}'>{img}<div class='meta'>{html.escape(e['segment'])}: {e['source_start']:.2f}-{e['source_end']:.2f} s</div><div class='why'>{html.escape(e['reason'])}: {html.escape(e.get('why') or '')}</div></div>")
        out.append("</div><h3>Timelines</h3>")
        out.append(_timeline(rv["blur"], rv["duration"], rv["shots"], rv["segments"], "blur score of the main face (higher is sharper); kept segments shaded, cuts dashed", -0.2, 1.0))
        for name, pts in rv["pose"].items():
            lim = rv["limits"]
            out.append(_timeline(pts, rv["duration"], rv["shots"], rv["segments"], f"{name}: yaw (blue) and pitch (orange), degrees; limits {lim['yaw']:g}/{lim['pitch']:g}", -90, 90, (lim["yaw"], -lim["yaw"]), (1, 2)))
    out.append("</body></html>")
    return "".join(out)


def write_page(out_dir: str | Path, records: list[dict[str, Any]]) -> Path | None:
    """Write ``OUT/report.html`` for the split records of a run (None when there are none)."""
    shown = [r for r in records if r.get("split") or (r.get("status") == "error")]
    if not any(r.get("split") for r in shown):
        return None
    for r in shown:
        r["transitions_at"] = [round((t["start"] + t["end"]) / 2, 2) for t in r.get("transitions", [])]
    path = Path(out_dir) / "report.html"
    with atomic_path(path) as tmp:
        tmp.write_text(page(shown))
    return path
