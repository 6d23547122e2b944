"""Find faces of every size: from about 40 px up to a face that fills the frame.

A detector sees faces well in a band of sizes (YuNet: about 30-400 px; dlib's HOG: from 40 px,
but only with some margin around the face). One pass at one scale therefore misses either the
small faces of a large photo or the face of a close-up portrait. :func:`detect_pyramid` runs
the detector on the image at a few scales, each half the previous one, from ``max_side`` (the
finest level) down to a level whose longer side is at most ``COARSE_SIDE`` (a thumbnail
smaller than that is enlarged to it); that coarsest
level is padded with a grey border so a face that fills the frame, a tight crop or an
FFHQ-aligned image has the margin a detector expects. Faces found at several scales are
merged (the most confident detection of each face is kept). The same levels are used for
every detector, so what is found does not depend on which detector ran.

A face is seen at every level where its size lies in the detector's band (``face_band``), and
a real face is seen there with a steady score, while a face-like texture (a dog's head) scores
high at one scale and low at the next, or not at all (a face touching the border of an
unpadded level is not counted there: it lacks its margin). So the merged face keeps the box and landmarks of its
largest in-band detection (the most pixels: the most precise landmarks) and, as its score,
the lowest of its in-band scores, scaled down by the share of levels well inside the band
that missed it.
"""

from __future__ import annotations

import cv2
import numpy as np

from .face import Detector, Face

COARSE_SIDE = 320  # px: at this size a face that fills the frame is within every detector's band
PAD = 0.25  # share of the side added as a border on each side of the coarsest level
SAME_FACE_IOU = 0.4
COMFORT = 1.2  # a face this far inside the band is expected to be seen at that level
DEFAULT_BAND = (40.0, 400.0)  # px: face sizes a detector sees reliably, unless it says otherwise


def pyramid_levels(h: int, w: int, max_side: int | None) -> list[tuple[float, bool]]:
    """``(scale, padded)`` for each level, finest first."""
    longer = max(h, w)
    if max_side and longer > max_side:
        s = max_side / longer
    elif longer < COARSE_SIDE:
        s = COARSE_SIDE / longer  # a thumbnail is enlarged: a face filling it reaches the detector's band
    else:
        s = 1.0
    levels = [(s, False)]
    while longer * s > COARSE_SIDE:
        s *= 0.5
        levels.append((s, False))
    levels[-1] = (levels[-1][0], True)
    return levels


def detect_pyramid(detector: Detector, image: np.ndarray, max_side: int | None) -> list[Face]:
    """Faces of every size in ``image`` (``HxWx3 uint8 BGR``), in its pixel coordinates, best first."""
    h, w = image.shape[:2]
    lo, hi = getattr(detector, "face_band", DEFAULT_BAND)
    found: list[tuple[Face, bool]] = []
    scale_of: dict[int, float] = {}
    levels = pyramid_levels(h, w, max_side)
    for scale, padded in levels:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        level = image if scale == 1.0 else cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        fx, fy = level.shape[1] / w, level.shape[0] / h
        pad = 0
        if padded:
            pad = int(round(PAD * max(level.shape[:2])))
            level = cv2.copyMakeBorder(level, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(127, 127, 127))
        lh, lw = level.shape[:2]
        for face in detector.detect(level):
            f = _to_image(face.shifted(-pad, -pad), fx, fy)
            scale_of[id(f)] = scale
            found.append((f, lo <= face.size <= hi and (padded or _clear_of_border(face, lw, lh))))
    merged = merge_levels(found)
    seen_at: dict[int, set[float]] = {}
    for m in merged:
        seen_at[id(m)] = {scale_of[id(f)] for f, _ in found if iou(m.box, f.box) >= SAME_FACE_IOU}
    return sorted((_penalise_misses(m, levels, lo, hi, seen_at) for m in merged), key=lambda f: -f.score)


def merge_levels(found: list[tuple[Face, bool]]) -> list[Face]:
    """One face per group of overlapping detections from several levels (``(face, in_band)``
    pairs): the largest in-band detection's box, scored by the lowest in-band score."""
    order = sorted(found, key=lambda fb: (not fb[1], -fb[0].score))
    groups: list[list[tuple[Face, bool]]] = []
    for fb in order:
        for g in groups:
            if iou(fb[0].box, g[0][0].box) >= SAME_FACE_IOU:
                g.append(fb)
                break
        else:
            groups.append([fb])
    out = []
    for g in groups:
        in_band = [f for f, ok in g if ok]
        best = max(in_band, key=lambda f: f.size) if in_band else g[0][0]
        score = min(f.score for f in in_band) if in_band else best.score
        out.append(Face(best.box, best.landmarks, score, best.estimated_landmarks))
    return sorted(out, key=lambda f: -f.score)


def _penalise_misses(face: Face, levels: list[tuple[float, bool]], lo: float, hi: float, seen_at: dict[int, set[float]]) -> Face:
    """A face missing at a level where it sits well inside the detector's band (its size there
    at least ``COMFORT`` times the band's lower end and at most its upper end over ``COMFORT``)
    is doubtful: its score is scaled by the share of those levels that saw it."""
    expected = [s for s, _ in levels if COMFORT * lo <= face.size * s <= hi / COMFORT]
    if len(expected) < 2:
        return face
    share = len(seen_at.get(id(face), set()) & set(expected)) / len(expected)
    return face if share >= 1 else Face(face.box, face.landmarks, face.score * share, face.estimated_landmarks)


def _clear_of_border(face: Face, w: int, h: int) -> bool:
    """A face that touches the border of an unpadded level was seen without the margin a
    detector expects: its score there says little (the padded level judges it)."""
    x, y, bw, bh = face.box
    m = 0.05 * face.size
    return x >= m and y >= m and x + bw <= w - m and y + bh <= h - m


def _to_image(face: Face, fx: float, fy: float) -> Face:
    x, y, bw, bh = face.box
    lm = face.landmarks / np.array([fx, fy], np.float32)
    return Face((x / fx, y / fy, bw / fx, bh / fy), lm.astype(np.float32), face.score, face.estimated_landmarks)


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def merge(faces: list[Face], thr: float = SAME_FACE_IOU) -> list[Face]:
    """One detection per face: the most confident of those that overlap by ``thr`` IoU or more."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: -f.score):
        if all(iou(face.box, k.box) < thr for k in kept):
            kept.append(face)
    return kept
