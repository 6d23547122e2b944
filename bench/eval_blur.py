"""`make eval-blur`: how well the blur score separates blurred from sharp faces, on real data.

1. Face crops from ../shared/data/images (aligned to the FFHQ template at 512 px), each blurred
   by linear motion kernels of random angle and length 0-25 px, plus the unblurred originals
   (and four re-framings of each, so the 2% false-positive point rests on more than a handful
   of faces): ROC AUC for "kernel of 9 px or more" vs "no blur", the true-positive rate at 2%
   false positives, and the AUC for 5-6 px kernels. The kernels are given at 512 px face size,
   so "eligible" faces are those the photo holds at about that size: enlarged at most 1.6x to
   reach the template (the faces here fall either below 1.55x or above 1.75x; `prep crop`
   warns about such upscaling) and not marked as degraded in MANIFEST.csv. All faces are
   reported too, and each face judged against its own blurred copies, with a sheet of the
   unblurred originals and their scores.
2. blur/pairs and blur/video_frames: the blurred member scores below its sharp twin; the blink
   frame is kept.
3. Every clip in videos/: the share of frames rejected against the clip itself, the frames,
   and a contact sheet of them; the real blur around frame 434 of the LatentSync clip caught.
The same figures for plain Laplacian variance of the whole image, as the baseline.
Results: stdout and bench/blur_results.md; sheets in out/eval-blur/.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from blur_data import ROOT, SHARED, canonical_grey, detector, motion, pair_groups, photo_faces, reframe  # noqa: E402

from prep.blur import blur_score, score_grey  # noqa: E402
from prep.blurscan import face_crop  # noqa: E402
from prep.blurdecide import BlurConfig, blurred_frames, segments  # noqa: E402
from prep.decode import iter_frames  # noqa: E402
from prep.detect import create_detector, main_face  # noqa: E402
from prep.images import read_image  # noqa: E402
from prep.probe import probe_video  # noqa: E402
from prep.sheet import GREEN, RED, Tile, write_sheet  # noqa: E402
from prep.videoscan import FrameAnalyzer  # noqa: E402

OUT = ROOT / "out" / "eval-blur"


def lapvar(img: np.ndarray) -> float:
    g = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(g, cv2.CV_64F).var())


def ours_on_crop(img512: np.ndarray) -> float:
    return score_grey(canonical_grey(img512)).score  # the 512 crop is already template-aligned


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a blurred sample scores below an unblurred one); ties count half. Lower = blurrier."""
    pos, neg = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(np.mean(pos < neg) + 0.5 * np.mean(pos == neg))


def tpr_at(pos: np.ndarray, neg: np.ndarray, fpr: float = 0.02) -> float:
    return float(np.mean(np.asarray(pos) < np.quantile(neg, fpr)))


MAX_UPSCALE = 1.6  # "eligible": the photo was enlarged at most this much to reach the 512 template


def synthetic(rows: list[str]) -> None:
    degraded = {r["local_path"].split("/")[-1] for r in csv.DictReader(open(SHARED / "MANIFEST.csv")) if "degradation" in r.get("note", "").lower()}
    faces = photo_faces()
    rng = np.random.default_rng(2024)
    samples = []  # (face index, length, ours, baseline)
    for gi, (name, up, img) in enumerate(faces):
        variants = [(0.0, img)] + [(0.0, reframe(img, rng)) for _ in range(4)]
        variants += [(L, motion(img, L, rng.uniform(0, np.pi))) for L in rng.uniform(0, 25, 40)]
        variants += [(L, motion(img, L, rng.uniform(0, np.pi))) for L in (5, 5, 5.5, 6, 6)]
        samples += [(gi, L, ours_on_crop(v), lapvar(v)) for L, v in variants]
    G = np.array([s[0] for s in samples])
    L = np.array([s[1] for s in samples])
    ours, lap = np.array([s[2] for s in samples]), np.array([s[3] for s in samples])
    fit = [up <= MAX_UPSCALE and name.split("#")[0] not in degraded for name, up, _ in faces]
    eligible = np.array([fit[g] for g in G])
    rows += ["## 1. Synthetic motion blur on real face crops", ""]
    rows += [f"{len(faces)} faces ({sum(fit)} eligible: enlarged at most {MAX_UPSCALE}x to reach the 512 template and not",
             f"marked as degraded in MANIFEST.csv); {len(samples) // len(faces)} samples each (the original, 4 re-framings, the rest blurred), {len(samples)} in all.", ""]
    rows += ["| set | measure | AUC >=9 px | TPR at 2% FPR | AUC 5-6 px |", "|---|---|---|---|---|"]
    for label, keep in (("eligible", eligible), ("all faces", np.ones(len(G), bool))):
        for mname, s in (("prep blur score", ours), ("Laplacian variance", lap)):
            rows.append(f"| {label} | {mname} | {auc(s[keep & (L >= 9)], s[keep & (L == 0)]):.4f} | "
                        f"{tpr_at(s[keep & (L >= 9)], s[keep & (L == 0)]):.3f} | {auc(s[keep & (L >= 5) & (L <= 6)], s[keep & (L == 0)]):.4f} |")
    rows += ["", "Each face on its own (its 5 unblurred framings against its own blurred copies), and where its",
             "unblurred score sits. A face that is soft before any blur is added (an old print, a degraded",
             "restoration input) scores low already, so pooled over faces it is confused with blurred sharp",
             "faces, while judged against itself it mostly is not. Sheet: `out/eval-blur/faces.png`.", "",
             "| face | enlarged | eligible | unblurred score | AUC >=9 px | AUC 5-6 px |", "|---|---|---|---|---|---|"]
    tiles = []
    for gi, (name, up, img) in enumerate(faces):
        k = G == gi
        neg = ours[k & (L == 0)]
        rows.append(f"| {name} | {up:.2f}x | {'yes' if fit[gi] else 'no'} | {np.median(neg):+.3f} | "
                    f"{auc(ours[k & (L >= 9)], neg):.3f} | {auc(ours[k & (L >= 5) & (L <= 6)], neg):.3f} |")
        tiles.append(Tile(img, [name.split("__")[-1][:22], f"{up:.2f}x {np.median(neg):+.3f}"], GREEN if fit[gi] else RED))
    OUT.mkdir(parents=True, exist_ok=True)
    write_sheet(OUT / "faces.png", tiles, "eval-blur: the unblurred faces (green: eligible, red: not), enlargement and score")
    rows.append("")


def pairs(rows: list[str], cfg: BlurConfig) -> None:
    det = detector()
    rows += ["## 2. Real blurred/sharp pairs", "", "| pair | region | blurred | sharp | ours: blurred lower | Laplacian: blurred lower |", "|---|---|---|---|---|---|"]
    for stem, g in pair_groups("pairs", "video_frames").items():
        imgs = {k: read_image(v) for k, v in g.items()}
        faces = {k: main_face([f for f in det.detect(im) if f.score >= 0.8]) for k, im in imgs.items()}
        use_face = all(f is not None for f in faces.values())  # judge both on the same kind of region
        s = {k: blur_score(imgs[k], faces[k] if use_face else None).score for k in imgs}
        lv = {k: lapvar(imgs[k]) for k in imgs}
        rows.append(f"| {stem} | {'face' if use_face else 'whole image'} | {s['blur']:+.3f} | {s['sharp']:+.3f} | {'yes' if s['blur'] < s['sharp'] else 'NO'} | {'yes' if lv['blur'] < lv['sharp'] else 'NO'} |")
        if stem.startswith("videoretalking_4"):
            drop = s["sharp"] - s["blur"]
            kept = drop < cfg.video_drop and s["blur"] >= cfg.photo_threshold
            lkept = lv["blur"] >= 0.5 * lv["sharp"]
            rows.append(f"| blink frame f0039 kept? | | drop {drop:.3f} vs {cfg.video_drop} allowed; photo threshold {cfg.photo_threshold} | | {'KEPT' if kept else 'REJECTED'} | {'kept' if lkept else 'REJECTED'} (Laplacian {lv['blur']:.0f} vs {lv['sharp']:.0f}) |")
    rows.append("")


def _segs(flags: np.ndarray) -> str:
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in segments(flags)) or "none"


def videos(rows: list[str], cfg: BlurConfig) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rows += ["## 3. Frames of the real clips (judged against their own clip), with either detector", "",
             "| clip | frames | rejected (YuNet faces) | frames | rejected (HOG faces) | frames | Laplacian < 50% of running median |", "|---|---|---|---|---|---|---|"]
    tiles = []
    dets = {"yunet": detector(), "hog": create_detector("hog", max_side=960)}
    for p in sorted((SHARED / "videos").glob("*.mp4")):
        info = probe_video(p)
        res = {}
        for name, det in dets.items():
            an = FrameAnalyzer(det, every=2)
            scores, lv = [], []
            for i, frame in enumerate(iter_frames(info, None, max_side=960)):
                scores.append(an.step(i, frame)[1])
                if name == "yunet":
                    lv.append(lapvar(frame))
            res[name] = blurred_frames(np.array(scores), info.fps, cfg)
            if name == "yunet":
                s, flags = np.array(scores), res[name]
                lflags = blurred_frames(np.log(np.array(lv)), info.fps, BlurConfig(video_drop=float(np.log(2)), spread_k=0.0, window_s=cfg.window_s))
        h = res["hog"]
        rows.append(f"| {p.name} | {len(s)} | {flags.mean():.1%} | {_segs(flags)} | {h.mean():.1%} | {_segs(h)} | {lflags.mean():.1%} ({_segs(lflags)[:60]}) |")
        want = set(np.flatnonzero(flags)[:12])
        if want:
            for i, frame in enumerate(iter_frames(info, None, max_side=960)):
                if i in want:
                    tiles.append(Tile(face_crop(frame, main_face(det.detect(frame))), [f"{p.stem[:20]}", f"#{i} {s[i]:+.3f}"], RED))
    write_sheet(OUT / "rejected_frames.png", tiles, "eval-blur: frames rejected in the shared clips")
    rows += ["", "Contact sheet of the rejected frames: `out/eval-blur/rejected_frames.png`.", ""]


def photo_reasons(rows: list[str], cfg: BlurConfig) -> None:
    """Every shared photo through `prep blur`'s own unit of work, with either detector."""
    from prep.blurscan import DetectSettings, score_photo

    weights = str(SHARED / "weights")
    rows += ["## 4. Every shared photo: decisions and reasons (`prep blur`)", "",
             "| photo | YuNet: decision | score | enlarged | reason | HOG: decision | reason |", "|---|---|---|---|---|---|---|"]
    counts: dict[str, dict[str, int]] = {"yunet": {}, "hog": {}}
    for p in sorted((SHARED / "images").glob("*")):
        recs = {d: score_photo(str(p), DetectSettings(d, weights), cfg) for d in ("yunet", "hog")}
        cells = []
        for d, r in recs.items():
            kind = (r["reason"] or {}).get("kind", "sharp") if r["status"] == "ok" else "error"
            counts[d][kind] = counts[d].get(kind, 0) + 1
            cells.append((("reject" if r.get("blurry") else "keep"), kind, r))
        (yd, yk, yr), (hd, hk, hr) = cells
        rows.append(f"| {p.name} | {yd} | {yr.get('score', float('nan')):+.3f} | {yr.get('enlargement', 0):.2f}x | {yr.get('why') or yk} | {hd} | {hk} |")
    rows += ["", "| reason | YuNet faces | HOG faces |", "|---|---|---|"]
    for kind in ("sharp", "motion", "defocus", "low_resolution", "no_face", "error"):
        if counts["yunet"].get(kind) or counts["hog"].get(kind):
            rows.append(f"| {kind} | {counts['yunet'].get(kind, 0)} | {counts['hog'].get(kind, 0)} |")
    rows.append("")


def main() -> None:
    if not (SHARED / "MANIFEST.csv").is_file():
        raise SystemExit(f"shared data not found at {SHARED}")
    cfg = BlurConfig.resolve()
    rows: list[str] = []
    synthetic(rows)
    pairs(rows, cfg)
    videos(rows, cfg)
    photo_reasons(rows, cfg)
    text = "\n".join(rows) + "\n"
    (ROOT / "bench" / "blur_results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
