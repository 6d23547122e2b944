"""Building a detector: by name or ``auto`` (the best one available), once per process, wrapped
to search faces of every size."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import PrepError
from . import hog, yunet  # noqa: F401  (they register themselves)
from .face import DETECTOR_CHOICES, DETECTORS, Detector, Face
from .pyramid import detect_pyramid


def create_detector(
    name: str = "auto",
    weights_dir: str | None = None,
    max_side: int | None = 960,
    score_threshold: float = 0.6,
) -> Detector:
    """Build the detector called ``name`` (``auto``: the best available one), searching
    faces of every size; ``max_side`` caps the finest level of that search.
    """
    if name == "auto":
        reasons = []
        for cand, spec in sorted(DETECTORS.items(), key=lambda kv: kv[1].rank):
            why = spec.available(weights_dir=weights_dir)
            if why is None:
                det = spec.factory(weights_dir=weights_dir, score_threshold=score_threshold)
                det.auto_note = "; ".join(reasons) or None  # type: ignore[attr-defined]
                return SearchDetector(det, max_side)
            reasons.append(f"{cand} unavailable: {why}")
        raise PrepError(None, "no face detector available (" + "; ".join(reasons) + ")")
    if name not in DETECTORS:
        raise PrepError(None, f"unknown detector '{name}' (choose from {', '.join(DETECTOR_CHOICES)})")
    spec = DETECTORS[name]
    why = spec.available(weights_dir=weights_dir)
    if why is not None:
        raise PrepError(None, f"detector '{name}' unavailable: {why}")
    return SearchDetector(spec.factory(weights_dir=weights_dir, score_threshold=score_threshold), max_side)


def resolve_detector(name: str = "auto", weights_dir: str | None = None) -> tuple[str, str | None, str | None]:
    """Decide once, on the driver, which detector a batch runs and where its model file is:
    ``(name, weights folder, why auto chose it)``. Workers then build exactly that detector
    from that folder, on whatever node they run, instead of each choosing for itself (a node
    without the model would silently fall back to another detector)."""
    det = create_detector(name, weights_dir, max_side=None)
    path = getattr(det.inner, "model_path", None)
    return det.name, str(Path(path).resolve().parent) if path else weights_dir, det.auto_note


_built: dict[tuple, "SearchDetector"] = {}


def cached_detector(name: str = "auto", weights_dir: str | None = None, max_side: int | None = 960, score_threshold: float = 0.6) -> "SearchDetector":
    """:func:`create_detector`, built once per process and setting (model loading is not
    repeated per item). The key includes the environment that decides what ``auto`` finds
    (weights folder, offline switch, cache), so a change of it is never answered from an
    earlier choice."""
    env = tuple(os.environ.get(k) for k in ("PREP_WEIGHTS_DIR", "PREP_OFFLINE", "PREP_CACHE_DIR", "XDG_CACHE_HOME"))
    key = (name, weights_dir, max_side, score_threshold, env)
    if key not in _built:
        _built[key] = create_detector(name, weights_dir, max_side, score_threshold)
    return _built[key]


class SearchDetector:
    """A detector that finds faces of every size (:mod:`prep.detect.pyramid`).

    ``detect`` searches the whole range of face sizes, its finest level shrunk to ``max_side``
    (cost stays flat on big frames); ``detect_once`` runs the detector once on the image as
    given, for callers that already know the face's scale (the video scanner's regions).
    """

    def __init__(self, inner: Detector, max_side: int | None):
        self.inner = inner
        self.max_side = max_side
        self.name = inner.name
        self.auto_note = getattr(inner, "auto_note", None)

    def detect(self, image: np.ndarray) -> list[Face]:
        return detect_pyramid(self.inner, as_bgr(image), self.max_side)

    def detect_once(self, image: np.ndarray, face_size: float | None = None) -> list[Face]:
        """``face_size``: the size the face is expected at, for a detector that can use it
        (dlib's HOG skips its upsampling for a large face)."""
        if face_size is not None and hasattr(self.inner, "detect_sized"):
            return self.inner.detect_sized(as_bgr(image), face_size)
        return self.inner.detect(as_bgr(image))


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Any 8-bit image (grey, BGR, BGRA) as contiguous ``HxWx3 uint8 BGR``."""
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 image, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)
