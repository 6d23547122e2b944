"""Face crops as Light-ASD was trained on them (its authors' Columbia_test.py recipe).

The face box's half-side ``s`` is median-filtered over 13 frames with its centre; the crop
is the square of side ``2 s (1 + 0.4)`` whose top edge is ``s`` above the centre, resized to
224 px, of which the model sees the centre 112 x 112 in grey: a square of side ``1.4 s``
around a point ``0.4 s`` below the box centre (nose, mouth and chin). Outside the frame the
crop is grey 110, as there.
"""

from __future__ import annotations

import cv2
import numpy as np

from .lightasd import FACE_SIZE

CROP_SCALE = 0.40  # the authors' default cropScale
MEDIAN = 13  # frames: their smoothing of the box centre and size
FILL = 110  # their padding value


def median_filter(x: np.ndarray, k: int = MEDIAN) -> np.ndarray:
    """Running median over ``k`` samples (odd) of each column of ``x`` (T,) or (T, C); the
    ends are padded with zeros as scipy.signal.medfilt does."""
    x = np.asarray(x, np.float64)
    flat = x.reshape(len(x), -1)
    h = k // 2
    pad = np.pad(flat, ((h, h), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(pad, k, axis=0)
    return np.median(win, axis=-1).reshape(x.shape)


def smooth_boxes(boxes: np.ndarray) -> np.ndarray:
    """``(T, 3)`` centre x, centre y, side: median-filtered over 13 frames, as in the recipe
    (at the ends, where the zero padding would shrink the box, the nearest full window's
    value is held instead)."""
    out = median_filter(boxes)
    h = MEDIAN // 2
    if len(boxes) > 2 * h:
        out[:h] = out[h]
        out[-h:] = out[-h - 1]
    else:
        out[:] = np.median(boxes, axis=0)
    return out


def face_crop(grey: np.ndarray, cx: float, cy: float, side: float) -> np.ndarray:
    """The model's ``112 x 112 uint8`` view of the face at ``(cx, cy)`` with box side ``side``
    (pixels of ``grey``, an ``HxW uint8`` image)."""
    s = side / 2.0
    view = s * (1 + CROP_SCALE)  # side of the square the model sees
    x0, y0 = cx - view / 2.0, cy + s * CROP_SCALE - view / 2.0
    f = FACE_SIZE / view
    m = np.array([[f, 0.0, -x0 * f], [0.0, f, -y0 * f]], np.float32)
    return cv2.warpAffine(grey, m, (FACE_SIZE, FACE_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=FILL)
