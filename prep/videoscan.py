"""One pass over a video's frames: faces on every n-th frame, a blur score on every frame.

Shared by ``crop`` (analysis pass), ``frames`` and ``blur``. Faces are found with
:class:`~prep.detect.scan.FaceScanner`; between analysed frames, the blur score uses the
face last found (a face moves little in a frame or two, and the score is an energy ratio
over the whole face, not a pixel-exact measure).

:meth:`FrameAnalyzer.run` scores blur (and runs the caller's per-frame work, such as shot detection) on a second thread while the next frames are searched
for faces: both are OpenCV and NumPy work that releases the GIL, so a second core is used.
At most ``AHEAD`` frames wait for their score, so memory stays bounded.

Where no face is known (b-roll, title cards, an empty room), :meth:`FrameAnalyzer.run` searches
only every ``idle_every``-th analysed frame and holds the frames in between (a few small frames:
memory stays bounded). When a search finds a face, the held frames are searched backwards until
one shows none, so a face is found from the frame it appears on, as a search of every frame
would find it; what is skipped is a face seen on fewer than ``idle_every`` analysed frames in a
row between two searches, far shorter than any segment or track prep keeps.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator

import numpy as np

from .blur import blur_score
from .detect import Detector, Face, main_face
from .detect.scan import FaceScanner

AHEAD = 4
IDLE_EVERY = 4  # while no face is known, a full search on every 4th analysed frame (see run)
# New-shot check: mean absolute difference of 32x32 grey thumbnails of consecutive frames (0-255)
# above which the next face search covers the whole frame. Within a shot, even with camera
# motion, neighbouring frames differ far less; a false alarm costs one full search.
CUT_DIFF = 12.0


class FrameAnalyzer:
    def __init__(self, detector: Detector, every: int = 1, face_px: int = 112, full_every: int = 12, blur: bool = True, min_relative: float | None = None, search_new_shots: bool = False, idle_every: int = IDLE_EVERY):
        """``search_new_shots``: a full-frame search on the first frame of a new shot, so faces
        are exact from the first frame after a cut (``frames --person``). ``idle_every``: while
        no face is known, :meth:`run` searches every so many analysed frames (1: every one)."""
        self.scanner = FaceScanner(detector, face_px, full_every, **({} if min_relative is None else {"min_relative": min_relative}))
        self.every = max(1, every)
        self.blur = blur
        self.search_new_shots = search_new_shots
        self.idle_every = max(1, idle_every)
        self._thumb: np.ndarray | None = None
        self._face: Face | None = None

    def detect(self, index: int, frame: np.ndarray, force: bool = False) -> list[Face] | None:
        """Faces on ``frame`` when it is one to analyse (every ``every``-th, or ``force``), else ``None``."""
        if not (force or index % self.every == 0):
            return None
        faces = self.scanner.scan(frame, full=self.search_new_shots and self._new_shot(frame))
        self._face = main_face(faces)
        return faces

    def _new_shot(self, frame: np.ndarray) -> bool:
        import cv2

        step = max(1, min(frame.shape[:2]) // 128)  # every step-th pixel is plenty for a 32 px thumbnail
        small = np.ascontiguousarray(frame[::step, ::step])
        thumb = cv2.resize(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
        prev, self._thumb = self._thumb, thumb
        return prev is not None and float(np.mean(np.abs(thumb - prev))) > CUT_DIFF

    def score(self, frame: np.ndarray, face: Face | None) -> float:
        return blur_score(frame, face).score if (self.blur and face is not None) else float("nan")

    def _background(self, index: int, frame: np.ndarray, face: Face | None, also: Callable[[int, np.ndarray], None] | None) -> float:
        if also is not None:
            also(index, frame)
        return self.score(frame, face)

    def step(self, index: int, frame: np.ndarray, force: bool = False) -> tuple[list[Face] | None, float]:
        """Faces (``None`` when this frame was not analysed) and the blur score (NaN without a face)."""
        faces = self.detect(index, frame, force)
        return faces, self.score(frame, self._face)

    def run(self, frames: Iterable[np.ndarray], last: int | None = None, also: Callable[[int, np.ndarray], None] | None = None) -> Iterator[tuple[int, np.ndarray, list[Face] | None, float]]:
        """``(index, frame, faces, score)`` for each frame, in order; frame ``last`` is always
        analysed. ``also(index, frame)`` (shot detection, ...) runs on the second thread too,
        called for every frame in order. While no face is known, only every ``idle_every``-th
        analysed frame is searched (the module's docstring says how a face that appears is
        still found from its first frame); at most ``idle_every * every`` frames are held."""
        pending: deque = deque()
        held: list[tuple[int, np.ndarray, bool]] = []  # (index, frame, analysed), read while no face is known
        since = self.idle_every  # analysed frames since the last search: the first one is searched
        with ThreadPoolExecutor(1) as pool:

            def emit(i: int, frame: np.ndarray, faces: list[Face] | None) -> None:
                if faces is not None:
                    self._face = main_face(faces)
                pending.append((i, frame, faces, pool.submit(self._background, i, frame, self._face, also)))

            for i, frame in enumerate(frames):
                if not (i % self.every == 0 or i == last):
                    if held:
                        held.append((i, frame, False))
                    else:
                        emit(i, frame, None)
                else:
                    new_shot = self.search_new_shots and self._new_shot(frame)
                    if self.scanner.known or new_shot or i == last or since + 1 >= self.idle_every:
                        faces = self.scanner.scan(frame, full=new_shot)
                        since = 0
                        back = self._look_back(held) if faces and held else {}
                        for j, f, analysed in held:
                            emit(j, f, back.get(j, []) if analysed else None)
                        held.clear()
                        emit(i, frame, faces)
                    else:
                        self.scanner.skip()
                        since += 1
                        held.append((i, frame, True))
                while len(pending) > AHEAD:
                    yield _done(pending.popleft())
            if held:  # the video ended while no face was known: its last held analysed frame is searched too
                k = max(n for n, (_, _, analysed) in enumerate(held) if analysed)
                faces = self.scanner.search(held[k][1])
                back = {held[k][0]: faces, **(self._look_back(held[:k]) if faces else {})}
                for j, f, analysed in held:
                    emit(j, f, back.get(j, []) if analysed else None)
            while pending:
                yield _done(pending.popleft())

    def _look_back(self, held: list[tuple[int, np.ndarray, bool]]) -> dict[int, list[Face]]:
        """Faces on the held analysed frames, searched from the newest back to the first that shows none."""
        found: dict[int, list[Face]] = {}
        for j, frame, analysed in reversed(held):
            if analysed:
                faces = self.scanner.search(frame)
                if not faces:
                    break
                found[j] = faces
        return found


def _done(item: tuple) -> tuple[int, np.ndarray, list[Face] | None, float]:
    i, frame, faces, future = item
    return i, frame, faces, future.result()
