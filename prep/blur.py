"""Motion-blur (and defocus) score of a face.

The face is aligned to the FFHQ five-point template at ``CANON`` px (a normalised scale, so a
large and a small face compare), made grey, and measured inside an ellipse over the face
with the eyes left out (a blink removes the finest detail of a face, and must not read as
blur; motion blur smears the whole face, so the rest of it is enough).

Two structure tensors are summed over that region: ``J1`` of the gradients of the crop and
``J2`` of the gradients after a Gaussian of 1 px. For a direction ``u``,
``u'J1u / u'J2u`` is how much fine detail survives relative to coarse detail along ``u``;
blur lowers it, motion blur in one direction only. With ``l_min <= l_max`` the extreme
values over all directions (generalised eigenvalues, closed form for 2x2),

    score = log(l_min) - (log(l_max) - log(l_min))

the detail left in the most damped direction, less a penalty for anisotropy. Ratios of
energies make the score blind to brightness and contrast (a dim frame), and smooth skin
lowers fine and coarse energy alike. ``direction`` is the most damped direction: the
direction of the motion. Higher is sharper. See README "Blur" for how well it separates.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .align import align, template
from .detect import Face

CANON = 256  # side of the normalised face crop, px
SIGMA = 1.0  # the coarse scale, px at CANON

_mask_cache: dict[int, np.ndarray] = {}


def face_mask(n: int = CANON) -> np.ndarray:
    """``n x n float32`` weights: an ellipse over a template-aligned face, eyes cut out."""
    if n not in _mask_cache:
        m = np.zeros((n, n), np.float32)
        cv2.ellipse(m, (n // 2, int(round(n * 0.56))), (int(n * 0.30), int(n * 0.36)), 0, 0, 360, 1.0, -1)
        for x, y in template(n)[:2]:
            cv2.ellipse(m, (int(round(x)), int(round(y))), (int(n * 0.086), int(n * 0.052)), 0, 0, 360, 0.0, -1)
        _mask_cache[n] = m
    return _mask_cache[n]


_supports: dict[int, tuple[np.ndarray, tuple[slice, slice]]] = {}


def _support(m: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of the mask's bounding box (the products are only summed there).

    Remembered for the few masks in use (the face masks and the whole-image one), so the
    per-frame score does not search the mask again."""
    known = _supports.get(id(m))
    if known is not None and known[0] is m:
        return known[1]
    box = _bounding_box(m)
    if len(_supports) < 16:
        _supports[id(m)] = (m, box)
    return box


def _bounding_box(m: np.ndarray) -> tuple[slice, slice]:
    ys, xs = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
    if len(ys) == 0:
        return slice(0, 0), slice(0, 0)
    return slice(int(ys[0]), int(ys[-1]) + 1), slice(int(xs[0]), int(xs[-1]) + 1)


def _tensor(img: np.ndarray, m: np.ndarray, box: tuple[slice, slice]) -> np.ndarray:
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=1)[box]
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=1)[box]
    m = m[box]
    gxm = gx * m
    xx, xy, yy = float((gxm * gx).sum()), float((gxm * gy).sum()), float((gy * m * gy).sum())
    return np.array([[xx, xy], [xy, yy]])


def damping(grey: np.ndarray, mask: np.ndarray) -> tuple[float, float, float]:
    """``(l_min, l_max, angle)``: extreme fine/coarse gradient-energy ratios and the angle
    (degrees, image axes, 0 = horizontal, in [0, 180)) of the most damped direction."""
    g = grey.astype(np.float32)
    box = _support(mask)
    j1 = _tensor(g, mask, box)
    j2 = _tensor(cv2.GaussianBlur(g, (0, 0), SIGMA), mask, box)
    j2 = j2 + np.eye(2) * (1e-6 * np.trace(j2) + 1e-9)
    w, v = np.linalg.eig(np.linalg.solve(j2, j1))
    w = np.clip(w.real, 1e-9, None)
    k = int(np.argmin(w))
    u = v[:, k].real
    angle = float(np.degrees(np.arctan2(u[1], u[0])) % 180.0)
    return float(w.min()), float(w.max()), angle


@dataclass(frozen=True)
class BlurScore:
    """``score``: higher is sharper. ``on_face``: False when the whole image was measured.
    ``direction``: degrees (0 = horizontal) along which detail is most damped.
    ``anisotropy``: log(l_max / l_min), 0 for blur that is the same in every direction."""

    score: float
    on_face: bool
    direction: float
    anisotropy: float

    def to_dict(self) -> dict:
        return {"score": round(self.score, 4), "on_face": self.on_face, "direction": round(self.direction, 1), "anisotropy": round(self.anisotropy, 4)}


def score_grey(crop: np.ndarray, mask: np.ndarray | None = None) -> BlurScore:
    """Score a normalised grey crop (``CANON x CANON``, template-aligned face unless ``mask`` says otherwise)."""
    lo, hi, angle = damping(crop, face_mask(crop.shape[0]) if mask is None else mask)
    aniso = float(np.log(hi) - np.log(lo))
    return BlurScore(float(np.log(lo)) - aniso, mask is None, angle, aniso)


def grey_canonical(image: np.ndarray, face: Face | None) -> np.ndarray:
    """The normalised grey crop the score is measured on (``CANON x CANON``, image dtype).

    With no face: the central square of the whole image, shrunk to ``CANON``.
    """
    if face is not None:
        return align(image, face, CANON, convert=_grey)  # only the region the crop reads is converted
    grey = _grey(image)
    h, w = grey.shape
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return cv2.resize(grey[y0 : y0 + side, x0 : x0 + side], (CANON, CANON), interpolation=cv2.INTER_AREA)


def _grey(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image[:, :, :3]), cv2.COLOR_BGR2GRAY)


_whole = np.ones((CANON, CANON), np.float32)


def blur_score(image: np.ndarray, face: Face | None) -> BlurScore:
    """Score ``image`` (``HxW`` or ``HxWxC``, uint8) on ``face``, or on the whole image if ``None``."""
    crop = grey_canonical(image, face)
    if face is not None:
        return score_grey(crop)
    lo, hi, angle = damping(crop, _whole)
    aniso = float(np.log(hi) - np.log(lo))
    return BlurScore(float(np.log(lo)) - aniso, False, angle, aniso)
