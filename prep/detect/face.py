"""A found face, the detector contract, and the registry the detectors join."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Protocol

import cv2
import numpy as np


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
