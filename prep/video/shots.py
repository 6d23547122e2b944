"""Shot boundaries, found from the frames the analysis pass already decodes.

Hard cuts come from PySceneDetect's ``AdaptiveDetector`` (a content change far above its
neighbours'), fed frame by frame. PySceneDetect's content detectors miss gradual transitions:
in a dissolve every frame differs only a little from the last. :class:`DissolveDetector` finds
them (fades to and from black included) by what a dissolve is: each frame a blend of the
frames before and after it. Over a span of ``2K`` frames it compares the middle frame with the
mean of the two ends, on small thumbnails:

* the ends differ a lot (``d = mean|f[c+K] - f[c-K]| >= D_MIN`` grey levels): the picture is
  replaced, not just moving;
* the middle is their mean (``|f[c] - (f[c-K] + f[c+K]) / 2| <= LINEAR * d``): a blend. A moving
  head or camera moves edges, and the middle frame is then no mean of the ends;
* no single step carries the change (each frame-to-frame difference ``<= STEP * d``): not a cut;
* no motion explains the change (:func:`moved_difference` ``>= D_MIN``: each block of the
  picture is allowed its own small shift): a camera panning over smooth surfaces, or a head
  moving over a still background, is also a near-linear change, but a moved one.

Measured on the shared clips (25 fps, K = 10, thumbnails 32 px on their longer side): a 1 s crossfade between two
talking heads gives d = 29-41 with the middle within 0.17-0.25 d of the mean; the six real
talking-head clips (camera motion, head turns, zooms) give no span that passes (d at most 17).

Frames inside a transition belong to no shot. Shots are half-open frame ranges
``[start, end)`` on the analysis timeline (frame ``i`` at ``i / fps`` seconds).
"""

from __future__ import annotations

import bisect
import itertools

from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

THUMB = 32  # px, longer side of the thumbnails (the frame's shape kept): noise and fine motion average out
SIDE = 160  # px, about the longer side of the frames the cut detector sees (its scores are pixel means: size-free)
SPAN_SECONDS = 0.4  # K, in seconds: half the span over which a blend is looked for
D_MIN = 20.0  # grey levels (0-255): mean change between the span's ends
LINEAR = 0.3  # the middle frame's distance from the ends' mean, as a share of d
STEP = 0.5  # the largest frame-to-frame change, as a share of d
SHIFT = 3  # px on the thumbnail: motion up to about 10% of the frame is tried as an explanation
GRID = 3  # blocks per side that may move on their own (a head over a still background)
ADAPTIVE_WINDOW = 2  # frames each side PySceneDetect's AdaptiveDetector compares a frame with (its default): it reports a cut that late


@dataclass(frozen=True)
class Transition:
    """Frames ``[start, end)`` that belong to no shot; a hard cut has ``start == end`` (the
    new shot begins at ``start``)."""

    start: int
    end: int
    kind: str  # cut | dissolve

    def to_dict(self, fps: float) -> dict:
        return {"kind": self.kind, "start": round(self.start / fps, 3), "end": round(self.end / fps, 3), "frames": [self.start, self.end]}


@dataclass
class Shots:
    """The result of shot detection for ``n`` analysis frames."""

    n: int
    fps: float
    transitions: list[Transition] = field(default_factory=list)

    @property
    def ranges(self) -> list[tuple[int, int]]:
        """Shots as ``[start, end)`` frame ranges, transitions left out."""
        out, pos = [], 0
        for t in sorted(self.transitions, key=lambda t: t.start):
            if t.start > pos:
                out.append((pos, t.start))
            pos = max(pos, t.end)
        if pos < self.n:
            out.append((pos, self.n))
        return out

    @property
    def cuts(self) -> list[float]:
        """Seconds at which a new shot begins (a dissolve counted at its middle)."""
        return [round((t.start + t.end) / 2 / self.fps, 3) for t in self.transitions]

    def seconds(self) -> list[list[float]]:
        return [[round(a / self.fps, 3), round(b / self.fps, 3)] for a, b in self.ranges]

    def to_dict(self) -> dict:
        return {"shots": self.seconds(), "transitions": [t.to_dict(self.fps) for t in self.transitions]}


class DissolveDetector:
    """Feed frames in order; :meth:`finish` gives the dissolve ranges."""

    def __init__(self, fps: float):
        self.k = max(2, int(round(SPAN_SECONDS * fps)))
        self._thumbs: deque = deque(maxlen=2 * self.k + 1)
        self._steps: deque = deque(maxlen=2 * self.k)
        self._runs: list[list[int]] = []

    def feed(self, index: int, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        size = (THUMB, max(8, round(THUMB * h / w))) if w >= h else (max(8, round(THUMB * w / h)), THUMB)
        t = cv2.resize(frame, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        if self._thumbs:
            self._steps.append(float(np.mean(np.abs(t - self._thumbs[-1]))))
        self._thumbs.append(t)
        if len(self._thumbs) < self._thumbs.maxlen:
            return
        a, m, b = self._thumbs[0], self._thumbs[self.k], self._thumbs[-1]
        d = float(np.mean(np.abs(b - a)))
        if d < D_MIN or max(self._steps) > STEP * d:
            return
        if float(np.mean(np.abs(m - (a + b) / 2))) > LINEAR * d or moved_difference(a, b) < D_MIN:
            return
        centre = index - self.k
        if self._runs and centre - self._runs[-1][1] <= 1:
            self._runs[-1][1] = centre
        else:
            self._runs.append([centre, centre])

    def finish(self) -> list[tuple[int, int]]:
        """Dissolves as ``[start, end)``: the frames whose span passed, widened by half a span
        (a span's middle passes only once the blend reaches into both of its halves)."""
        grow = self.k // 2 + 1
        return [(max(0, a - grow), b + grow + 1) for a, b in self._runs]


def moved_difference(a: np.ndarray, b: np.ndarray, shift: int = SHIFT, grid: int = GRID) -> float:
    """How much of the change from ``a`` to ``b`` no motion explains: each block of a
    ``grid`` x ``grid`` division is matched with ``b`` moved by up to ``shift`` px, its best
    mean difference kept, and the blocks averaged. Independent blocks let a head move over a
    still background, or a camera zoom, be explained; a new picture cannot be."""
    h, w = a.shape[:2]
    ys = np.linspace(0, h, grid + 1).astype(int)
    xs = np.linspace(0, w, grid + 1).astype(int)
    pa = np.pad(a, ((shift, shift), (shift, shift), (0, 0)), mode="edge")
    best = np.full((grid, grid), np.inf)
    for dy in range(-shift, shift + 1):
        for dx in range(-shift, shift + 1):
            diff = np.abs(pa[shift + dy : shift + dy + h, shift + dx : shift + dx + w] - b).mean(axis=2)
            for r in range(grid):
                for c in range(grid):
                    best[r, c] = min(best[r, c], float(diff[ys[r] : ys[r + 1], xs[c] : xs[c + 1]].mean()))
    return float(best.mean())


class ShotDetector:
    """Hard cuts (PySceneDetect) and dissolves (:class:`DissolveDetector`), one frame at a time."""

    def __init__(self, fps: float, min_shot_seconds: float = 0.5):
        from scenedetect.detectors import AdaptiveDetector

        self.fps = float(fps)
        self._cuts: list[int] = []
        self._adaptive = AdaptiveDetector(min_scene_len=max(1, int(round(min_shot_seconds * fps))), window_width=ADAPTIVE_WINDOW)
        self._dissolve = DissolveDetector(fps)
        self._last = -1
        self._cut_key: tuple | None = None  # what _cut_trans was made from: called on every frame, it must not redo it
        self._cut_trans: list[Transition] = []
        self._cut_at: list[int] = []

    def _tc(self, index: int):
        from scenedetect.common import FrameTimecode

        return FrameTimecode(index, fps=self.fps)

    def feed(self, index: int, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        k = max(h, w) // SIDE
        if k > 1:  # a whole-number factor: OpenCV's fast area path
            frame = cv2.resize(frame[: h - h % k, : w - w % k], ((w - w % k) // k, (h - h % k) // k), interpolation=cv2.INTER_AREA)
        self._last = index
        self._cuts += [int(tc.frame_num) for tc in self._adaptive.process_frame(self._tc(index), frame)]
        self._dissolve.feed(index, frame)

    @property
    def delay(self) -> int:
        """Frames after which a frame's shot is final: a cut is reported ``ADAPTIVE_WINDOW``
        frames late, and a dissolve found at frame ``i`` begins at most ``k`` (half its span) plus
        the widening (``k // 2 + 1``) frames before ``i``; a cut next to one is dropped."""
        return self._dissolve.k + self._dissolve.k // 2 + 1 + ADAPTIVE_WINDOW + 2

    def settled(self, fed: int) -> tuple[int, Shots]:
        """While frames ``[0, fed)`` have been fed: ``(f, shots)``, where the shots of frames
        ``[0, f)`` are those :meth:`finish` will give (a shot that reaches ``f`` may still
        end later). Safe to call while :meth:`feed` runs on another thread, as long as
        frames ``[0, fed)`` have gone through it."""
        return max(0, fed - self.delay), self._shots(fed)

    def finish(self, n: int) -> Shots:
        if self._last >= 0:
            self._cuts += [int(tc.frame_num) for tc in self._adaptive.post_process(self._tc(self._last))]
        return self._shots(n)

    def _shots(self, n: int) -> Shots:
        found = self._dissolve.finish()
        dissolves = [(a, min(b, n)) for a, b in found]
        key = (len(self._cuts), tuple(found))
        if self._cut_key != key:  # the cuts outside dissolves, worked out again only when either changed
            # a content detector can fire inside a dissolve (its steepest step): the dissolve stands
            # for it (c < n, so a dissolve cut short at n covers c as the whole one does)
            starts = [a for a, _ in found]  # in order; widened, neighbours may overlap: the furthest end so far counts
            reach = list(itertools.accumulate((b for _, b in found), max))

            def inside(c: int) -> bool:
                k = bisect.bisect_right(starts, c + 1) - 1
                return k >= 0 and c <= reach[k] + 1

            kept = [c for c in sorted(set(self._cuts)) if c > 0 and not inside(c)]
            self._cut_trans, self._cut_at = [Transition(c, c, "cut") for c in kept], kept
            self._cut_key = key
        cuts = self._cut_trans[: bisect.bisect_left(self._cut_at, n)]
        trans = cuts + [Transition(a, b, "dissolve") for a, b in dissolves]
        return Shots(n, self.fps, sorted(trans, key=lambda t: t.start))


def find_shots(frames, fps: float) -> Shots:
    """Shots of a sequence of frames (an iterable of ``HxWx3 uint8``), for tests and tools."""
    det = ShotDetector(fps)
    n = 0
    for i, frame in enumerate(frames):
        det.feed(i, frame)
        n = i + 1
    return det.finish(n)
