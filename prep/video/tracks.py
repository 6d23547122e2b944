"""Face tracks: faces on successive analysed frames linked into one track per person and shot.

A face continues a track when it is near the track's last position and of a similar size, and
the track was seen recently; otherwise it starts a new one (a face that jumps breaks its track).
Tracks never cross a shot boundary: each shot is linked on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..detect import Face

REAL_SCORE = 0.75  # a track counts as a person when its median detection score reaches this


@dataclass
class Track:
    frames: list[int] = field(default_factory=list)
    faces: list[Face] = field(default_factory=list)

    @property
    def last(self) -> Face:
        return self.faces[-1]

    def weight(self) -> float:
        return float(sum(f.size for f in self.faces))

    def median_center(self) -> np.ndarray:
        return np.median(np.array([f.center for f in self.faces]), axis=0)

    def median_size(self) -> float:
        return float(np.median([f.size for f in self.faces]))

    def median_score(self) -> float:
        return float(np.median([f.score for f in self.faces]))

    def face_at(self) -> dict[int, Face]:
        return dict(zip(self.frames, self.faces))


@dataclass
class TrackFacts:
    """Everything the analysis found about one face track of a shot, as planning and the review
    page read it: the track, its head pose per analysed frame, its span ``[start, end)`` in
    output frames, its face's blur score and the blur rule's verdict per frame of that span
    (``blur[k]``, ``blurred[k]``: frame ``start + k``) and, when it was heard, its speech facts
    (a :class:`prep.speech.track.TrackSpeech`, or the ``dict`` report of why there are none)."""

    track: Track
    poses: dict[int, Any]
    blur: np.ndarray
    blurred: np.ndarray
    start: int
    end: int
    speech: Any = None


class Linker:
    """Greedy frame-to-frame linking, one analysed frame at a time (frames in increasing
    order): what :func:`link_tracks` does over a whole shot, so that a consumer of the
    analysis pass can follow the tracks as they form. ``max_gap``: frames a track may go
    unseen and continue."""

    def __init__(self, max_gap: int):
        self.max_gap = max_gap
        self.tracks: list[Track] = []

    def add(self, frame: int, faces: list[Face]) -> None:
        taken: set[int] = set()
        for face in sorted(faces, key=lambda f: -f.size):
            best, best_d = None, None
            for ti, tr in enumerate(self.tracks):
                if ti in taken or frame - tr.frames[-1] > self.max_gap:
                    continue
                ref = tr.last
                d = float(np.hypot(face.center[0] - ref.center[0], face.center[1] - ref.center[1]))
                ratio = face.size / ref.size
                if d <= 0.6 * max(face.size, ref.size) and 0.6 <= ratio <= 1.6 and (best_d is None or d < best_d):
                    best, best_d = ti, d
            if best is None:
                self.tracks.append(Track([frame], [face]))
                taken.add(len(self.tracks) - 1)
            else:
                self.tracks[best].frames.append(frame)
                self.tracks[best].faces.append(face)
                taken.add(best)


def link_tracks(detections: dict[int, list[Face]], max_gap: int) -> list[Track]:
    """Greedy frame-to-frame linking (:class:`Linker`) of a shot's detections."""
    linker = Linker(max_gap)
    for frame in sorted(detections):
        linker.add(frame, detections[frame])
    return linker.tracks


def face_tracks(detections: dict[int, list[Face]], ranges: list[tuple[int, int]], max_gap: int, min_frames: int = 2) -> list[tuple[int, Track]]:
    """``(shot, track)`` for every face that persists (seen on ``min_frames`` analysed frames or
    more, with a median score of at least ``REAL_SCORE``) in each shot ``[start, end)`` of
    ``ranges``; within a shot, larger and longer tracks first."""
    out: list[tuple[int, Track]] = []
    for k, (a, b) in enumerate(ranges):
        tracks = link_tracks({i: f for i, f in detections.items() if a <= i < b}, max_gap)
        real = [t for t in tracks if len(t.frames) >= min_frames and t.median_score() >= REAL_SCORE]
        out += [(k, t) for t in sorted(real, key=lambda t: -t.weight())]
    return out
