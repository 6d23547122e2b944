"""The degradation models, step for step, parameterised by the presets in ``presets/``.

Each model is ``fn(hq, rng, sf, p) -> (hq, lq, steps)``: ``hq`` ``HxWx3 float32`` in [0, 1]
with H and W divisible by ``sf``; the returned ``hq`` is the training target (some models
sharpen it), ``lq`` is exactly ``H/sf x W/sf`` and pixel-aligned with it, and ``steps`` lists
every drawn parameter in order. All randomness comes from ``rng``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import cv2
import numpy as np

from . import functional as F

Steps = list[dict[str, Any]]


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _ri(rng: np.random.Generator, lo: int, hi: int) -> int:
    """Integer in [lo, hi], both included (Python's random.randint)."""
    return int(rng.integers(lo, hi + 1))


def _interp(rng: np.random.Generator) -> int:
    return int(rng.choice([1, 2, 3]))


# ---- BSRGAN -------------------------------------------------------------------------------


def bsrgan_blur(img: np.ndarray, rng: np.random.Generator, sf: int, p: dict, steps: Steps) -> np.ndarray:
    size = 2 * _ri(rng, *p["kernel_half_size"]) + 3
    if rng.random() < p["aniso_prob"]:
        top = p["aniso_var"][0] + p["aniso_var"][1] * sf
        l1, l2, theta = _u(rng, 0, top), _u(rng, 0, top), _u(rng, 0, math.pi)
        k = F.gaussian_kernel(size, F.covariance(l1, l2, theta))
        steps.append({"op": "blur", "kernel": "aniso_gaussian", "size": size, "l1": l1, "l2": l2, "theta": theta})
    else:
        sigma = _u(rng, 0, p["iso_sigma"][0] + p["iso_sigma"][1] * sf)
        k = F.isotropic_sigma_kernel(size, sigma)
        steps.append({"op": "blur", "kernel": "iso_gaussian", "size": size, "sigma": sigma})
    return F.convolve(img, k)


def bsrgan_noise(img: np.ndarray, rng: np.random.Generator, p: dict, steps: Steps, op: str = "gaussian_noise") -> np.ndarray:
    level = _ri(rng, *p["noise_level"])
    u = rng.random()
    mode = "color" if u > p["noise_color_above"] else "gray" if u < p["noise_gray_below"] else "correlated"
    steps.append({"op": op, "level": level, "mode": mode})
    fn = F.gaussian_noise if op == "gaussian_noise" else F.speckle_noise
    return fn(img, rng, level / 255.0, mode, corr_scale=p["noise_level"][1] / 255.0)


def bsrgan_jpeg(img: np.ndarray, rng: np.random.Generator, p: dict, steps: Steps, key: str = "jpeg_quality") -> np.ndarray:
    q = _ri(rng, *p[key])
    steps.append({"op": "jpeg", "quality": q})
    return F.jpeg(img, q)


def bsrgan(hq: np.ndarray, rng: np.random.Generator, sf: int, p: dict) -> tuple[np.ndarray, np.ndarray, Steps]:
    steps: Steps = []
    img = hq
    h, w = hq.shape[:2]
    cur = sf
    if sf == 4 and rng.random() < p["scale2_prob"]:
        if rng.random() < 0.5:
            it = _interp(rng)
            img = F.resize(img, w // 2, h // 2, it)
            steps.append({"op": "halve", "method": F.INTERP_NAMES[it]})
        else:
            img = F.imresize_matlab(img, 0.5)
            steps.append({"op": "halve", "method": "matlab_bicubic"})
        cur = 2
    ah, aw = img.shape[:2]
    order = [int(i) for i in rng.permutation(7)]
    i2, i3 = order.index(2), order.index(3)
    if i2 > i3:
        order[i2], order[i3] = order[i3], order[i2]
    steps.append({"op": "order", "steps": order})
    for op in order:
        if op in (0, 1):
            img = bsrgan_blur(img, rng, cur, p, steps)
        elif op == 2:
            if rng.random() < p["down2_resize_prob"]:
                f, it = _u(rng, 1, 2 * cur), _interp(rng)
                img = F.resize(img, int(img.shape[1] / f), int(img.shape[0] / f), it)
                steps.append({"op": "downsample", "factor": f, "method": F.INTERP_NAMES[it]})
            else:
                sigma = _u(rng, p["down2_gauss_sigma"][0], p["down2_gauss_sigma"][1] * cur)
                k = F.isotropic_sigma_kernel(p["down2_gauss_size"], sigma, shift=-(cur - 1) / 2.0)
                img = np.clip(F.nearest_downsample(F.convolve(img, k), cur), 0, 1)
                steps.append({"op": "downsample", "factor": cur, "method": "gaussian_nearest", "sigma": sigma, "kernel_shift": -(cur - 1) / 2.0})
        elif op == 3:
            it = _interp(rng)
            img = F.resize(img, aw // cur, ah // cur, it)
            steps.append({"op": "downsample_to_target", "method": F.INTERP_NAMES[it]})
        elif op == 4:
            img = bsrgan_noise(img, rng, p, steps)
        elif op == 5:
            if rng.random() < p["jpeg_prob"]:
                img = bsrgan_jpeg(img, rng, p, steps)
        else:
            steps.append({"op": "isp", "skipped": "no camera ISP model"})
    img = bsrgan_jpeg(img, rng, p, steps)
    return hq, _exact(img, w // sf, h // sf, steps), steps


# ---- BSRGAN-plus -------------------------------------------------------------------------


def _bsrgan_plus_resize(img: np.ndarray, rng: np.random.Generator, sf: int, p: dict, steps: Steps) -> np.ndarray:
    u = rng.random()
    if u > p["resize_up_above"]:
        f = _u(rng, 1, 2)
    elif u < p["resize_down_below"]:
        f = _u(rng, 0.5 / sf, 1)
    else:
        f = 1.0
    it = _interp(rng)
    steps.append({"op": "resize", "factor": f, "method": F.INTERP_NAMES[it]})
    return F.resize(img, int(f * img.shape[1]), int(f * img.shape[0]), it)


def bsrgan_plus(hq: np.ndarray, rng: np.random.Generator, sf: int, p: dict) -> tuple[np.ndarray, np.ndarray, Steps]:
    steps: Steps = []
    h, w = hq.shape[:2]
    if p["sharpen_target"]:
        hq = F.usm_sharpen(hq)
        steps.append({"op": "sharpen_target", "weight": 0.5, "radius": 50, "threshold": 10})
    img = hq
    order = [int(i) for i in rng.permutation(11)] if rng.random() < p["shuffle_prob"] else list(range(11))
    steps.append({"op": "order", "steps": order})
    for op in order:
        if op in (0, 6):
            img = bsrgan_blur(img, rng, sf, p, steps)
        elif op in (1, 7):
            img = _bsrgan_plus_resize(img, rng, 4 if op == 1 else sf, p, steps)
        elif op in (2, 8):
            img = bsrgan_noise(img, rng, p, steps)
        elif op in (3, 9):
            if rng.random() < p["poisson_prob"]:
                peak, gray = 10 ** _u(rng, 2, 4), bool(rng.random() < 0.5)
                img = F.poisson_noise(img, rng, peak, gray)
                steps.append({"op": "poisson_noise", "peak": peak, "gray": gray})
        elif op in (4, 10):
            if rng.random() < p["speckle_prob"]:
                img = bsrgan_noise(img, rng, p, steps, op="speckle_noise")
        elif op == 5:
            img = bsrgan_jpeg(img, rng, p, steps)
    it = _interp(rng)
    img = F.resize(img, w // sf, h // sf, it)
    steps.append({"op": "resize_to_target", "method": F.INTERP_NAMES[it]})
    img = bsrgan_jpeg(img, rng, p, steps)
    return hq, img, steps


# ---- Real-ESRGAN ---------------------------------------------------------------------------

_RESIZE_MODES = {"area": 3, "bilinear": 1, "bicubic": 2}


def _mixed_kernel(rng: np.random.Generator, p: dict, sigma_key: str, sinc_key: str, steps: Steps) -> np.ndarray:
    lo, hi = p["kernel_sizes"]
    size = int(rng.choice(np.arange(lo, hi + 1, 2)))
    if rng.random() < p[sinc_key]:
        omega = _u(rng, math.pi / 3, math.pi) if size < 13 else _u(rng, math.pi / 5, math.pi)
        steps.append({"op": "blur", "kernel": "sinc", "size": size, "omega_c": omega})
        return F.sinc_kernel(size, omega, pad_to=hi)
    kind = str(rng.choice(p["kernel_list"], p=np.asarray(p["kernel_prob"]) / np.sum(p["kernel_prob"])))
    s_lo, s_hi = p[sigma_key]
    sx = _u(rng, s_lo, s_hi)
    if kind.endswith("iso") and not kind.endswith("aniso"):
        sy, theta = sx, 0.0
    else:
        sy, theta = _u(rng, s_lo, s_hi), _u(rng, -math.pi, math.pi)
    beta = 1.0
    if kind.startswith(("generalized", "plateau")):  # as BasicSR draws it: below or above 1, half the time each
        b_lo, b_hi = p["betag_range" if kind.startswith("generalized") else "betap_range"]
        beta = _u(rng, b_lo, 1.0) if rng.random() < 0.5 else _u(rng, 1.0, b_hi)
    k = F.gaussian_kernel(size, F.covariance(sx * sx, sy * sy, theta), beta=beta, plateau=kind.startswith("plateau"))
    steps.append({"op": "blur", "kernel": kind, "size": size, "sigma_x": sx, "sigma_y": sy, "theta": theta, "beta": beta})
    return np.pad(k, (hi - size) // 2)


def _esr_resize(img: np.ndarray, rng: np.random.Generator, probs: list[float], rng_range: list[float], base: tuple[int, int], steps: Steps) -> np.ndarray:
    kind = ["up", "down", "keep"][int(rng.choice(3, p=np.asarray(probs) / np.sum(probs)))]
    f = _u(rng, 1, rng_range[1]) if kind == "up" else _u(rng, rng_range[0], 1) if kind == "down" else 1.0
    mode = str(rng.choice(list(_RESIZE_MODES)))
    steps.append({"op": "resize", "direction": kind, "factor": f, "method": mode})
    return F.resize(img, int(base[0] * f), int(base[1] * f), _RESIZE_MODES[mode])


def _esr_noise(img: np.ndarray, rng: np.random.Generator, p: dict, suffix: str, steps: Steps) -> np.ndarray:
    gray = bool(rng.random() < p["gray_noise_prob" + suffix])
    if rng.random() < p["gaussian_noise_prob" + suffix]:
        sigma = _u(rng, *p["noise_range" + suffix])
        steps.append({"op": "gaussian_noise", "sigma": sigma, "gray": gray})
        return F.gaussian_noise(img, rng, sigma / 255.0, "gray" if gray else "color")
    scale = _u(rng, *p["poisson_scale_range" + suffix])
    steps.append({"op": "poisson_noise", "scale": scale, "gray": gray})
    return F.poisson_noise_scaled(img, rng, scale, gray)


def realesrgan(hq: np.ndarray, rng: np.random.Generator, sf: int, p: dict) -> tuple[np.ndarray, np.ndarray, Steps]:
    steps: Steps = []
    h, w = hq.shape[:2]
    target = hq
    if p["sharpen_target"]:
        target = F.usm_sharpen(hq)
        steps.append({"op": "sharpen_target", "weight": 0.5, "radius": 50, "threshold": 10})
    # stage 1, from the target (Real-ESRGAN degrades the sharpened ground truth it trains towards)
    img = F.convolve(target, _mixed_kernel(rng, p, "blur_sigma", "sinc_prob", steps))
    img = _esr_resize(img, rng, p["resize_prob"], p["resize_range"], (img.shape[1], img.shape[0]), steps)
    img = _esr_noise(img, rng, p, "", steps)
    q = _ri(rng, *p["jpeg_range"])
    img = F.jpeg(img, q)
    steps.append({"op": "jpeg", "quality": q})
    # stage 2
    if rng.random() < p["second_blur_prob"]:
        img = F.convolve(img, _mixed_kernel(rng, p, "blur_sigma2", "sinc_prob2", steps))
    img = _esr_resize(img, rng, p["resize_prob2"], p["resize_range2"], (w // sf, h // sf), steps)
    img = _esr_noise(img, rng, p, "2", steps)
    # final: [resize back + sinc] and JPEG, in a random order
    if rng.random() < p["final_sinc_prob"]:
        lo, hi = p["kernel_sizes"]
        size = int(rng.choice(np.arange(lo, hi + 1, 2)))
        omega = _u(rng, math.pi / 3, math.pi)
        sinc = F.sinc_kernel(size, omega, pad_to=hi)
        steps.append({"op": "final_sinc", "size": size, "omega_c": omega})
    else:
        sinc = None
    q2 = _ri(rng, *p["jpeg_range2"])
    mode = str(rng.choice(list(_RESIZE_MODES)))

    def back(x: np.ndarray) -> np.ndarray:
        x = F.resize(x, w // sf, h // sf, _RESIZE_MODES[mode])
        return np.clip(F.convolve(x, sinc), 0, 1) if sinc is not None else x

    if rng.random() < 0.5:
        img = F.jpeg(back(img), q2)
        steps.append({"op": "final", "order": "resize+sinc, jpeg", "method": mode, "quality": q2})
    else:
        img = back(F.jpeg(img, q2))
        steps.append({"op": "final", "order": "jpeg, resize+sinc", "method": mode, "quality": q2})
    return target, img, steps


# ---- GFPGAN / GPEN ------------------------------------------------------------------------


def gfpgan(hq: np.ndarray, rng: np.random.Generator, sf: int, p: dict) -> tuple[np.ndarray, np.ndarray, Steps]:
    steps: Steps = []
    h, w = hq.shape[:2]
    if rng.random() < p["gray_prob"]:  # first, as GPEN's degrade_process does: the grey face is then degraded in colour
        hq = _gray3(hq)
        steps.append({"op": "gray", "both": True})
    size = p["kernel_size"]
    s_lo, s_hi = p["blur_sigma"]
    if rng.random() < p["aniso_prob"]:
        sx, sy, theta = _u(rng, s_lo, s_hi), _u(rng, s_lo, s_hi), _u(rng, -math.pi, math.pi)
        kind = "aniso_gaussian"
    else:
        sx = sy = _u(rng, s_lo, s_hi)
        theta, kind = 0.0, "iso_gaussian"
    img = F.convolve(hq, F.gaussian_kernel(size, F.covariance(sx * sx, sy * sy, theta)))
    steps.append({"op": "blur", "kernel": kind, "size": size, "sigma_x": sx, "sigma_y": sy, "theta": theta})
    f = _u(rng, *p["downsample_range"])
    img = F.resize(img, int(w / f), int(h / f), 1)
    steps.append({"op": "downsample", "factor": f, "method": "linear"})
    sigma = _u(rng, *p["noise_range"])
    img = F.gaussian_noise(img, rng, sigma / 255.0, "color")
    steps.append({"op": "gaussian_noise", "sigma": sigma})
    q = _ri(rng, *p["jpeg_range"])
    img = F.jpeg(img, q)
    steps.append({"op": "jpeg", "quality": q})
    img = F.resize(img, w // sf, h // sf, 1)
    steps.append({"op": "resize_to_target", "method": "linear"})
    return hq, img, steps


def _gray3(img: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return np.repeat(g[:, :, None], 3, axis=2)


def _exact(img: np.ndarray, w: int, h: int, steps: Steps) -> np.ndarray:
    """Guard: the model's own steps give exactly HQ/sf; anything else is resized and noted."""
    if img.shape[:2] != (h, w):
        steps.append({"op": "fix_size", "from": list(img.shape[:2])})
        return F.resize(img, w, h, 2)
    return img


MODELS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray, Steps]]] = {
    "bsrgan": bsrgan,
    "bsrgan-plus": bsrgan_plus,
    "realesrgan": realesrgan,
    "gfpgan": gfpgan,
}
