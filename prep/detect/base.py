"""The detector contract and registry."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from dataclasses import dataclass, field
from typing import Callable, Protocol

import cv2
import numpy as np

from ..errors import PrepError

log = logging.getLogger(__name__)
try:  # OpenCV 5 logs a harmless DNN backend notice on every model load
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
except AttributeError:  # pragma: no cover
    pass


@dataclass(frozen=True)
class Face:
    """One detected face, in the pixel coordinates of the image it was found in.

    ``box`` is ``(x, y, w, h)``; ``landmarks`` is a ``5x2 float32`` array in the order
    right eye, left eye, nose tip, right mouth corner, left mouth corner (the subject's
    right and left, so the "right eye" appears on the image's left); ``score`` in [0, 1].
    ``estimated_landmarks`` is true when the detector gives no landmarks and they were
    placed from the box by the mean face layout.
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float
    estimated_landmarks: bool = False

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + w / 2.0, y + h / 2.0

    @property
    def size(self) -> float:
        """Side of the face box (mean of width and height), the face scale used everywhere."""
        return (self.box[2] + self.box[3]) / 2.0

    def scaled(self, f: float) -> "Face":
        x, y, w, h = self.box
        return Face((x * f, y * f, w * f, h * f), self.landmarks * f, self.score, self.estimated_landmarks)

    def shifted(self, dx: float, dy: float) -> "Face":
        """The same face in an image whose origin is at ``(-dx, -dy)`` of this one's (``dx, dy`` added)."""
        x, y, w, h = self.box
        return Face((x + dx, y + dy, w, h), self.landmarks + np.array([dx, dy], np.float32), self.score, self.estimated_landmarks)

    def to_dict(self) -> dict:
        return {
            "box": [round(float(v), 2) for v in self.box],
            "landmarks": np.round(self.landmarks, 2).tolist(),
            "score": round(float(self.score), 4),
        }


def main_face(faces: list[Face], min_score: float = 0.8) -> Face | None:
    """The largest confident face (falls back to the most confident one when none reaches
    ``min_score``; low-scoring YuNet hits on textures are often larger than real faces)."""
    confident = [f for f in faces if f.score >= min_score]
    if confident:
        return max(confident, key=lambda f: f.size)
    return max(faces, key=lambda f: f.score) if faces else None


class Detector(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in ``image`` (``HxWx3 uint8 BGR``), best first."""
        ...


@dataclass
class DetectorSpec:
    """How to build a detector: a factory and a probe that says whether it can run here."""

    factory: Callable[..., Detector]
    available: Callable[..., str | None]  # None when usable, else the reason it is not
    rank: int  # lower is preferred by 'auto'
    needs: list[str] = field(default_factory=list)


DETECTORS: dict[str, DetectorSpec] = {}
DETECTOR_CHOICES = ["auto", "yunet", "hog"]


def register(name: str, spec: DetectorSpec) -> None:
    DETECTORS[name] = spec


def create_detector(
    name: str = "auto",
    weights_dir: str | None = None,
    max_side: int | None = 960,
    score_threshold: float = 0.6,
) -> Detector:
    """Build the detector called ``name`` (``auto``: the best available one), searching
    faces of every size; ``max_side`` caps the finest level of that search.
    """
    from . import hog, yunet  # noqa: F401  (registers)

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
        from .pyramid import detect_pyramid

        return detect_pyramid(self.inner, as_bgr(image), self.max_side)

    def detect_once(self, image: np.ndarray) -> list[Face]:
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
