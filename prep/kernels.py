"""Blur kernels (float32, sum 1, odd square size), shared by blur evaluation and degradations."""

from __future__ import annotations

import cv2
import numpy as np


def motion_kernel(length: float, angle: float, supersample: int = 8) -> np.ndarray:
    """Linear motion blur: a line ``length`` px long at ``angle`` radians (image axes), anti-aliased.

    Drawn on a grid ``supersample`` times finer and area-averaged, so fractional lengths are
    honoured. ``length < 1`` gives the identity kernel.
    """
    if length < 1:
        return np.ones((1, 1), np.float32)
    n = int(np.ceil(length)) + 2
    n += 1 - n % 2
    s = supersample
    big = np.zeros((n * s, n * s), np.float32)
    c = (n * s - 1) / 2.0
    dx, dy = np.cos(angle) * length * s / 2.0, np.sin(angle) * length * s / 2.0
    p0 = (int(round(c - dx)), int(round(c - dy)))
    p1 = (int(round(c + dx)), int(round(c + dy)))
    cv2.line(big, p0, p1, 1.0, thickness=s, lineType=cv2.LINE_AA)
    k = cv2.resize(big, (n, n), interpolation=cv2.INTER_AREA)
    return (k / k.sum()).astype(np.float32)


def disk_kernel(radius: float, supersample: int = 8) -> np.ndarray:
    """Defocus blur: a uniform disk of ``radius`` px, anti-aliased."""
    if radius < 0.5:
        return np.ones((1, 1), np.float32)
    n = 2 * int(np.ceil(radius)) + 3
    s = supersample
    big = np.zeros((n * s, n * s), np.float32)
    cv2.circle(big, ((n * s) // 2, (n * s) // 2), int(round(radius * s)), 1.0, -1, lineType=cv2.LINE_AA)
    k = cv2.resize(big, (n, n), interpolation=cv2.INTER_AREA)
    return (k / k.sum()).astype(np.float32)


def apply_kernel(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve (same size, mirrored borders), keeping the dtype."""
    if kernel.shape == (1, 1):
        return image.copy()
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
