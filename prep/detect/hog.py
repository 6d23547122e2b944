"""dlib's HOG frontal face detector: embedded in the ``dlib-bin`` wheel, needs no download.

It gives a box and a score but no landmarks, and its box is tighter than YuNet's. Boxes are
mapped to YuNet's convention and the five landmarks are placed by the mean face layout, both
measured on the real photos of ``shared/data`` (111 faces both detectors found; 227 YuNet
faces for the landmark layout); such faces carry ``estimated_landmarks=True``.
"""

from __future__ import annotations

import numpy as np

from .base import DetectorSpec, Face, register

# YuNet box from a HOG box (x, y, w, h), in units of the HOG box width.
_CENTER_SHIFT = (0.011, -0.070)
_SIZE = (0.885, 1.148)
# Landmarks as fractions of the YuNet box (right eye, left eye, nose, right/left mouth corner).
_LAYOUT = np.array([[0.27, 0.393], [0.73, 0.393], [0.5, 0.59], [0.32, 0.744], [0.68, 0.744]], np.float32)


class HogDetector:
    name = "hog"

    def __init__(self, weights_dir: str | None = None, score_threshold: float = 0.0, upsample: int = 1):
        self.upsample = upsample
        # dlib's HOG scores are margins, not probabilities: 0 is its own decision threshold.
        self.adjust = 0.0
        self._det = None

    def __getstate__(self):
        d = self.__dict__.copy()
        d["_det"] = None
        return d

    def detect(self, image: np.ndarray) -> list[Face]:
        import dlib

        if self._det is None:
            self._det = dlib.get_frontal_face_detector()
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        rects, scores, _ = self._det.run(rgb, self.upsample, self.adjust)
        faces = []
        for r, s in zip(rects, scores):
            hw = float(r.width())
            cx = r.left() + hw / 2 + _CENTER_SHIFT[0] * hw
            cy = r.top() + r.height() / 2 + _CENTER_SHIFT[1] * hw
            w, h = _SIZE[0] * hw, _SIZE[1] * hw
            x, y = cx - w / 2, cy - h / 2
            lm = _LAYOUT * [w, h] + [x, y]
            # squash the margin into (0, 1) so scores compare with other detectors' at a glance
            score = float(1.0 / (1.0 + np.exp(-2.0 * (s + 0.5))))
            faces.append(Face((x, y, w, h), lm.astype(np.float32), score, estimated_landmarks=True))
        return sorted(faces, key=lambda f: -f.score)


def _available(weights_dir: str | None = None) -> str | None:
    try:
        import dlib  # noqa: F401
    except ImportError as exc:  # pragma: no cover - dlib-bin is a core dependency
        return f"dlib not installed ({exc})"
    return None


register("hog", DetectorSpec(factory=HogDetector, available=_available, rank=1))
