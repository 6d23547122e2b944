"""--split: the speech model's face crops of every face track, cut in the analysis pass.

Which faces make a track, and where the shots end, is settled a little after the frames are
seen: the tracks are linked frame by frame as :func:`prep.video.tracks.face_tracks` links
them (:class:`~prep.video.tracks.Linker`, one per shot), on the frames whose shot is already
final (:meth:`~prep.video.shots.ShotDetector.settled`, under a second behind the pass). A
track's box at a speech frame is its boxes interpolated and median-smoothed over 13 frames,
exactly as :func:`prep.speech.track.tracks_embeddings` computes them over the whole track; a
frame is cropped as soon as the boxes its median reads are final, and the last frames when the
track ends (it is not seen for ``max_gap`` frames, or its shot ends). Crops wait (112 x 112
bytes each) until the track is long enough to be heard, then go through the visual model as
they come; a track that ends too short costs no model time.

After the pass, :meth:`SplitCrops.track` hands a track's embeddings over only when its faces,
frames and span are exactly those of the track planning found; any other track (and, if the
pass gave up, those it was following then and all after) is decoded again as before, so the
results never depend on this.
Memory: the small grey frames from the oldest frame an open track still needs to the newest
(about 2.5 s of them: a track may go unseen for ``max_gap`` frames), bounded by ``max_frames``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from typing import Any, Callable

import cv2
import numpy as np

from ..decode import scaled_size
from ..detect import Face
from ..probe import VideoInfo
from ..speech import track as sp
from ..speech.crops import MEDIAN, face_crop
from .shots import ShotDetector, Shots
from .tracks import REAL_SCORE, Linker, Track

H = MEDIAN // 2
FROM_START = 3  # tracks followed from the clip's start on the one-clip path (see SplitCrops)
LATE = 50  # frames: on that path a face that appears this late is still followed (as PassCrops waits)
PROBES, PROBE_STEP = 5, 10  # --person: a followed face is judged on up to 5 frames 10 frames apart


class _Open:
    """A track being followed: its speech frames from ``j0`` (its first frame), the crops cut
    so far (waiting, or pushed into its visual stream) and the smoothed sides."""

    def __init__(self, track: Track, j0: int | None = None):
        """``j0``: the first speech frame, when not the track's first (the one-clip path's
        span begins at frame 0; frames before the face's first take its first box)."""
        self.track = track
        self.j0 = track.frames[0] if j0 is None else j0
        self.next = self.j0  # next speech frame to crop
        self.held: list[np.ndarray] = []  # crops waiting until the track is long enough to be heard
        self.stream: sp.VisualStream | None = None
        self.sides: list[float] = []
        self.first_box: np.ndarray | None = None  # the smoothed box of frame j0 + H (frames before it take it)
        self.tries = 0  # --person: frames its face was judged on, and the similarities found
        self.sims: list[float] = []
        self.cleared = True  # may go to the model (False while a judge has not decided)

    def not_the_person(self, floor: float) -> bool:
        """--person: its face judged, and its median similarity under ``floor``."""
        return bool(self.sims) and float(np.median(self.sims)) < floor

    def to_model(self, model: Any) -> None:
        """From now on the crops go through the visual model, the waiting ones first."""
        if self.stream is None:
            self.stream = sp.VisualStream(model)
            for c in self.held:
                self.stream.push(c)
            self.held = []

    def box(self, j: int, n: int | None) -> np.ndarray | None:
        """The smoothed box of speech frame ``j`` (``n``: the track's frame count once it ended),
        or ``None`` until the boxes it reads are final."""
        m = j - self.j0
        if n is not None and n <= 2 * H:  # shorter than the median window: one box for all
            return np.median(self._interp(range(n)), axis=0)
        c = max(m, H) if n is None else min(max(m, H), n - 1 - H)
        if n is None and self.j0 / sp.RATE + (c + H) / sp.RATE > self.track.frames[-1] / sp.RATE:
            # the window reaches past the last analysed box: not final yet (compared as the
            # times are, j0 / 25 + m / 25 against the box's frame / 25: a rounding step can
            # put a frame's time just past its own box's)
            return None
        if c == H and self.first_box is not None:
            return self.first_box
        box = np.median(self._interp(range(c - H, c + H + 1)), axis=0)
        if c == H:
            self.first_box = box
        return box

    def _interp(self, ms: range) -> np.ndarray:
        """Interpolated boxes at speech frames ``j0 + m`` (times exactly as
        :func:`prep.speech.track.tracks_embeddings` computes them), from the nodes around them."""
        frames = self.track.frames
        t = self.j0 / sp.RATE + np.arange(ms.start, ms.stop) / sp.RATE
        # the nodes around them, and one more each side: a time computed as j0 / 25 + m / 25
        # may fall an ulp short of its node's, and must find the same interval as with all nodes
        lo = max(0, bisect_right(frames, self.j0 + ms.start) - 2)
        hi = min(len(frames), bisect_left(frames, self.j0 + ms.stop - 1) + 2)
        faces = self.track.faces[lo:hi]
        times = np.asarray(frames[lo:hi], np.float64) / sp.RATE
        boxes = np.array([[*f.center, f.size] for f in faces], np.float64)
        return sp.boxes_at(t, times, boxes)


class SplitCrops:
    """Feed the pass's frames in order (:meth:`feed`), then :meth:`finish`; :meth:`track`
    gives a planned track's visual side when it was cut here."""

    def __init__(self, model: Any, info: VideoInfo, analysis_side: int, n: int, shots: ShotDetector, every: int, max_gap: int, min_len: int, max_frames: int = 200,
                 from_start: bool = False, judge: Callable[[np.ndarray, Face], float | None] | None = None, floor: float = 0.0):
        """``from_start``: the one-clip path with --person, whose subject is linked over the
        whole clip and whose check spans it: the clip is linked as one shot (``shots`` is not
        read), and only tracks that begin in the first ``LATE`` frames are cut (see
        :meth:`_adopt`), each from frame 0 (the frames before its face's first take its first
        box, as the check's own decode does). ``judge(frame, face)``: the face's similarity to
        the person (None when it gives no chip), asked on up to ``PROBES`` frames
        ``PROBE_STEP`` apart before the track may go to the model; a track whose median is
        under ``floor`` is not the person and is no longer followed, so the model runs on the
        person's face only, as the decode it replaces did."""
        self.model = model
        self.from_start, self.judge, self.floor = from_start, judge, floor
        self.adopted: set[int] = set()  # from_start: the tracks ever followed (ids)
        self.w, _ = scaled_size(info, analysis_side)
        self.display_width = info.display_width
        self.f = self.w / info.display_width
        self.n, self.shots, self.every, self.max_gap, self.max_frames = n, shots, every, max_gap, max_frames
        self.need = max(min_len, sp.sync.WINDOW)  # frames a track must span to be heard
        self.frames: deque = deque()  # (index, grey) still needed
        self.detections: deque = deque()  # (index, faces) of frames not yet settled
        self.settled = 0  # frames [0, settled) are linked
        self.shot_start: int | None = None  # the shot being linked (None: inside a transition)
        self.linker: Linker | None = None
        self.open: list[_Open] = []
        self.done: dict[tuple, tuple[list[int], list[Face], tuple[np.ndarray, bool]]] = {}
        self.given_up: str | None = None

    def feed(self, i: int, frame: np.ndarray, faces: list[Face] | None) -> None:
        """Frame ``i`` of the pass (BGR, analysis size) and, on analysed frames, its faces in
        display px. Shot detection must have seen frame ``i`` already. Frames past the
        count the pass planned (a decoder that gives one more) belong to no shot: ignored."""
        if self.given_up or i >= self.n or (self.from_start and self.settled > LATE and not self.open):
            return  # (from_start: once the tracks of the clip's start are all ended or dropped, nothing more is followed)
        self.frames.append((i, cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)))
        if faces:
            self.detections.append((i, faces))
        if self.from_start:  # one shot: every frame is settled as it comes
            self._settle(i + 1, Shots(i + 1, sp.RATE))
            if self.judge is not None:
                for o in [o for o in self.open if not o.cleared and o.track.frames[-1] == i]:
                    self._probe(o, frame)
        else:
            upto, shots = self.shots.settled(i + 1)
            self._settle(upto, shots)
        if len(self.frames) > self.max_frames:
            self.give_up(f"a track held more than {self.max_frames} frames")

    def finish(self, shots: Shots) -> None:
        """The pass is over (``shots``: as found over its frames): every track ends."""
        if not self.given_up:
            self._settle(shots.n, Shots(shots.n, sp.RATE) if self.from_start else shots)
            self._end_shot(shots.n)
            self.frames.clear()

    def give_up(self, why: str) -> None:
        """Stop following: the open tracks and all that come are decoded after the pass; the
        tracks that ended before keep their embeddings."""
        self.given_up = why
        self.frames.clear()
        self.open = []

    def track(self, frames: list[int], faces: list[Face], start: int, end: int) -> tuple[np.ndarray, bool] | None:
        """``(visual (n, 128), small)`` of the planned track, when it is one cut here with the
        same faces on the same frames over the same span, else ``None``."""
        got = self.done.get((id(faces[0]), start, end)) if faces else None
        if got is None or got[0] != frames or len(got[1]) != len(faces) or any(a is not b for a, b in zip(got[1], faces)):
            return None
        return got[2]

    def release(self) -> None:
        """Let the embeddings go (the one-clip path, once its subject's are taken)."""
        self.done.clear()

    def _probe(self, o: _Open, frame: np.ndarray) -> None:
        """--person: judge the track's face on this frame (BGR, analysis size) when it is due,
        and decide once ``PROBES`` frames are judged or its face has been followed long enough
        to be heard (counted from the face's first frame, so a late face is judged as often)."""
        due = o.track.frames[-1] >= o.track.frames[0] + o.tries * PROBE_STEP
        if due and o.tries < PROBES:
            o.tries += 1
            sim = self.judge(frame, o.track.faces[-1].scaled(self.f))  # type: ignore[misc]
            if sim is not None:
                o.sims.append(sim)
        if o.tries >= PROBES or o.track.frames[-1] + 1 - o.track.frames[0] >= self.need:  # (a late face's crops wait from frame 0)
            if o.not_the_person(self.floor):
                self.open.remove(o)  # not the person: the model never sees this face
            else:
                o.cleared = True

    # ---- following the tracks -------------------------------------------------------------

    def _settle(self, upto: int, shots: Shots) -> None:
        """Link the frames ``[settled, upto)``, whose shots are final, and crop what is ready."""
        if upto <= self.settled:
            return
        ranges = shots.ranges
        firsts = [a for a, _ in ranges]
        for s in range(self.settled, upto):
            k = bisect_right(firsts, s) - 1  # the shots are in order and apart
            shot = ranges[k][0] if k >= 0 and s < ranges[k][1] else None
            if shot != self.shot_start:
                if self.shot_start is not None:
                    self._end_shot(s if shot is None else shot)
                self.shot_start = shot
                self.linker = Linker(self.max_gap) if shot is not None else None
            faces = self.detections.popleft()[1] if self.detections and self.detections[0][0] == s else None
            if faces and self.linker is not None and self.from_start:
                self.linker.add(s, faces)  # (_adopt, below, chooses the tracks followed)
            elif faces and self.linker is not None:
                known = {id(t) for t in self.linker.tracks}
                self.linker.add(s, faces)
                self.open += [_Open(t) for t in self.linker.tracks if id(t) not in known]
            for o in [o for o in self.open if s - o.track.frames[-1] > self.max_gap]:
                self._end(o, min(s, o.track.frames[-1] + self.every))
            if self.from_start and s <= LATE and self.linker is not None:
                self._adopt()
            for o in self.open:
                self._crop(o, None)
        self.settled = upto
        oldest = min([o.next for o in self.open] + [self.settled])
        if self.from_start and self.settled <= LATE:
            oldest = 0  # a face may still appear: its crops begin at frame 0
        while self.frames and self.frames[0][0] < oldest:
            self.frames.popleft()

    def _adopt(self) -> None:
        """``from_start``: follow the tracks of the clip's first ``LATE`` frames while fewer than
        ``FROM_START`` are followed (in the order the linker made them: a frame's largest face
        first) once seen on two analysed frames, each from frame 0; a place freed by a face
        judged not the person, or gone, goes to the next."""
        for t in self.linker.tracks:  # type: ignore[union-attr]
            if len(self.open) >= FROM_START:
                return
            if id(t) not in self.adopted and t.frames[0] <= LATE and len(t.frames) >= 2:  # (a detection of one frame takes no place)
                self.adopted.add(id(t))
                self.open.append(_Open(t, 0))
                self.open[-1].cleared = self.judge is None

    def _end_shot(self, b: int) -> None:
        """The shot being linked ends at frame ``b``: so do its open tracks (``from_start``: at
        ``b``, the clip's end, as the one-clip check's span does; its last box held there)."""
        for o in list(self.open):
            self._end(o, b if self.from_start else min(b, o.track.frames[-1] + self.every))

    def _grey(self, j: int) -> np.ndarray | None:
        if not self.frames or not self.frames[0][0] <= j <= self.frames[-1][0]:
            return None
        return self.frames[j - self.frames[0][0]][1]

    def _crop(self, o: _Open, n: int | None) -> None:
        """Crop the track's frames whose boxes are final (all of them once it ended, ``n``)."""
        while n is None or o.next < o.j0 + n:
            box = o.box(o.next, n)
            grey = self._grey(o.next)
            if box is None or grey is None:
                return
            o.sides.append(float(box[2]))
            cx, cy, side = box * self.f
            crop = face_crop(grey, cx, cy, side)
            if o.stream is not None:
                o.stream.push(crop)
            else:
                o.held.append(crop)
                if o.cleared and o.track.frames[-1] + 1 - o.j0 >= self.need:  # long enough to be heard whatever comes: to the model
                    o.to_model(self.model)
            o.next += 1

    def _end(self, o: _Open, end: int) -> None:
        self.open.remove(o)
        j0, n = sp.speech_frames(o.j0 / sp.RATE, end / sp.RATE)
        if j0 != o.j0 or end - o.j0 < self.need or len(o.track.frames) < 2 or o.track.median_score() < REAL_SCORE:
            return  # not heard, or no track planning keeps: no embeddings
        if not o.cleared and o.not_the_person(self.floor):
            return  # --person: ended before it was decided, and not the person
        self._crop(o, n)
        if o.next != o.j0 + n:
            return  # a frame was no longer at hand: decoded again after the pass
        o.to_model(self.model)
        small = float(np.median(np.array(o.sides))) * self.w / self.display_width < sp.MIN_FACE
        # keyed by its first face (each face is one track's), which the entry keeps alive
        self.done[(id(o.track.faces[0]), o.j0, end)] = (list(o.track.frames), list(o.track.faces), (sp._held(o.stream.finish(), n), small))  # type: ignore[union-attr]
