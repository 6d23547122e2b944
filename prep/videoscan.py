"""One pass over a video's frames: faces on every n-th frame, a blur score on every frame.

Shared by ``crop`` (analysis pass), ``frames`` and ``blur``. Faces are found with
:class:`~prep.detect.scan.FaceScanner`; between analysed frames, the blur score uses the
face last found (a face moves little in a frame or two, and the score is an energy ratio
over the whole face, not a pixel-exact measure).
"""

from __future__ import annotations

import numpy as np

from .blur import blur_score
from .detect import Detector, Face, main_face
from .detect.scan import FaceScanner


class FrameAnalyzer:
    def __init__(self, detector: Detector, every: int = 1, face_px: int = 112, full_every: int = 12, blur: bool = True):
        self.scanner = FaceScanner(detector, face_px, full_every)
        self.every = max(1, every)
        self.blur = blur
        self._face: Face | None = None

    def step(self, index: int, frame: np.ndarray, force: bool = False) -> tuple[list[Face] | None, float]:
        """Faces (``None`` when this frame was not analysed) and the blur score (NaN without a face)."""
        faces = None
        if force or index % self.every == 0:
            faces = self.scanner.scan(frame)
            self._face = main_face(faces)
        score = blur_score(frame, self._face).score if (self.blur and self._face is not None) else float("nan")
        return faces, score
