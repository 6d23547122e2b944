"""dlib's HOG frontal face detector: embedded in the ``dlib-bin`` wheel, needs no download.

It gives a box and a score but no landmarks, and its box is tighter than YuNet's. Boxes are
mapped to YuNet's convention and the five landmarks are placed by the mean face layout, both
measured on the real photos of ``shared/data`` (111 faces both detectors found; 227 YuNet
faces for the landmark layout); such faces carry ``estimated_landmarks=True``.
"""

from __future__ import annotations

import cv2
import numpy as np

from .face import DetectorSpec, Face, register

# YuNet box from a HOG box (x, y, w, h), in units of the HOG box width.
_CENTER_SHIFT = (0.011, -0.070)
_SIZE = (0.885, 1.148)
# Box refinement (see HogDetector._refine): the face is brought to REFINE_PX px, just above dlib's
# 80 px window, and searched at REFINE_STEPS scales within one pyramid step (83-96 px), in a region
# REFINE_CONTEXT sides each way around its centre (2 sides across): dlib then finds it at the
# first or second level of its own pyramid, whose later levels are small.
REFINE_PX = 100.0 / 1.2
REFINE_STEPS = 4
REFINE_CONTEXT = 1.0
# dlib's window is 80 px; a face known to be this large is searched without upsampling.
UNSAMPLED_FACE_PX = 92.0
# Landmarks as fractions of the YuNet box (right eye, left eye, nose, right/left mouth corner).
_LAYOUT = np.array([[0.27, 0.393], [0.73, 0.393], [0.5, 0.59], [0.32, 0.744], [0.68, 0.744]], np.float32)


class HogDetector:
    name = "hog"
    face_band = (40.0, 1e9)  # upsampled once it sees faces from 40 px; its own pyramid finds large ones

    def __init__(self, weights_dir: str | None = None, score_threshold: float = 0.0, upsample: int = 1):
        self.upsample = upsample
        # dlib's HOG scores are margins, not probabilities: 0 is its own decision threshold. A
        # face it finds scores 0.73 or more once squashed (see _detect), so the default 0.6 keeps
        # every one, and a preset's higher threshold drops the weak ones as it does YuNet's.
        self.adjust = 0.0
        self.score_threshold = score_threshold
        self._det = None

    def __getstate__(self):
        d = self.__dict__.copy()
        d["_det"] = None
        return d

    def _run(self, bgr: np.ndarray, upsample: int) -> list[tuple[float, float, float, float]]:
        """dlib's raw detections: ``(left, top, side, margin)`` in ``bgr``'s pixels."""
        import dlib

        if self._det is None:
            self._det = dlib.get_frontal_face_detector()
        rects, scores, _ = self._det.run(np.ascontiguousarray(bgr[:, :, ::-1]), upsample, self.adjust)
        return [(float(r.left()), float(r.top()), float(r.width()), float(s)) for r, s in zip(rects, scores)]

    def detect(self, image: np.ndarray) -> list[Face]:
        return self._detect(image, self.upsample)

    def detect_sized(self, image: np.ndarray, face_size: float) -> list[Face]:
        """Faces of about ``face_size`` px (the video scanner's regions, shrunk so the face is
        about 112 px): dlib's own window sees faces from 80 px, so the image is upsampled only
        for a face that would come within 15% of that (upsampling costs four times the search)."""
        return self._detect(image, 0 if face_size >= UNSAMPLED_FACE_PX else self.upsample)

    def _detect(self, image: np.ndarray, upsample: int) -> list[Face]:
        faces = []
        for left, top, side, margin in self._run(image, upsample):
            left, top, side = self._refine(image, left, top, side)
            cx = left + side / 2 + _CENTER_SHIFT[0] * side
            cy = top + side / 2 + _CENTER_SHIFT[1] * side
            w, h = _SIZE[0] * side, _SIZE[1] * side
            x, y = cx - w / 2, cy - h / 2
            lm = _LAYOUT * [w, h] + [x, y]
            # squash the margin into (0, 1) so scores compare with other detectors' at a glance
            score = float(1.0 / (1.0 + np.exp(-2.0 * (margin + 0.5))))
            if score >= self.score_threshold:
                faces.append(Face((x, y, w, h), lm.astype(np.float32), score, estimated_landmarks=True))
        return sorted(faces, key=lambda f: -f.score)

    def _refine(self, image: np.ndarray, left: float, top: float, side: float) -> tuple[float, float, float]:
        """A steadier box: dlib searches a pyramid in steps of 6/5 on a grid of 8 px cells, so its
        box snaps to sizes 20% apart and moves in jumps. The face is searched again at
        ``REFINE_STEPS`` scales between two pyramid steps and the boxes are averaged, which
        takes the error of the size from about +-10% to a few per cent (measured against YuNet's
        boxes on the shared clips) and keeps blur scores of HOG-aligned faces steady."""
        h, w = image.shape[:2]
        cx, cy = left + side / 2, top + side / 2
        half = REFINE_CONTEXT * side
        x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
        x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
        region = image[y0:y1, x0:x1]
        boxes = []
        for k in range(REFINE_STEPS):
            f = REFINE_PX * (1.2 ** (k / REFINE_STEPS)) / side
            small = cv2.resize(region, (max(1, round((x1 - x0) * f)), max(1, round((y1 - y0) * f))), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
            found = [(x0 + l / f, y0 + t / f, s / f) for l, t, s, _ in self._run(small, 0)]
            near = [b for b in found if abs(b[0] + b[2] / 2 - cx) < 0.3 * side and abs(b[1] + b[2] / 2 - cy) < 0.3 * side and 0.7 < b[2] / side < 1.4]
            if near:
                boxes.append(min(near, key=lambda b: abs(b[0] + b[2] / 2 - cx) + abs(b[1] + b[2] / 2 - cy)))
        if not boxes:
            return left, top, side
        b = np.mean(np.array(boxes), axis=0)
        return float(b[0]), float(b[1]), float(b[2])


def _available(weights_dir: str | None = None) -> str | None:
    try:
        import dlib  # noqa: F401
    except ImportError as exc:  # pragma: no cover - dlib-bin is a core dependency
        return f"dlib not installed ({exc})"
    return None


register("hog", DetectorSpec(factory=HogDetector, available=_available, rank=1))
