"""Degradation building blocks: plain NumPy/OpenCV functions on float32 images.

Images are ``HxWx3 float32`` in [0, 1] (BGR, like everything in prep); kernels are
``float32``, odd-sized and sum to 1. Every random choice is drawn from the ``rng`` passed in
and returned, so a caller can record it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

INTERP = {1: cv2.INTER_LINEAR, 2: cv2.INTER_CUBIC, 3: cv2.INTER_AREA}
INTERP_NAMES = {1: "linear", 2: "cubic", 3: "area"}


# ---- kernels ------------------------------------------------------------------------------


def _grid(size: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2.0 - shift
    return np.meshgrid(r, r)


def covariance(l1: float, l2: float, theta: float) -> np.ndarray:
    """2x2 covariance with eigenvalues ``l1``, ``l2`` (variances) and main axis at ``theta``."""
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    return rot @ np.diag([max(l1, 1e-6), max(l2, 1e-6)]) @ rot.T


def gaussian_kernel(size: int, cov: np.ndarray, shift: float = 0.0, beta: float = 1.0, plateau: bool = False) -> np.ndarray:
    """Gaussian (``beta`` 1), generalised Gaussian (``beta`` != 1) or plateau kernel.

    ``shift`` moves the kernel's centre ``shift`` px towards the lower right (negative: upper
    left, which keeps a nearest-neighbour subsampling aligned; see :func:`nearest_downsample`).
    """
    x, y = _grid(size, shift)
    inv = np.linalg.inv(cov)
    q = inv[0, 0] * x * x + (inv[0, 1] + inv[1, 0]) * x * y + inv[1, 1] * y * y
    k = 1.0 / (1.0 + q**beta) if plateau else np.exp(-0.5 * q**beta)
    return (k / k.sum()).astype(np.float32)


def isotropic_sigma_kernel(size: int, sigma: float, shift: float = 0.0) -> np.ndarray:
    s = max(sigma, 1e-3)
    return gaussian_kernel(size, np.diag([s * s, s * s]), shift)


def sinc_kernel(size: int, cutoff: float, pad_to: int = 0) -> np.ndarray:
    """Circular low-pass (2-D sinc, ``cutoff`` in radians per pixel), optionally zero-padded."""
    from scipy.special import j1

    x, y = _grid(size)
    r = np.hypot(x, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = cutoff * j1(cutoff * r) / (2 * np.pi * r)
    k[r == 0] = cutoff**2 / (4 * np.pi)
    k = k / k.sum()
    if pad_to > size:
        p = (pad_to - size) // 2
        k = np.pad(k, p)
    return k.astype(np.float32)


def separable_terms(kernel: np.ndarray, tol: float = 1e-7) -> list[tuple[np.ndarray, np.ndarray]]:
    """The kernel as a short sum of outer products (column x row), from its SVD.

    Terms are added until the energy left out is below ``tol`` of the kernel's, so the sum
    differs from the kernel by far less than one 8-bit level in any output; a Gaussian
    kernel needs one to four terms instead of a full 2-D pass.
    """
    u, sv, vt = np.linalg.svd(kernel.astype(np.float64))
    energy = np.cumsum(sv**2) / max(float(np.sum(sv**2)), 1e-30)
    r = int(np.searchsorted(energy, 1.0 - tol) + 1)
    return [((u[:, i] * sv[i]).astype(np.float32), vt[i].astype(np.float32)) for i in range(min(r, len(sv)))]


def convolve(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Same-size convolution with mirrored borders (kernel flipped: a true convolution).

    Large kernels are applied as a few separable passes (:func:`separable_terms`) when that
    is cheaper than one 2-D pass; the result is the same to within float rounding.
    """
    k = kernel[::-1, ::-1]
    n = k.shape[0]
    if n >= 7:
        terms = separable_terms(k)
        if len(terms) * n <= 120:  # measured: one 25-tap pair of passes ~2 ms, a 2-D (DFT) pass ~14 ms at 512 px
            out = None
            for col, row in terms:
                part = cv2.sepFilter2D(img, -1, row, col, borderType=cv2.BORDER_REFLECT_101)
                out = part if out is None else out + part
            return out
    return cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REFLECT_101)


# ---- resampling -----------------------------------------------------------------------------


def resize(img: np.ndarray, w: int, h: int, interp: int) -> np.ndarray:
    """Pixel-centre aligned resize (OpenCV's convention), clipped to [0, 1]."""
    return np.clip(cv2.resize(img, (max(1, w), max(1, h)), interpolation=INTERP[interp]), 0.0, 1.0)


def nearest_downsample(img: np.ndarray, sf: int) -> np.ndarray:
    """Keep every ``sf``-th pixel starting at 0. Pair it with a kernel whose centre is moved
    ``(sf-1)/2`` px up and left (``gaussian_kernel(shift=-(sf-1)/2)``): after the convolution
    each kept pixel then averages around the centre of its ``sf x sf`` cell, so LQ stays
    aligned with HQ (BSRGAN's half-pixel compensation)."""
    return img[::sf, ::sf]


def _cubic(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    return ((1.5 * a**3 - 2.5 * a**2 + 1) * (a <= 1) + (-0.5 * a**3 + 2.5 * a**2 - 4 * a + 2) * ((a > 1) & (a <= 2))).astype(np.float64)


def _weights(n_in: int, n_out: int, scale: float) -> np.ndarray:
    """``n_out x n_in`` bicubic weights; shrinking widens the kernel (antialiasing), as MATLAB's imresize."""
    kscale = min(1.0, scale)
    width = 4.0 / kscale
    x = (np.arange(n_out) + 0.5) / scale - 0.5
    left = np.floor(x - width / 2).astype(int)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    w = kscale * _cubic(kscale * (x[:, None] - idx))
    w /= w.sum(axis=1, keepdims=True)
    idx = np.clip(idx, 0, n_in - 1)  # replicate borders
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.repeat(np.arange(n_out), taps), idx.ravel()), w.ravel())
    return m


def imresize_matlab(img: np.ndarray, scale: float) -> np.ndarray:
    """Bicubic resize with MATLAB imresize's antialiasing when shrinking (BSRGAN's ``imresize_np``)."""
    h, w = img.shape[:2]
    oh, ow = int(math.ceil(h * scale)), int(math.ceil(w * scale))
    wh, ww = _weights(h, oh, scale), _weights(w, ow, scale)
    out = np.einsum("oh,hwc->owc", wh, img.astype(np.float64))
    out = np.einsum("pw,owc->opc", ww, out)
    return np.clip(out, 0, 1).astype(np.float32)


# ---- noise and compression ------------------------------------------------------------------


def noise_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float, mode: str, corr_scale: float | None = None) -> np.ndarray:
    """Zero-mean Gaussian noise for an ``HxWx3`` image. ``mode``: ``color`` (independent per
    channel, std ``sigma``), ``gray`` (one field for all channels) or ``correlated`` (BSRGAN's
    3-channel noise with the random covariance ``corr_scale**2 * U'DU``, D diagonal in [0, 1),
    U a random orthonormal basis)."""
    h, w = shape[:2]
    if mode == "color":
        return rng.standard_normal((h, w, 3), dtype=np.float32) * np.float32(sigma)
    if mode == "gray":
        return rng.standard_normal((h, w, 1), dtype=np.float32) * np.float32(sigma)
    d = np.diag(rng.random(3))
    u, _ = np.linalg.qr(rng.random((3, 3)))
    cov = np.abs((corr_scale if corr_scale is not None else sigma) ** 2 * (u.T @ d @ u))
    return rng.multivariate_normal(np.zeros(3), cov, (h, w), method="svd").astype(np.float32)


def gaussian_noise(img: np.ndarray, rng: np.random.Generator, sigma: float, mode: str, corr_scale: float | None = None) -> np.ndarray:
    """Additive Gaussian noise (see :func:`noise_field`), clipped to [0, 1]."""
    return np.clip(img + noise_field(rng, img.shape, sigma, mode, corr_scale), 0.0, 1.0)


def speckle_noise(img: np.ndarray, rng: np.random.Generator, sigma: float, mode: str, corr_scale: float | None = None) -> np.ndarray:
    """Noise proportional to the signal: ``img + img * n``."""
    img = np.clip(img, 0.0, 1.0)
    return np.clip(img + img * noise_field(rng, img.shape, sigma, mode, corr_scale), 0.0, 1.0)


def poisson_noise(img: np.ndarray, rng: np.random.Generator, scale: float, gray: bool) -> np.ndarray:
    """Shot noise: counts ~ Poisson(img * scale) / scale (``gray``: one field from the luminance)."""
    q = np.clip(np.round(img * 255.0), 0, 255) / 255.0
    if not gray:
        out = rng.poisson(q * scale).astype(np.float32) / scale
    else:
        lum = np.clip(np.round((q @ np.array([0.114, 0.587, 0.299])) * 255.0), 0, 255) / 255.0  # BGR weights
        out = q + (rng.poisson(lum * scale) / scale - lum)[:, :, None]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def poisson_noise_scaled(img: np.ndarray, rng: np.random.Generator, scale: float, gray: bool) -> np.ndarray:
    """BasicSR's Poisson noise: counts at the image's own number of grey levels (rounded up to a
    power of two), the resulting noise multiplied by ``scale``."""
    q = np.clip(np.round(img * 255.0), 0, 255) / 255.0
    src = cv2.cvtColor(q.astype(np.float32), cv2.COLOR_BGR2GRAY)[:, :, None] if gray else q
    levels = int(np.count_nonzero(np.bincount(np.round(src * 255).astype(np.uint8).ravel(), minlength=256)))
    vals = 2 ** math.ceil(math.log2(max(2, levels)))
    noise = rng.poisson(src * vals) / float(vals) - src
    return np.clip(img + (noise * scale).astype(np.float32), 0.0, 1.0)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode as JPEG at ``quality`` (8-bit round trip)."""
    u8 = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0


def usm_sharpen(img: np.ndarray, weight: float = 0.5, radius: int = 50, threshold: float = 10) -> np.ndarray:
    """Unsharp masking applied only where detail exceeds ``threshold`` (0-255 scale), softly masked."""
    if radius % 2 == 0:
        radius += 1
    blur = cv2.GaussianBlur(img, (radius, radius), 0)
    residual = img - blur
    mask = (np.abs(residual) * 255 > threshold).astype(np.float32)
    soft = cv2.GaussianBlur(mask, (radius, radius), 0)
    sharp = np.clip(img + weight * residual, 0, 1)
    return (soft * sharp + (1 - soft) * img).astype(np.float32)


def to_float(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) / 255.0


def to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
