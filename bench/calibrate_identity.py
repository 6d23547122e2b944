"""Where ``--person``'s threshold comes from (``make calibrate-identity``).

Faces with a known identity from the shared data (../shared/data):

- every clip in videos/ is one person: FRAMES faces spread evenly through each clip;
- photos in images/ that show one named person (the Obama photos at 240p, 480p, small, large
  and cut off at the border; Kit Harington, Rose Leslie, Alex Lacamoire, Adele, Paris Hilton,
  Einstein).

Same-person pairs: two faces of one clip, or two Obama photos. Different-person pairs: any two
faces of different identities. The threshold is the lowest cosine similarity at which at most
0.1% of the different-person pairs are accepted (rounded up to 0.005); the true-accept rate is
measured at it. Writes bench/identity_results.md.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from prep import identity  # noqa: E402
from prep.decode import iter_frames  # noqa: E402
from prep.detect import create_detector, main_face  # noqa: E402
from prep.identity import pick_evenly  # noqa: E402
from prep.images import read_image  # noqa: E402
from prep.probe import probe_video  # noqa: E402

SHARED = Path(os.environ.get("PREP_SHARED_DATA", ROOT.parent / "shared" / "data"))
FRAMES = 24
FAR = 0.001
PHOTOS = {
    "obama": ["facerec__examples__obama-240p.jpg", "facerec__examples__obama-480p.jpg", "facerec__examples__obama_small.jpg", "facerec__test_images__obama3.jpg", "facerec__test_images__obama_partial_face.jpg"],
    "kit_harington": ["facerec__kit_harington__john2.jpeg"],
    "rose_leslie": ["facerec__rose_leslie__img1.jpg"],
    "alex_lacamoire": ["facerec__examples__alex-lacamoire.png"],
    "adele": ["GFPGAN__cropped_faces__Adele_crop.png"],
    "paris_hilton": ["GFPGAN__cropped_faces__Paris_Hilton_crop.png"],
    "einstein": ["CodeFormer__gray_faces__Einstein01.png"],
}


def detector():
    return create_detector("yunet", str(SHARED / "weights"), max_side=2048)


def video_faces(path: Path, det, k: int = FRAMES) -> list[tuple[str, int, identity.FaceEmbedding]]:
    """(identity, frame, embedding) for ``k`` frames spread through the clip (main face)."""
    info = probe_video(str(path))
    n = sum(1 for _ in iter_frames(info, None, max_side=960, fast=True))
    want = set(pick_evenly(n, k))
    out = []
    for i, frame in enumerate(iter_frames(info, None, max_side=960)):
        if i in want:
            face = main_face([f for f in det.detect(frame) if f.score >= 0.8])
            if face is not None:
                out.append((path.stem, i, identity.embed(frame, face)))
    return out


def photo_faces(det) -> list[tuple[str, str, identity.FaceEmbedding]]:
    out = []
    for who, names in PHOTOS.items():
        for name in names:
            img = read_image(SHARED / "images" / name)
            face = main_face([f for f in det.detect(img) if f.score >= 0.8])
            if face is not None:
                out.append((who, name, identity.embed(img, face)))
    return out


def pair_sims(faces: list[tuple[str, object, identity.FaceEmbedding]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple]]:
    """Similarities of same pairs, different pairs, and whether both faces of a same pair are usable."""
    same, diff, same_usable, hardest = [], [], [], []
    for a, b in itertools.combinations(faces, 2):
        s = float(a[2].vector @ b[2].vector)
        if a[0] == b[0]:
            same.append(s)
            same_usable.append(a[2].usable and b[2].usable)
        else:
            diff.append(s)
            hardest.append((s, a[0], a[1], b[0], b[1]))
    hardest.sort(reverse=True)
    return np.array(same), np.array(diff), np.array(same_usable), hardest[:5]


def threshold_at(diff: np.ndarray, far: float) -> float:
    """Lowest threshold (a multiple of 0.005) accepting at most ``far`` of ``diff``."""
    for t in np.arange(0.5, 1.0, 0.005):
        if np.mean(diff >= t) <= far:
            return round(float(t), 3)
    return 1.0


def main() -> None:
    if not (SHARED / "MANIFEST.csv").is_file():
        sys.exit(f"shared data not found at {SHARED}")
    det = detector()
    t0 = time.perf_counter()
    vids = [f for p in sorted((SHARED / "videos").glob("*.mp4")) for f in video_faces(p, det)]
    photos = photo_faces(det)
    secs = time.perf_counter() - t0
    faces = vids + photos
    same, diff, usable, hardest = pair_sims(faces)
    t = threshold_at(diff, FAR)
    obama = [f for f in photos if f[0] == "obama"]
    o_same = np.array([float(a[2].vector @ b[2].vector) for a, b in itertools.combinations(obama, 2)])
    far_t = float(np.mean(diff >= t))
    clip_pairs = {}
    clips = sorted({f[0] for f in vids})
    for a, b in itertools.combinations(clips, 2):
        va = np.array([f[2].vector for f in vids if f[0] == a])
        vb = np.array([f[2].vector for f in vids if f[0] == b])
        clip_pairs[(a, b)] = (float(np.median(va @ vb.T)), float(np.max(va @ vb.T)))
    lines = [
        "# Identity threshold (`make calibrate-identity`)",
        "",
        f"Embedding: dlib ResNet face descriptor on a 150 px chip aligned by dlib's 5-point model, cosine similarity of unit vectors. Faces: YuNet, main face, score >= 0.8. {len(vids)} faces from {len(clips)} clips ({FRAMES} spread through each, frames shrunk to 960 px), {len(photos)} faces from photos of {len(PHOTOS)} named people. {secs:.0f} s.",
        "",
        f"- same-person pairs: {len(same)} ({len(o_same)} of them Obama photo pairs: 240p, 480p, small, large, cut off at the border); different-person pairs: {len(diff)}",
        f"- threshold at FAR {FAR:.1%}: **{t:.3f}** (measured FAR there {far_t:.3%}, {int(np.sum(diff >= t))} of {len(diff)} pairs)",
        f"- TAR at that threshold: **{np.mean(same >= t):.2%}** of all same pairs; {np.mean(same[usable] >= t):.2%} of the {int(usable.sum())} pairs where both faces are usable (>= {identity.MIN_EYE_PX:.0f} px between the eyes, turn <= {identity.MAX_TURN}); Obama photo pairs {np.mean(o_same >= t):.0%} (lowest {o_same.min():.3f})",
        f"- similarity, same pairs: median {np.median(same):.3f}, 1st percentile {np.percentile(same, 1):.3f}, min {same.min():.3f}",
        f"- similarity, different pairs: median {np.median(diff):.3f}, 99.9th percentile {np.percentile(diff, 99.9):.3f}, max {diff.max():.3f}",
        "",
        "Hardest different-person pairs:",
        "",
        *[f"- {s:.3f}: {a} ({x}) vs {b} ({y})" for s, a, x, b, y in hardest],
        "",
        "Clip against clip (median and max similarity of their faces):",
        "",
        "| clip A | clip B | median | max |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {m:.3f} | {x:.3f} |" for (a, b), (m, x) in sorted(clip_pairs.items(), key=lambda kv: -kv[1][0])],
        "",
    ]
    text = "\n".join(lines)
    (ROOT / "bench" / "identity_results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
