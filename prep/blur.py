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
        found = score_grey(crop)
        return BlurScore(found.score, found.on_face, to_photo_angle(found.direction, face, CANON), found.anisotropy)
    lo, hi, angle = damping(crop, _whole)
    aniso = float(np.log(hi) - np.log(lo))
    return BlurScore(float(np.log(lo)) - aniso, False, angle, aniso)


# ---------------------------------------------------------------------------------------------
# Photos: measured at the face's own resolution, and the reason a face is soft.

MIN_NATIVE = 64  # px: smaller faces are measured at this size (enlarged), never below
LENGTH_STEPS = (1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 11.0, 16.0, 22.0, 32.0, 48.0)  # px at the measuring scale


def native_size(face: Face) -> tuple[int, float]:
    """``(n, enlargement)``: the side at which ``face`` is measured and how much aligning it
    to the measuring scale ``CANON`` enlarges it. A face the photo holds at ``CANON`` or more
    is measured at ``CANON``; a smaller one at its own resolution (``CANON / enlargement``),
    so the score sees the detail the photo has instead of an enlarged, necessarily soft copy."""
    from .align import face_scale

    e = face_scale(face, CANON)
    return (CANON if e <= 1.0 else max(MIN_NATIVE, int(round(CANON / e)))), e


def _ratio_along(grey: np.ndarray, mask: np.ndarray, angle: float) -> float:
    """Fine/coarse gradient-energy ratio along ``angle`` (degrees, image axes)."""
    g = grey.astype(np.float32)
    box = _support(mask)
    j1 = _tensor(g, mask, box)
    j2 = _tensor(cv2.GaussianBlur(g, (0, 0), SIGMA), mask, box)
    u = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    return float(u @ j1 @ u) / max(float(u @ j2 @ u), 1e-12)


def motion_length(crop: np.ndarray, mask: np.ndarray, direction: float) -> float:
    """Length in px (of ``crop``) of a linear motion blur along ``direction`` (degrees, image axes).

    The face itself is the reference: a face is about as detailed along any direction, and
    motion blur of length L damps detail along the motion only. Blurring the crop again,
    across the motion, by lines of growing length k damps the other direction too; where the
    two directions' fine/coarse ratios meet, k is the blur's length. Returns 0 when the blur is
    shorter than the first step (1.5 px) and the longest step (48 px) when it is longer.
    """
    from .kernels import apply_kernel, motion_kernel

    along = np.log(_ratio_along(crop, mask, direction))
    across = np.log(_ratio_along(crop, mask, direction + 90.0))
    if across <= along:
        return 0.0
    prev_k, prev_gap = 0.0, across - along
    for k in LENGTH_STEPS:
        b = apply_kernel(crop.astype(np.float32), motion_kernel(k, np.radians(direction + 90.0)))
        gap = np.log(_ratio_along(b, mask, direction + 90.0)) - np.log(_ratio_along(b, mask, direction))
        if gap <= 0:
            return float(prev_k + (k - prev_k) * prev_gap / max(prev_gap - gap, 1e-9))
        prev_k, prev_gap = k, gap
    return float(LENGTH_STEPS[-1])


@dataclass(frozen=True)
class FaceBlur:
    """A photo face's blur measurement. ``score`` is comparable across face sizes (measured at
    ``measured_px``, corrected to the ``CANON`` scale); ``enlargement`` is how much the face had
    to be enlarged to reach ``CANON``; ``length_px`` is the estimated motion length in the
    photo's pixels along ``direction`` (degrees, 0 = horizontal)."""

    score: float
    direction: float
    anisotropy: float
    enlargement: float
    measured_px: int
    length_px: float

    def to_dict(self) -> dict:
        return {"score": round(self.score, 4), "direction": round(self.direction, 1), "anisotropy": round(self.anisotropy, 4),
                "enlargement": round(self.enlargement, 3), "measured_px": self.measured_px, "length_px": round(self.length_px, 1)}


def measure_face(image: np.ndarray, face: Face) -> FaceBlur:
    """Score a photo's face at its own resolution (see :func:`native_size`). Sharp small faces
    measured so score as sharp large ones do (on the shared photos, 0.38-0.92 for faces enlarged
    2.5-4.2x), so one threshold serves every size."""
    n, e = native_size(face)
    crop = align(image, face, n, convert=_grey)
    mask = face_mask(n)
    lo, hi, angle = damping(crop, mask)
    aniso = float(np.log(hi) - np.log(lo))
    score = float(np.log(lo)) - aniso
    from .align import face_scale

    length = motion_length(crop, mask, angle) / face_scale(face, n)  # crop px to photo px
    return FaceBlur(score, to_photo_angle(angle, face, n), aniso, e, n, length)


def to_photo_angle(angle: float, face: Face, n: int) -> float:
    """A direction measured on the face aligned at ``n`` px (degrees, in [0, 180)) in the
    photo's own axes: the alignment turned the face upright, so its roll is taken off again."""
    from .align import alignment_matrix

    m = alignment_matrix(face, n)
    return float((angle - np.degrees(np.arctan2(m[1, 0], m[0, 0]))) % 180.0)
