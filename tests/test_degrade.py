"""Degradation models: drawn parameters in their published ranges with their probabilities,
LQ aligned with HQ, exact sizes, and the same bytes for the same seed."""

from __future__ import annotations

from collections import Counter

import cv2
import numpy as np
import pytest

from prep.degrade import DEGRADATIONS, degrade, load_params
from prep.degrade import functional as F

pytestmark = pytest.mark.same_everywhere  # CI's fresh pass leaves it to the first (conftest.py)

N = 300  # draws per model


def texture(size: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), 2.0)
    x = (x - x.min()) / (x.max() - x.min())
    return (x * 255).astype(np.uint8)


def draws(model: str, sf: int, n: int = N, size: int = 64) -> list[list[dict]]:
    p = load_params(model)
    img = texture(size)
    return [degrade(img, np.random.default_rng(i), sf, p)[2] for i in range(n)]


def ops(runs: list[list[dict]], name: str) -> list[dict]:
    return [s for r in runs for s in r if s["op"] == name]


def frac(cond: list[bool]) -> float:
    return float(np.mean(cond))


@pytest.mark.parametrize("model", DEGRADATIONS)
@pytest.mark.parametrize("sf", [1, 2, 4])
def test_sizes_exact(model, sf):
    img = texture(96)
    hq, lq, _ = degrade(img, np.random.default_rng(1), sf, load_params(model))
    assert hq.shape == img.shape and lq.shape == (96 // sf, 96 // sf, 3)
    assert hq.dtype == lq.dtype == np.uint8


def test_bsrgan_ranges_and_probabilities():
    runs = draws("bsrgan", 4)
    blurs = ops(runs, "blur")
    assert all(7 <= b["size"] <= 25 and b["size"] % 2 for b in blurs)
    assert {b["size"] for b in blurs} == set(range(7, 26, 2))
    halved = [any(s["op"] == "halve" for s in r) for r in runs]
    assert 0.18 < frac(halved) < 0.32  # scale2_prob 0.25
    for r, h in zip(runs, halved):
        cur = 2 if h else 4
        for b in (s for s in r if s["op"] == "blur"):
            if b["kernel"] == "aniso_gaussian":
                assert 0 <= b["l1"] <= 4 + cur and 0 <= b["l2"] <= 4 + cur and 0 <= b["theta"] <= np.pi
            else:
                assert 0 <= b["sigma"] <= 2 + 0.2 * cur
    assert 0.42 < frac([b["kernel"] == "aniso_gaussian" for b in blurs]) < 0.58
    noise = ops(runs, "gaussian_noise")
    assert len(noise) == N and all(2 <= n["level"] <= 25 for n in noise)
    modes = Counter(n["mode"] for n in noise)
    assert abs(modes["color"] / N - 0.4) < 0.08 and abs(modes["gray"] / N - 0.4) < 0.08 and abs(modes["correlated"] / N - 0.2) < 0.07
    jpegs = ops(runs, "jpeg")
    assert all(30 <= j["quality"] <= 95 for j in jpegs)
    assert 0.85 < (len(jpegs) - N) / N < 0.95  # one final JPEG always, one in the shuffle at p 0.9
    downs = ops(runs, "downsample")
    assert 0.68 < frac([d["method"] != "gaussian_nearest" for d in downs]) < 0.82
    assert all(1 <= d["factor"] <= 8 for d in downs if d["method"] != "gaussian_nearest")
    for r in runs:  # downsample2 always before downsample3
        order = next(s for s in r if s["op"] == "order")["steps"]
        assert sorted(order) == list(range(7)) and order.index(2) < order.index(3)


def test_bsrgan_plus_probabilities():
    runs = draws("bsrgan-plus", 4)
    shuffled = [next(s for s in r if s["op"] == "order")["steps"] != list(range(11)) for r in runs]
    assert 0.05 < frac(shuffled) < 0.16
    assert all(r[0]["op"] == "sharpen_target" for r in runs)
    assert 0.05 < len(ops(runs, "poisson_noise")) / (2 * N) < 0.16  # two slots at p 0.1
    assert 0.05 < len(ops(runs, "speckle_noise")) / (2 * N) < 0.16
    assert all(100 <= p["peak"] <= 10000 for p in ops(runs, "poisson_noise"))
    resizes = ops(runs, "resize")
    assert all(0.5 / 4 <= r["factor"] <= 2 for r in resizes)


def test_realesrgan_ranges_and_probabilities():
    p = load_params("realesrgan")
    runs = draws("realesrgan", 4)
    blurs = ops(runs, "blur")
    first = [next(s for s in r if s["op"] == "blur") for r in runs]
    assert 0.05 < frac([b["kernel"] == "sinc" for b in first]) < 0.15
    kinds = Counter(b["kernel"] for b in first if b["kernel"] != "sinc")
    total = sum(kinds.values())
    for k, prob in zip(p["kernel_list"], p["kernel_prob"]):
        assert abs(kinds[k] / total - prob) < 0.08, (k, kinds)
    for b in blurs:
        assert 7 <= b["size"] <= 21 and b["size"] % 2
        if b["kernel"].startswith("generalized"):
            assert 0.5 <= b["beta"] <= 4
        if b["kernel"].startswith("plateau"):
            assert 1 <= b["beta"] <= 2
    assert all(0.2 <= b["sigma_x"] <= 3 for b in first if b["kernel"] != "sinc")
    second = [len([s for s in r if s["op"] == "blur"]) == 2 for r in runs]
    assert 0.72 < frac(second) < 0.88  # second_blur_prob 0.8
    res = ops(runs, "resize")
    first_resize = [next(s for s in r if s["op"] == "resize") for r in runs]
    dirs = Counter(r["direction"] for r in first_resize)
    assert abs(dirs["up"] / N - 0.2) < 0.07 and abs(dirs["down"] / N - 0.7) < 0.08
    assert all(0.15 <= r["factor"] <= 1.5 for r in first_resize)
    second_resize = [[s for s in r if s["op"] == "resize"][1] for r in runs]
    assert all(0.3 <= r["factor"] <= 1.2 for r in second_resize) and len(res) == 2 * N
    assert 0.72 < len(ops(runs, "final_sinc")) / N < 0.88
    g = ops(runs, "gaussian_noise")
    assert all(1 <= n["sigma"] <= 30 for n in g) and 0.4 < len(g) / (2 * N) < 0.6
    assert all(0.05 <= n["scale"] <= 3 for n in ops(runs, "poisson_noise"))
    assert all(30 <= s["quality"] <= 95 for s in ops(runs, "jpeg") + ops(runs, "final"))


def test_gfpgan_ranges_and_probabilities():
    runs = draws("gfpgan", 1)
    b = ops(runs, "blur")
    assert all(x["size"] == 41 and 0.1 <= x["sigma_x"] <= 10 and 0.1 <= x["sigma_y"] <= 10 for x in b)
    assert 0.40 < frac([x["kernel"] == "aniso_gaussian" for x in b]) < 0.60
    assert all(0.8 <= d["factor"] <= 8 for d in ops(runs, "downsample"))
    assert all(0 <= n["sigma"] <= 20 for n in ops(runs, "gaussian_noise"))
    assert all(60 <= j["quality"] <= 100 for j in ops(runs, "jpeg"))
    assert 0.14 < len(ops(runs, "gray")) / N < 0.26


@pytest.mark.parametrize("sf", [2, 4])
def test_shifted_kernel_keeps_nearest_subsampling_aligned(sf):
    hq = np.zeros((64, 64, 3), np.float32)
    cv2.circle(hq, (31, 27), 4, (1, 1, 1), -1)
    hq = cv2.GaussianBlur(hq, (0, 0), 2)

    def centroid(img):
        g = img[:, :, 0]
        ys, xs = np.mgrid[: g.shape[0], : g.shape[1]]
        return np.array([(xs * g).sum(), (ys * g).sum()]) / g.sum()

    c_hq = centroid(hq)
    for shift, ok in ((-(sf - 1) / 2.0, True), (0.0, False)):  # centre moved up-left, as BSRGAN does
        lq = F.nearest_downsample(F.convolve(hq, F.isotropic_sigma_kernel(25, 0.5 * sf, shift)), sf)
        err = np.abs((centroid(lq) + 0.5) * sf - 0.5 - c_hq).max()
        assert (err < 0.25) == ok, (shift, err)


@pytest.mark.parametrize("model", DEGRADATIONS)
def test_lq_is_aligned_with_hq(model):
    p = load_params(model)
    img = texture(128, seed=3)
    shifts = []
    for i in range(12):
        hq, lq, _ = degrade(img, np.random.default_rng(100 + i), 4, p)
        up = cv2.resize(lq, (128, 128), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        a = cv2.GaussianBlur(cv2.cvtColor(hq, cv2.COLOR_BGR2GRAY).astype(np.float32), (0, 0), 3)
        b = cv2.GaussianBlur(cv2.cvtColor(up, cv2.COLOR_BGR2GRAY), (0, 0), 3)
        (dx, dy), resp = cv2.phaseCorrelate(a, b)
        if resp > 0.2:
            shifts.append(np.hypot(dx, dy))
    assert len(shifts) >= 6
    assert np.median(shifts) < 0.5, shifts


def test_same_seed_same_bytes():
    p = load_params("bsrgan")
    img = texture(64)
    a = degrade(img, np.random.default_rng([1, 2]), 2, p)
    b = degrade(img, np.random.default_rng([1, 2]), 2, p)
    assert a[1].tobytes() == b[1].tobytes() and a[2] == b[2]


def test_imresize_matlab_halves_smoothly():
    img = np.zeros((8, 8, 3), np.float32)
    img[:, ::2] = 1.0  # finest stripes: antialiasing averages them away
    out = F.imresize_matlab(img, 0.5)
    assert out.shape == (4, 4, 3) and np.allclose(out[1:-1, 1:-1], 0.5, atol=0.02)
