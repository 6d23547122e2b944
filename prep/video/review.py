"""The review page: ``OUT/report.html``, one file that a person reads instead of JSON.

For each source: a strip of shot thumbnails with their times, each kept segment's first,
middle and last output frames (with its speech facts when measured), each rejected
candidate's thumbnail with its reason, and the blur, head-pose and speaking timelines as
inline SVG. Images are JPEG files beside the page
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


def speech_series(ts: Any, points: int = SERIES_POINTS) -> dict[str, Any]:
    """What a track's speaking timeline shows, from its speech facts ``ts``
    (:class:`prep.speech.track.TrackSpeech`, or the ``dict`` report of why there are none).

    Returns ``{"start", "end", "series", "note"}``: times in seconds of the output timeline;
    ``series`` holds at most ``points`` rows ``[t, voiced, speaking, score]``, one per run of
    speech frames (25 fps) from ``t`` to the next row's ``t`` (the last to ``end``): the share
    of its frames with a voice in the audio and with this face speaking (both in [0, 1]), and
    the mean of Light-ASD's score smoothed over 5 frames (> 0: speaking). Empty when the facts
    could not be had; ``note`` says why.
    """
    from ..speech.track import RATE, _smooth, speaking_frames

    if isinstance(ts, dict):
        return {"start": None, "end": None, "series": [], "note": ts.get("note") or "not measured"}
    start, end = round(ts.t0, 3), round(ts.t0 + ts.n / RATE, 3)
    if not ts.has_audio or ts.visual is None:
        return {"start": start, "end": end, "series": [], "note": ts.note or "no audio"}
    n = min(ts.n, len(ts.voiced), len(ts.scores))
    voiced = ts.voiced[:n].astype(np.float64)
    talk = speaking_frames(ts)[:n].astype(np.float64)
    score = _smooth(ts.scores[:n].astype(np.float64))
    step = max(1, -(-n // max(1, points)))
    rows = []
    for a in range(0, n, step):
        b = min(n, a + step)
        rows.append([round(ts.t0 + a / RATE, 3), round(float(voiced[a:b].mean()), 2), round(float(talk[a:b].mean()), 2), round(float(score[a:b].mean()), 2)])
    return {"start": start, "end": end, "series": rows, "note": ts.note}


def collect(info: Any, an: Any, cfg: Any, record: dict[str, Any], facts: dict, out_root: str | Path, item_id: str) -> dict[str, Any]:
    """Write the source's thumbnails; return what the page shows (paths relative to OUT).

    ``facts``: every track's :class:`~prep.video.tracks.TrackFacts`, by ``(shot, track)``
    (tracks that were not heard have no speaking timeline)."""
    import shutil

    root = Path(out_root)
    d = files_dir(out_root, item_id)
    pictures = thumbs_dir(out_root, item_id)
    shots = []
    for k, (a, b) in enumerate(an.shots.ranges):
        img = nearest_thumb(pictures, (a + b) // 2, cfg.fps, a, b)
        shot: dict[str, Any] = {"shot": k, "start": round(a / cfg.fps, 2), "end": round(b / cfg.fps, 2), "image": None}
        if img is not None:  # a shot shorter than the thumbnails' spacing has none: it is still a shot, and its cut is drawn
            p = d / f"shot{k:02d}.jpg"
            _save(img, p)
            shot["image"] = str(p.relative_to(root))
        shots.append(shot)
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
                tr = facts[(e["shot"], e["track"])].track
                near = min(tr.frames, key=lambda i: abs(i - mid))
                img = _box(img, tr.faces[tr.frames.index(near)], img.shape[1] / info.display_width, (40, 40, 220))
                p = d / f"{e['segment']}_rejected.jpg"
                _save(img, p)
                item["images"] = [str(p.relative_to(root))]
                shown_rejected += 1
        segs.append(item)
    shutil.rmtree(pictures, ignore_errors=True)
    blur = an.blur
    step = max(1, -(-len(blur) // SERIES_POINTS))
    blur_series = [[round(i / cfg.fps, 2), None if not np.isfinite(v) else round(float(v), 3)] for i, v in list(enumerate(blur))[::step]]
    pose_series = {}
    for (shot, tno), f in facts.items():
        pts = [[round(i / cfg.fps, 2), round(p[0], 1), round(p[1], 1)] for i, p in sorted(f.poses.items()) if p is not None]
        if pts:
            pose_series[f"s{shot:02d}_t{tno:02d}"] = pts[:: max(1, -(-len(pts) // SERIES_POINTS))]
    speech = {f"s{shot:02d}_t{tno:02d}": speech_series(f.speech) for (shot, tno), f in sorted(facts.items()) if f.speech is not None}
    return {"duration": round(an.n_frames / cfg.fps, 3), "shots": shots, "segments": segs, "blur": blur_series, "pose": pose_series, "speech": speech, "limits": {"yaw": cfg.max_yaw, "pitch": cfg.max_pitch}}


# ---- the page ------------------------------------------------------------------------------

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px}h2{font-size:16px;margin-top:32px;border-top:1px solid #ccc;padding-top:12px}
.strip{display:flex;flex-wrap:wrap;gap:8px}.card{background:#fff;border:1px solid #ddd;padding:6px;border-radius:4px}
.card img{display:block;max-height:140px}.kept{border-color:#2a2}.rejected{border-color:#c33}
.why{color:#c33;max-width:260px}.speech{max-width:320px}.meta{color:#666;font-size:12px}.tri{display:flex;gap:4px}
svg{background:#fff;border:1px solid #ddd}
"""


W_SVG, M_SVG = 900, 30  # px: timeline width and side margin


def _x_of(duration: float):
    return lambda t: M_SVG + (W_SVG - 2 * M_SVG) * (min(max(t, 0.0), duration) / duration if duration else 0)


def _backdrop(x: Any, h: int, shots: list, segs: list, label: str) -> list[str]:
    """The svg's opening, kept segments shaded and cuts dashed."""
    parts = [f'<svg width="{W_SVG}" height="{h}" viewBox="0 0 {W_SVG} {h}" role="img" aria-label="{html.escape(label)}">']
    for e in segs:
        if e["status"] == "kept":
            parts.append(f'<rect x="{x(e["source_start"]):.1f}" y="0" width="{max(1, x(e["source_end"]) - x(e["source_start"])):.1f}" height="{h}" fill="#dfd"/>')
    for s in shots[1:]:
        parts.append(f'<line x1="{x(s["start"]):.1f}" x2="{x(s["start"]):.1f}" y1="0" y2="{h}" stroke="#999" stroke-dasharray="3,3"/>')
    return parts


def _timeline(series: list, duration: float, shots: list, segs: list, label: str, lo: float, hi: float, limits: tuple[float, ...] = (), cols: tuple[int, ...] = (1,)) -> str:
    w, h, m = W_SVG, 120, M_SVG
    x = _x_of(duration)
    y = lambda v: h - 10 - (h - 20) * (min(max(v, lo), hi) - lo) / (hi - lo)  # noqa: E731
    parts = _backdrop(x, h, shots, segs, label)
    for v in limits:
        parts.append(f'<line x1="{m}" x2="{w - m}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#c33" stroke-width="0.5"/>')
    colors = ["#36c", "#c63", "#393"]
    for ci, col in enumerate(cols):
        pts = " ".join(f"{x(p[0]):.1f},{y(p[col]):.1f}" for p in series if p[col] is not None)
        if pts:
            parts.append(f'<polyline fill="none" stroke="{colors[ci % 3]}" stroke-width="1.2" points="{pts}"/>')
    parts.append(f'<text x="4" y="12" font-size="11">{html.escape(label)}</text></svg>')
    return "".join(parts)


SCORE_RANGE = 4.0  # the speaking score's line is drawn over -4..4 (the model's logits; 0 decides)
SPEECH_REASONS = ("no_speech", "not_speaking", "out_of_sync")


def _steps(rows: list, end: float, col: int) -> list[tuple[float, float, float]]:
    """Runs ``(t_from, t_to, value)`` of column ``col`` of a speech series, equal neighbours merged."""
    runs: list[list[float]] = []
    for i, r in enumerate(rows):
        t_to = rows[i + 1][0] if i + 1 < len(rows) else end
        if runs and runs[-1][2] == r[col]:
            runs[-1][1] = t_to
        else:
            runs.append([r[0], t_to, r[col]])
    return [(a, b, v) for a, b, v in runs]


def _band(x: Any, runs: list[tuple[float, float, float]], top: float, height: float, color: str) -> str:
    """A share in [0, 1] as a filled step area ``height`` px tall under ``top``."""
    if not runs:
        return ""
    base = top + height
    pts = [f"{x(runs[0][0]):.1f},{base:.1f}"]
    for a, b, v in runs:
        yv = base - height * min(max(v, 0.0), 1.0)
        pts.append(f"{x(a):.1f},{yv:.1f} {x(b):.1f},{yv:.1f}")
    pts.append(f"{x(runs[-1][1]):.1f},{base:.1f}")
    return f'<polygon fill="{color}" stroke="none" points="{" ".join(pts)}"/>'


def speech_timeline(track: dict[str, Any], duration: float, shots: list, segs: list, name: str) -> str:
    """A track's speaking timeline (svg): the share of frames with a voice in the audio (blue
    band), with this face speaking by Light-ASD's score (orange band; whether the mouth follows
    *this* voice is the segment's ``sync``), the smoothed score (line, 0 dashed),
    the track's kept segments shaded green, its rejected ones red with their reasons (hover:
    the why; click: the candidate's card)."""
    h = 150
    x = _x_of(duration)
    mine = [e for e in segs if f"s{e['shot']:02d}_t{e['track']:02d}" == name]
    label = f"{name}: voice in the audio (blue), the face speaking by the model (orange), its score (line, > 0 speaking); kept shaded, rejected red"
    parts = _backdrop(x, h, shots, mine, label)
    labels = []
    rows_end = [0.0, 0.0]  # right end of the last label in each of the two label rows
    for e in mine:
        if e["status"] == "kept":
            continue
        x0, x1 = x(e["source_start"]), x(e["source_end"])
        why = html.escape(f"{e['segment']}: {e['reason']}: {e.get('why') or ''}")
        ref = html.escape(e["segment"])
        fill = "#f9d4d4" if e["reason"] in SPEECH_REASONS else "#fbe9e9"
        parts.append(f'<a href="#{ref}"><title>{why}</title><rect x="{x0:.1f}" y="16" width="{max(1.0, x1 - x0):.1f}" height="{h - 16}" fill="{fill}"/></a>')
        parts.append(f'<line x1="{x0 + 1:.1f}" x2="{max(x0 + 2, x1 - 1):.1f}" y1="{h - 25}" y2="{h - 25}" stroke="#c33" stroke-width="2"/>')
        text = e["reason"].replace("_", " ")
        row = next((k for k in (0, 1) if rows_end[k] <= x0), None)
        if row is not None:  # labels drawn last, over every band
            rows_end[row] = x0 + 6.2 * len(text) + 6
            labels.append(f'<a href="#{ref}"><title>{why}</title><text x="{x0 + 2:.1f}" y="{h - 14 + 11 * row}" font-size="10" fill="#b22">{html.escape(text)}</text></a>')
    series, end = track.get("series") or [], track.get("end") or duration
    top_v, top_s, top_l, bot_l = 20.0, 42.0, 66.0, h - 30.0
    for yy, word in ((top_v + 12, "voice"), (top_s + 12, "speaks"), ((top_l + bot_l) / 2 + 3, "score")):
        parts.append(f'<text x="2" y="{yy:.0f}" font-size="9" fill="#666">{word}</text>')
    if series:
        parts.append(_band(x, _steps(series, end, 1), top_v, 18, "#6aa9e0"))
        parts.append(_band(x, _steps(series, end, 2), top_s, 18, "#f0962e"))
        ys = lambda v: (top_l + bot_l) / 2 - (bot_l - top_l) / 2 * min(max(v, -SCORE_RANGE), SCORE_RANGE) / SCORE_RANGE  # noqa: E731
        parts.append(f'<line x1="{x(series[0][0]):.1f}" x2="{x(end):.1f}" y1="{ys(0):.1f}" y2="{ys(0):.1f}" stroke="#888" stroke-dasharray="2,2"/>')
        nxt = [r[0] for r in series[1:]] + [end]
        pts = " ".join(f"{x((r[0] + t) / 2):.1f},{ys(r[3]):.1f}" for r, t in zip(series, nxt))
        parts.append(f'<polyline fill="none" stroke="#333" stroke-width="1" points="{pts}"/>')
        if track.get("start") is not None:
            for t in (track["start"], end):  # the measured stretch
                parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="16" y2="{bot_l:.1f}" stroke="#36c" stroke-width="0.5"/>')
    if track.get("note"):
        parts.append(f'<text x="{M_SVG + 4}" y="{top_l + 14:.0f}" font-size="11" fill="#b22">{html.escape(("speech not measured: " if not series else "") + str(track["note"]))}</text>')
    parts.extend(labels)
    parts.append(f'<text x="4" y="12" font-size="11">{html.escape(label)}</text></svg>')
    return "".join(parts)


def speech_words(sp: dict[str, Any]) -> str:
    """One line of a segment's ``speech`` report for a person: shares, sync, offset, correction."""
    if not sp.get("measured"):
        return f"speech not measured: {sp.get('note') or 'unknown'}"
    fps = sp.get("fps") or 25.0
    words = [f"speaking {sp.get('speaking', 0):.0%}", f"voice {sp.get('voiced', 0):.0%}"]
    if sp.get("sync") is not None:
        words.append(f"sync {sp['sync']:.1f}")
    off = sp.get("offset_frames")
    if off is None:
        words.append("offset not measured")
    elif off == 0:
        words.append("offset 0 (lips and voice meet)")
    else:
        exact = sp.get("offset_exact", off)
        words.append(f"audio {abs(exact):.1f} frames {'late' if exact > 0 else 'early'} ({abs(exact) * 1000 / fps:.0f} ms)")
    if off is not None and sp.get("confidence") is not None:
        words.append(f"confidence {sp['confidence']:.2f}")
    ms = sp.get("corrected_ms") or 0
    if ms:
        words.append(f"corrected: audio moved {abs(ms):.0f} ms {'earlier' if ms > 0 else 'later'}")
    if sp.get("note"):
        words.append(str(sp["note"]))
    return "; ".join(words)


def _url(path: str) -> str:
    """A relative file path as an attribute's URL: quoted (a '#' or '?' in a source's name
    would cut the path), then escaped."""
    from urllib.parse import quote

    return html.escape(quote(path))


def page(records: list[dict[str, Any]], title: str = "prep crop --split") -> str:
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for rec in records:
        rv = rec.get("review")
        if rec.get("status") == "error" or not rv:
            out.append(f"<h2>{html.escape(str(rec.get('source')))}</h2><p class='why'>{html.escape(str(rec.get('message', 'no review')))}</p>")
            continue
        kept = sum(e["status"] == "kept" for e in rv["segments"])
        reasons: dict[str, int] = {}
        for e in rv["segments"]:
            if e["status"] != "kept":
                reasons[e["reason"]] = reasons.get(e["reason"], 0) + 1
        counted = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
        why_rejected = f" ({counted})" if reasons else ""
        out.append(f"<h2>{html.escape(rec['source'])}</h2><p class='meta'>{len(rv['shots'])} shot(s), cuts at {', '.join(f'{c:.2f} s' for c in rec.get('transitions_at', [])) or 'none'}; {kept} segment(s) kept, {len(rv['segments']) - kept} rejected{html.escape(why_rejected)}"
                   + (f"; <span class='why'>{html.escape(rec['reason'])}</span>" if rec.get("reason") else "") + "</p>")
        out.append("<h3>Shots</h3><div class='strip'>")
        for s in rv["shots"]:
            if s["image"] is not None:
                out.append(f"<div class='card'><img src='{_url(s['image'])}' alt='shot {s['shot']}'><div class='meta'>shot {s['shot']}: {s['start']:.2f}-{s['end']:.2f} s</div></div>")
        out.append("</div><h3>Kept segments</h3><div class='strip'>")
        for e in rv["segments"]:
            if e["status"] == "kept":
                imgs = "".join(f"<img src='{_url(p)}' alt='{html.escape(e['segment'])}'>" for p in e.get("images", []))
                who = ""
                if e.get("person"):
                    who = f"; person similarity {e['person']['similarity']:.3f}" + (" (uncertain)" if e["person"]["uncertain"] else "")
                if e.get("person_group"):
                    who += f"; {html.escape(e['person_group'])}"
                speech = f"<div class='meta speech'>{html.escape(speech_words(e['speech']))}</div>" if e.get("speech") else ""
                out.append(f"<div class='card kept' id='{html.escape(e['segment'])}'><div class='tri'>{imgs}</div><div class='meta'>{html.escape(e['segment'])}: {e['source_start']:.2f}-{e['source_end']:.2f} s &rarr; {html.escape(Path(e.get('output', '')).name)}{who}</div>{speech}</div>")
        out.append("</div><h3>Rejected candidates</h3><div class='strip'>")
        for e in rv["segments"]:
            if e["status"] != "kept":
                img = "".join(f"<img src='{_url(p)}' alt='{html.escape(e['segment'])}'>" for p in e.get("images", []))
                speech = f"<div class='meta speech'>{html.escape(speech_words(e['speech']))}</div>" if e.get("speech") else ""
                out.append(f"<div class='card rejected' id='{html.escape(e['segment'])}'>{img}<div class='meta'>{html.escape(e['segment'])}: {e['source_start']:.2f}-{e['source_end']:.2f} s</div><div class='why'><b>{html.escape(e['reason'])}</b>: {html.escape(e.get('why') or '')}</div>{speech}</div>")
        out.append("</div><h3>Timelines</h3>")
        out.append(_timeline(rv["blur"], rv["duration"], rv["shots"], rv["segments"], "blur score of the main face (higher is sharper); kept segments shaded, cuts dashed", -0.2, 1.0))
        speech = rv.get("speech", {})
        for name in sorted(set(rv["pose"]) | set(speech)):
            lim = rv["limits"]
            if name in rv["pose"]:
                out.append(_timeline(rv["pose"][name], rv["duration"], rv["shots"], rv["segments"], f"{name}: yaw (blue) and pitch (orange), degrees; limits {lim['yaw']:g}/{lim['pitch']:g}", -90, 90, (lim["yaw"], -lim["yaw"]), (1, 2)))
            if name in speech:
                out.append(speech_timeline(speech[name], rv["duration"], rv["shots"], rv["segments"], name))
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
