"""YuNet (OpenCV ``FaceDetectorYN``, 2023mar ONNX model): fast on CPU, five landmarks."""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import PrepError
from .face import DetectorSpec, Face, register
from .weights import YUNET_2023MAR, find_local, resolve


class YuNetDetector:
    name = "yunet"
    face_band = (40.0, 400.0)  # px: scores above 0.9 on the shared photos' faces from 40 to 400 px, 0.8 at 600

    def __init__(self, weights_dir: str | None = None, score_threshold: float = 0.6, nms_threshold: float = 0.3):
        self.model_path = str(resolve(YUNET_2023MAR, weights_dir))
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self._net = None
        self._size = (0, 0)

    def __getstate__(self):  # picklable: the OpenCV object is rebuilt in each process
        d = self.__dict__.copy()
        d["_net"] = None
        d["_size"] = (0, 0)
        return d

    def detect(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        if self._net is None:
            self._net = cv2.FaceDetectorYN.create(self.model_path, "", (w, h), self.score_threshold, self.nms_threshold, 5000)
        if self._size != (w, h):
            self._net.setInputSize((w, h))
            self._size = (w, h)
        _, rows = self._net.detect(image)
        if rows is None:
            return []
        faces = [
            Face(
                box=(float(r[0]), float(r[1]), float(r[2]), float(r[3])),
                landmarks=np.asarray(r[4:14], np.float32).reshape(5, 2),
                score=float(r[14]),
            )
            for r in rows
        ]
        return sorted(faces, key=lambda f: -f.score)


def _available(weights_dir: str | None = None) -> str | None:
    try:
        if find_local(YUNET_2023MAR, weights_dir) is not None:
            return None
        resolve(YUNET_2023MAR, weights_dir)  # first use: download to the cache
        return None
    except PrepError as exc:
        return exc.problem


register("yunet", DetectorSpec(factory=YuNetDetector, available=_available, rank=0))
