"""Find faces on successive video frames cheaply, with the same result as full-frame detection.

A full-frame search runs on the first frame and then about once a second; on the frames in
between, the detector only looks in a small region around each face seen last time, shrunk
so the face is about ``face_px`` pixels. A face that is lost in its region triggers a full
search on that frame, and a face that appears is found by the next full search.
"""

from __future__ import annotations

import functools
from typing import Callable

import cv2
import numpy as np

from .face import Detector, Face
from .pyramid import merge

ROI_FACTOR = 2.2  # region side, in face sizes, searched around a known face
MIN_RELATIVE = 0.25  # faces smaller than this share of the largest are not followed
FOLLOW_SCORE = 0.75  # besides the largest face, only faces at least this confident are followed


class FaceScanner:
    def __init__(self, detector: Detector, face_px: int = 112, full_every: int = 12, min_relative: float = MIN_RELATIVE):
        self.detector = detector
        self.min_relative = min_relative
        self.face_px = face_px
        self.full_every = max(1, full_every)
        self._known: list[Face] = []
        self._calls = 0
        self.full_searches = 0

    def scan(self, frame: np.ndarray, full: bool = False) -> list[Face]:
        """Faces in ``frame`` (``HxWx3 uint8 BGR``), in its pixel coordinates; ``full`` forces a
        full-frame search (after a cut, the faces are not where the last ones were)."""
        full = full or self._calls % self.full_every == 0 or not self._known
        self._calls += 1
        faces = None if full else self._scan_regions(frame)
        if faces is None:
            faces = self._full(frame)
        big = max((f.size for f in faces), default=0.0)
        # a weak detection is not followed between full searches (searched alone in a small
        # region, a texture can pass for a face); a real face is found again by the next full search
        self._known = [f for f in faces if f.size >= self.min_relative * big and (f.size == big or f.score >= FOLLOW_SCORE)]
        return faces

    @property
    def known(self) -> bool:
        """Whether a face seen last time is being followed (the next scan looks around it)."""
        return bool(self._known)

    def skip(self) -> None:
        """Count a frame passed over while no face is known, so that the periodic full searches
        fall on the same frames as if it had been scanned (see :meth:`FrameAnalyzer.run`)."""
        self._calls += 1

    def search(self, frame: np.ndarray) -> list[Face]:
        """A full-frame search, as :meth:`scan` makes when no face is known, that leaves what
        is being followed untouched: for looking back at frames passed over."""
        self.full_searches += 1
        return self.detector.detect(frame)

    def _full(self, frame: np.ndarray) -> list[Face]:
        self.full_searches += 1
        h, w = frame.shape[:2]
        big = max((f.size for f in self._known), default=0.0)
        # shrink the whole frame only as far as the smallest followed face allows
        small = min((f.size for f in self._known), default=0.0)
        if big and small > self.face_px:
            return _detect_scaled(self.detector.detect, frame, self.face_px / small)
        return self.detector.detect(frame)

    def _scan_regions(self, frame: np.ndarray) -> list[Face] | None:
        h, w = frame.shape[:2]
        found: list[Face] = []
        for known in self._known:
            cx, cy = known.center
            half = ROI_FACTOR * known.size / 2.0
            x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
            x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
            if x1 - x0 < 8 or y1 - y0 < 8:
                return None
            roi = frame[y0:y1, x0:x1]
            f = min(1.0, self.face_px / known.size)
            once = getattr(self.detector, "detect_once", None)
            detect = self.detector.detect if once is None else functools.partial(once, face_size=known.size * f)
            faces = _detect_scaled(detect, roi, f)
            if not faces:
                return None  # lost: search the whole frame
            found.extend(face.shifted(x0, y0) for face in faces)
        return _dedupe(found)


def _detect_scaled(detect: Callable[[np.ndarray], list[Face]], image: np.ndarray, f: float) -> list[Face]:
    if f >= 1.0:
        return detect(np.ascontiguousarray(image))
    # area averaging: a bilinear shrink is faster, but its landmarks are less steady and move the blur scores
    small = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    return [face.scaled(1.0 / f) for face in detect(small)]


def _dedupe(faces: list[Face]) -> list[Face]:
    """Regions can overlap: keep the best-scoring of faces that are the same face."""
    return merge(faces, 0.5)
