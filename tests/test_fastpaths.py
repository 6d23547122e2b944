"""The shortcuts taken for speed give the same results as the plain computations."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from prep.align import align, alignment_matrix
from prep.detect import Face
from prep.videoscan import FrameAnalyzer


def _face(cx: float, cy: float, eye: float) -> Face:
    """A face whose landmarks sit where the template puts them, eye distance ``eye`` px."""
    lm = np.array([[-0.5, 0.0], [0.5, 0.0], [0.0, 0.6], [-0.42, 1.05], [0.42, 1.05]], np.float32) * eye + np.array([cx, cy], np.float32)
    return Face((cx - eye, cy - eye, 2 * eye, 2.4 * eye), lm, 0.99)


def _plain_align(image: np.ndarray, face: Face, size: int) -> np.ndarray:
    """Alignment on the whole image, without cutting out the visible region first."""
    m = alignment_matrix(face, size)
    scale = float(np.hypot(m[0, 0], m[0, 1]))
    if scale < 0.5:
        f = 1.0
        while scale / f < 0.5:
            f *= 0.5
        image = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        m = m.copy()
        m[:, 2] += m[:, :2] @ np.full(2, 0.5 / f - 0.5)
        m[:, :2] /= f
    interp = cv2.INTER_LINEAR if scale < 1 else cv2.INTER_CUBIC
    return cv2.warpAffine(image, m, (size, size), flags=interp, borderMode=cv2.BORDER_REFLECT_101)


def _same(a: np.ndarray, b: np.ndarray) -> None:
    """Equal up to warpAffine's fixed-point sub-pixel grid (1/32 px), which moves with the origin."""
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    assert d.max() <= 2 and d.mean() < 0.1, (d.max(), d.mean())


@pytest.mark.parametrize(
    "shape,cx,cy,eye",
    [
        ((1200, 1600, 3), 830.0, 610.0, 60.0),  # small face in a big photo: no pre-shrink
        ((3000, 4000, 3), 1901.3, 1377.7, 420.0),  # large face: area pre-shrink by 2 and 4
        ((3000, 4000), 2101.0, 1499.0, 900.0),  # grey, shrink by 4
        ((600, 800, 3), 40.0, 50.0, 80.0),  # face at the corner: the window leaves the image
    ],
)
def test_align_on_the_visible_region_equals_align_on_the_whole_image(shape, cx, cy, eye):
    rng = np.random.default_rng(1)
    img = cv2.GaussianBlur(rng.integers(0, 256, shape, dtype=np.uint8), (0, 0), 1.2)
    face = _face(cx, cy, eye)
    for size in (256, 512):
        ref = _plain_align(img, face, size)
        _same(align(img, face, size), ref)
        if img.ndim == 3:  # converting the visible region only = converting the whole image first
            grey = lambda a: cv2.cvtColor(a, cv2.COLOR_BGR2GRAY)  # noqa: E731
            _same(align(img, face, size, convert=grey), _plain_align(grey(img), face, size))


class _ListDetector:
    """A detector that finds one face drifting by a pixel per frame (no model needed)."""

    name = "fake"

    def __init__(self):
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        h, w = image.shape[:2]
        return [_face(w / 2 + (self.calls % 7), h / 2, w / 6)]


def test_threaded_run_equals_sequential_steps():
    rng = np.random.default_rng(3)
    frames = [cv2.GaussianBlur(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), (0, 0), 0.5 + (i % 5) * 0.4) for i in range(23)]
    seq = FrameAnalyzer(_ListDetector(), every=2, full_every=1)
    expected = [seq.step(i, fr, force=i == 22) for i, fr in enumerate(frames)]
    got = list(FrameAnalyzer(_ListDetector(), every=2, full_every=1).run(iter(frames), last=22))
    assert [g[0] for g in got] == list(range(23))
    for (i, frame, faces, score), (e_faces, e_score) in zip(got, expected):
        assert frame is frames[i]
        assert (faces is None) == (e_faces is None)
        assert score == e_score
    assert got[22][2] is not None  # the last frame is always analysed


class _BlobDetector:
    """Finds a "face" where the image holds its brightest blob (pixels of 255), if any."""

    name = "blob"

    def __init__(self):
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        ys, xs = np.nonzero(image[:, :, 0] == 255)
        if not len(xs):
            return []
        x0, y0, side = float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1)
        return [_face(x0 + side / 2, y0 + side / 3, side / 2)]


def test_searching_faceless_stretches_sparsely_finds_faces_from_their_first_frame():
    """While no face is known, every 4th analysed frame is searched and a face that appears is
    looked for backwards: the faces and scores equal those of a search on every analysed frame
    (here a face on frames 13-40 and 53-59, which the video ends on), with far fewer searches."""
    rng = np.random.default_rng(5)
    frames = []
    for i in range(60):
        fr = cv2.GaussianBlur(rng.integers(0, 200, (120, 160, 3), dtype=np.uint8), (0, 0), 1.0)
        if 13 <= i <= 40 or i >= 53:
            fr[40:70, 50 + i % 3 : 80 + i % 3] = 255
        frames.append(fr)
    plain, sparse = (FrameAnalyzer(_BlobDetector(), every=2, full_every=6, idle_every=n) for n in (1, 4))
    want, got = list(plain.run(iter(frames))), list(sparse.run(iter(frames)))
    assert [g[0] for g in got] == list(range(60)) and all(g[1] is frames[g[0]] for g in got)
    for (i, _, wf, ws), (_, _, gf, gs) in zip(want, got):
        assert (wf is None) == (gf is None), i
        assert [f.box for f in wf or []] == [f.box for f in gf or []], i
        assert ws == gs or (np.isnan(ws) and np.isnan(gs)), i
    assert [i for i, _, f, _ in got if f] == list(range(14, 41, 2)) + list(range(54, 60, 2))
    # 13 faceless analysed frames: searched one by one, or every 4th plus the looks back
    assert (plain.scanner.detector.calls, sparse.scanner.detector.calls) == (31, 24)


@pytest.mark.parametrize("pad", ["black", "edge", "mirror"])
@pytest.mark.parametrize("size", [128, 512])
def test_warp_of_the_read_region_equals_warp_of_the_whole_frame(pad, size):
    """The track-mode encode pipes only the part of each frame its windows read (the decoder
    crops it); pasted into a frame whose other pixels are anything, every window warps to the
    same bytes as from the whole frame: windows inside, past each edge (a mirrored border reads
    as far in as the window passes), far past one, and large enough to be halved first."""
    from prep.crop.write import BORDERS, read_region, warp_window

    rng = np.random.default_rng(size)
    H, W = 1280, 720
    frame = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    cases = [
        [(200.3, 300.7, 400.0), (230.1, 310.2, 410.5)],  # inside
        [(-91.0, 400.0, 500.0), (-40.0, 420.0, 480.0)],  # past the left edge
        [(420.5, 200.0, 500.0)],  # past the right edge
        [(100.0, -150.2, 450.0)],  # past the top
        [(50.0, 1000.0, 420.0)],  # past the bottom
        [(-400.0, 300.0, 500.0)],  # far past the left: most of the window outside
        [(10.0, 100.0, 700.0), (5.0, 90.0, 690.0)],  # large: halved first at 128 px
    ]
    for windows in cases:
        w = np.array(windows)
        region = read_region(w, W, H, size)
        if region is None:
            continue
        x, y, rw, rh = region
        canvas = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)  # what the decoder did not send
        canvas[y : y + rh, x : x + rw] = frame[y : y + rh, x : x + rw]
        for win in w:
            assert np.array_equal(warp_window(canvas, win, size, BORDERS[pad]), warp_window(frame, win, size, BORDERS[pad])), (windows, region)
    assert read_region(np.array([(-50.0, -50.0, 800.0)]), W, H, size) is not None
    assert read_region(np.array([(-50.0, 0.0, 900.0), (0.0, 500.0, 800.0)]), W, H, size, whole=0.5) is None  # most of the frame: all of it
