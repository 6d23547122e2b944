"""Crop-window geometry: pure functions on face positions, in display pixels.

A window is a square ``(x, y, side)`` in the upright, square-pixel frame of the source
(``VideoInfo.display_*``). The face is centred horizontally; its vertical place
(``face_y``, the face centre's height in the window, 0 = top) and its scale
(``face_fraction``, face-box side / window side) come from the preset. Windows are never
moved to stay inside the frame: what lies outside is padded, and the padding is measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    x: float
    y: float
    side: float

    def to_list(self, nd: int = 2) -> list[float]:
        return [round(float(self.x), nd), round(float(self.y), nd), round(float(self.side), nd)]


@dataclass(frozen=True)
class Padding:
    """Pixels of the window that fall outside the frame, per edge (display px)."""

    left: float
    top: float
    right: float
    bottom: float
    side: float

    @property
    def any(self) -> bool:
        return max(self.left, self.top, self.right, self.bottom) > 0

    @property
    def area_fraction(self) -> float:
        """Share of the window's area that is padding, in [0, 1]."""
        inside_w = max(0.0, self.side - self.left - self.right)
        inside_h = max(0.0, self.side - self.top - self.bottom)
        return 1.0 - (inside_w * inside_h) / (self.side * self.side)


def window_for_face(cx: float, cy: float, face_size: float, face_fraction: float, face_y: float) -> Window:
    """The window that puts a face of box side ``face_size`` centred at ``(cx, cy)`` where the preset wants it."""
    if not 0 < face_fraction <= 1:
        raise ValueError(f"face_fraction must be in (0, 1], got {face_fraction}")
    side = face_size / face_fraction
    return Window(cx - side / 2.0, cy - face_y * side, side)


def padding(win: Window, frame_w: int, frame_h: int) -> Padding:
    return Padding(
        left=max(0.0, -win.x),
        top=max(0.0, -win.y),
        right=max(0.0, win.x + win.side - frame_w),
        bottom=max(0.0, win.y + win.side - frame_h),
        side=win.side,
    )


def integer_window(win: Window) -> tuple[int, int, int]:
    """Round a window to even whole pixels (x, y, side), keeping its centre within a pixel.

    Even values keep crops and pads aligned with 4:2:0 chroma, which ffmpeg requires.
    """
    side = max(2, 2 * int(round(win.side / 2.0)))
    cx = win.x + win.side / 2.0
    cy = win.y + win.side / 2.0
    return 2 * int(round((cx - side / 2.0) / 2.0)), 2 * int(round((cy - side / 2.0) / 2.0)), side


def fill_gaps(t: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Values at every frame ``0..n-1`` from samples at frames ``t``, linear between, held at the ends.

    ``values`` is ``(len(t), k)``; returns ``(n, k) float64``.
    """
    t = np.asarray(t, np.float64)
    values = np.asarray(values, np.float64).reshape(len(t), -1)
    frames = np.arange(n, dtype=np.float64)
    return np.stack([np.interp(frames, t, values[:, j]) for j in range(values.shape[1])], axis=1)


def smoothing_kernel(sigma: float, degree: int = 0) -> np.ndarray:
    """Convolution kernel of a Gaussian-weighted local polynomial fit of ``degree`` (0 or 2).

    Degree 0 is a plain Gaussian blur. Degree 2 fits a parabola around each frame, which
    follows a head that speeds up or turns back instead of cutting the corner, for the same
    noise removal (a Savitzky-Golay filter with Gaussian weights).
    """
    radius = int(np.ceil(3 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    if degree == 0:
        return w / w.sum()
    a = np.stack([x**d for d in range(degree + 1)], axis=1)
    return np.linalg.solve(a.T @ (w[:, None] * a), (a * w[:, None]).T)[0]


def smooth(values: np.ndarray, sigma: float, degree: int = 0) -> np.ndarray:
    """Zero-phase smoothing along axis 0 (frames): see :func:`smoothing_kernel`.

    Edges are extended by point reflection, which continues a steady motion past the ends,
    so the first and last frames do not lag a moving face. Offline smoothing has no lag:
    the window neither trails the face nor overshoots it. ``sigma`` is in frames;
    ``sigma <= 0`` returns a copy.
    """
    values = np.asarray(values, np.float64)
    if sigma <= 0 or len(values) < 2:
        return values.copy()
    k = smoothing_kernel(sigma, degree)
    radius = len(k) // 2
    flat = values.reshape(len(values), -1)
    pad = min(radius, len(values) - 1)
    padded = np.pad(flat, [(pad, pad), (0, 0)], mode="reflect", reflect_type="odd")
    if pad < radius:  # very short clip: extend by holding the edge values
        padded = np.pad(padded, [(radius - pad, radius - pad), (0, 0)], mode="edge")
    res = np.stack([np.convolve(padded[:, j], k[::-1], mode="valid") for j in range(flat.shape[1])], axis=1)
    return res.reshape(values.shape)


def track_windows(
    centers: np.ndarray, sizes: np.ndarray, face_fraction: float, face_y: float, sigma_pos: float, sigma_size: float
) -> np.ndarray:
    """Per-frame windows ``(n, 3)`` = x, y, side from per-frame face centres ``(n, 2)`` and sizes ``(n,)``.

    Position follows the face with a local-quadratic smoother; size is smoothed more, with a
    plain Gaussian, so the crop does not breathe.
    """
    c = smooth(centers, sigma_pos, degree=2)
    s = smooth(np.asarray(sizes, np.float64)[:, None], sigma_size)[:, 0]
    side = s / face_fraction
    return np.stack([c[:, 0] - side / 2.0, c[:, 1] - face_y * side, side], axis=1)


def fixed_window(centers: np.ndarray, sizes: np.ndarray, face_fraction: float, face_y: float) -> Window:
    """One window for the whole clip, from the median face position and size (robust to outliers)."""
    cx, cy = np.median(np.asarray(centers, np.float64), axis=0)
    return window_for_face(float(cx), float(cy), float(np.median(sizes)), face_fraction, face_y)


def jitter(windows: np.ndarray) -> float:
    """RMS of the second difference of window centres, in window sides (0 = perfectly smooth)."""
    w = np.asarray(windows, np.float64)
    if len(w) < 3:
        return 0.0
    centre = w[:, :2] + w[:, 2:3] / 2.0
    acc = np.diff(centre, n=2, axis=0) / w[1:-1, 2:3]
    return float(np.sqrt(np.mean(acc**2)))


def affine_to_output(win: Window | np.ndarray, size: int) -> np.ndarray:
    """2x3 matrix mapping display pixels of window ``win`` onto a ``size`` x ``size`` output.

    Uses pixel-centre convention (cv2.warpAffine): output pixel ``i`` samples window
    position ``x + (i + 0.5) * side / size - 0.5``.
    """
    x, y, side = (win.x, win.y, win.side) if isinstance(win, Window) else (float(win[0]), float(win[1]), float(win[2]))
    s = size / side
    return np.array([[s, 0.0, -x * s + 0.5 * s - 0.5], [0.0, s, -y * s + 0.5 * s - 0.5]], np.float64)


def layout_windows(
    t: np.ndarray, centers: np.ndarray, sizes: np.ndarray, n: int, mode: str, face_fraction: float, face_y: float, sigma: float
) -> np.ndarray:
    """Windows ``(n, 3)`` for frames ``0..n-1`` from faces seen at frames ``t`` (``fixed``:
    one window, repeated; ``track``: smoothed per-frame windows, ``sigma`` in frames)."""
    if mode == "fixed":
        x, y, side = integer_window(fixed_window(centers, sizes, face_fraction, face_y))
        return np.tile(np.array([[x, y, side]], np.float64), (n, 1))
    c = fill_gaps(t, centers, n)
    s = fill_gaps(t, np.asarray(sizes)[:, None], n)[:, 0]
    return track_windows(c, s, face_fraction, face_y, sigma, 2 * sigma)
