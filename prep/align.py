"""Face alignment to the FFHQ five-point template with a similarity transform.

The template is the one face-restoration work uses for 512x512 crops (facexlib's
``FaceRestoreHelper``: left eye, right eye, nose, left and right mouth corners, as seen in
the image). Points are scaled for other sizes.
"""

from __future__ import annotations

import cv2
import numpy as np

from .detect import Face

# (x, y) at 512 x 512, in image order: eye on the image's left first (the subject's right eye).
FFHQ_512 = np.array(
    [[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935], [201.26117, 371.41043], [313.08905, 371.15118]],
    np.float32,
)


def template(size: int) -> np.ndarray:
    return FFHQ_512 * (size / 512.0)


def alignment_matrix(face: Face, size: int) -> np.ndarray:
    """2x3 similarity transform taking ``face``'s landmarks onto the template at ``size``."""
    m, _ = cv2.estimateAffinePartial2D(face.landmarks.astype(np.float32), template(size), method=cv2.LMEDS)
    if m is None:  # degenerate landmarks: fall back to the box
        x, y, w, h = face.box
        s = 0.55 * size / max(w, h)
        cx, cy = x + w / 2, y + h / 2
        m = np.array([[s, 0, size / 2 - s * cx], [0, s, size * 0.56 - s * cy]], np.float64)
    return m


def align(image: np.ndarray, face: Face, size: int, interpolation: int | None = None) -> np.ndarray:
    """The face warped onto the template: ``size x size``, same dtype and channels as ``image``.

    Shrinking uses area averaging (a pre-shrink by integer steps) so fine detail is not aliased.
    """
    m = alignment_matrix(face, size)
    scale = float(np.hypot(m[0, 0], m[0, 1]))
    if scale < 0.5:
        f = 1.0
        while scale / f < 0.5:
            f *= 0.5
        image = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        m = m.copy()
        m[:, 2] += m[:, :2] @ np.full(2, 0.5 / f - 0.5)  # pixel centres of the shrunk image
        m[:, :2] /= f
    interp = interpolation if interpolation is not None else (cv2.INTER_LINEAR if scale < 1 else cv2.INTER_CUBIC)
    return cv2.warpAffine(image, m, (size, size), flags=interp, borderMode=cv2.BORDER_REFLECT_101)


def face_scale(face: Face, size: int) -> float:
    """How much aligning ``face`` to ``size`` enlarges it (>1: the aligned face is upscaled)."""
    m = alignment_matrix(face, size)
    return float(np.hypot(m[0, 0], m[0, 1]))
