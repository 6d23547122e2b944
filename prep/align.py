"""Face alignment to the FFHQ five-point template with a similarity transform.

The template is the one face-restoration work uses for 512x512 crops (facexlib's
``FaceRestoreHelper``: left eye, right eye, nose, left and right mouth corners, as seen in
the image). Points are scaled for other sizes.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from .detect import Face

# (x, y) at 512 x 512, in image order: eye on the image's left first (the subject's right eye).
FFHQ_512 = np.array(
    [[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935], [201.26117, 371.41043], [313.08905, 371.15118]],
    np.float32,
)


# the face itself in the 512 px template, forehead to chin (x0, y0, x1, y1): what must come from the photo
FACE_REGION_512 = (128.0, 112.0, 384.0, 448.0)


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


def outside_shares(shape: tuple[int, ...], face: Face, size: int, grid: int = 48) -> tuple[float, float]:
    """Shares of the aligned crop, and of the face region in it (:data:`FACE_REGION_512`), that
    lie outside a photo of ``shape``: there the crop is the photo's border mirrored."""
    inv = cv2.invertAffineTransform(alignment_matrix(face, size))
    h, w = shape[:2]

    def share(x0: float, y0: float, x1: float, y1: float) -> float:
        gx, gy = np.meshgrid(np.linspace(x0, x1, grid), np.linspace(y0, y1, grid))
        src = np.stack([gx.ravel(), gy.ravel()], 1) @ inv[:, :2].T + inv[:, 2]
        return float(np.mean((src[:, 0] < -0.5) | (src[:, 0] > w - 0.5) | (src[:, 1] < -0.5) | (src[:, 1] > h - 0.5)))

    k = size / 512.0
    return share(0, 0, size - 1, size - 1), share(*(v * k for v in FACE_REGION_512))


def align(image: np.ndarray, face: Face, size: int, interpolation: int | None = None, convert: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """The face warped onto the template: ``size x size``, same dtype and channels as ``image``.

    Shrinking uses area averaging (a pre-shrink by integer steps) so fine detail is not aliased.
    Only the part of ``image`` that the output can see is touched, so the cost does not grow
    with the photo's size; ``convert`` (to grey, say) is applied to that part only.
    """
    m = alignment_matrix(face, size)
    scale = float(np.hypot(m[0, 0], m[0, 1]))
    f = 1.0
    while scale / f < 0.5:
        f *= 0.5
    image, (x0, y0) = _visible_region(image, m, size, int(round(1.0 / f)))
    m = m.copy()
    m[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)  # origin moved to (x0, y0)
    if convert is not None:
        image = convert(image)
    if f < 1.0:
        image = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        m[:, 2] += m[:, :2] @ np.full(2, 0.5 / f - 0.5)  # pixel centres of the shrunk image
        m[:, :2] /= f
    interp = interpolation if interpolation is not None else (cv2.INTER_LINEAR if scale < 1 else cv2.INTER_CUBIC)
    return cv2.warpAffine(image, m, (size, size), flags=interp, borderMode=cv2.BORDER_REFLECT_101)


def _visible_region(image: np.ndarray, m: np.ndarray, size: int, step: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The bounding box (with a margin for the interpolation kernel) of the source pixels that
    output pixels of ``m`` sample, its corners on multiples of ``step`` (so an area pre-shrink
    by ``step`` sees the same blocks as on the whole image). Returns the view and its origin."""
    h, w = image.shape[:2]
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]])
    src = corners @ inv[:, :2].T + inv[:, 2]
    margin = 3 * step
    x0 = int(np.floor(src[:, 0].min())) - margin
    y0 = int(np.floor(src[:, 1].min())) - margin
    x1 = int(np.ceil(src[:, 0].max())) + margin
    y1 = int(np.ceil(src[:, 1].max())) + margin
    x0, y0 = max(0, x0 - x0 % step), max(0, y0 - y0 % step)
    x1, y1 = min(w, x1), min(h, y1)
    if x1 - x0 < 2 * step or y1 - y0 < 2 * step or (x0 == 0 and y0 == 0 and x1 == w and y1 == h):
        return image, (0, 0)  # the face covers the image, or the window misses it: use all of it
    return image[y0:y1, x0:x1], (x0, y0)


def face_scale(face: Face, size: int) -> float:
    """How much aligning ``face`` to ``size`` enlarges it (>1: the aligned face is upscaled)."""
    m = alignment_matrix(face, size)
    return float(np.hypot(m[0, 0], m[0, 1]))
