"""Choose the main subject among the faces found on sampled frames.

Faces are linked from frame to frame into tracks (near the track's last position, of a
similar size, seen recently). The subject is the track with the largest presence-weighted
size — the face that is there through the clip, not a face in the background or a passer-by.
Other tracks that never overlap the subject in time and sit where it sits are the same
person after a gap, and are merged into it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .detect import Face
from .video.tracks import Track, link_tracks  # noqa: F401  (re-exported)


@dataclass
class SubjectResult:
    """The subject's face per sampled frame (``None`` where absent) and per-frame face counts."""

    sampled: list[int]  # frame indices that were analysed
    subject: dict[int, Face]  # frame -> subject face
    others: dict[int, list[Face]]  # frame -> other faces big enough to matter
    subject_size: float
    person: dict | None = None  # --person: how the subject was identified (prep.identity.choose_person)

    @property
    def presence(self) -> float:
        return len(self.subject) / max(1, len(self.sampled))

    def no_face_frames(self) -> list[int]:
        return [i for i in self.sampled if i not in self.subject]

    def multi_face_frames(self) -> list[int]:
        return [i for i in self.sampled if self.others.get(i)]


def choose_subject(
    detections: dict[int, list[Face]], max_gap: int, other_min_fraction: float = 0.25, other_min_score: float = 0.75
) -> SubjectResult | None:
    """Pick the subject from per-frame detections (frame index -> faces); ``None`` if no face at all.

    When counting frames with several faces, faces smaller than ``other_min_fraction`` of the
    subject's size (far background) and faces scoring below ``other_min_score`` are ignored:
    YuNet's false positives on textures score 0.6-0.7, real faces above 0.85 (measured on
    shared/data).
    """
    tracks = link_tracks(detections, max_gap)
    if not tracks:
        return None
    tracks.sort(key=lambda t: -t.weight())
    main = tracks[0]
    frames = dict(zip(main.frames, main.faces))
    c0, s0 = main.median_center(), main.median_size()
    for tr in tracks[1:]:
        if set(tr.frames) & set(frames):
            continue
        if np.hypot(*(tr.median_center() - c0)) <= 0.75 * s0 and 0.6 <= tr.median_size() / s0 <= 1.6:
            frames.update(zip(tr.frames, tr.faces))
    return subject_result(detections, tracks, frames, other_min_fraction, other_min_score)


def subject_result(
    detections: dict[int, list[Face]], tracks: list[Track], frames: dict[int, Face], other_min_fraction: float = 0.25, other_min_score: float = 0.75
) -> SubjectResult:
    """The result for a chosen subject (frame -> face): the other faces that matter on each frame."""
    sampled = sorted(detections)
    size = float(np.median([f.size for f in frames.values()]))
    # a second face counts only if it persists (seen on two analysed frames or more): a lone
    # detection on one frame is detector noise, a real second person stays
    # detector noise, and a texture that passes for a face now and then scores low on most of
    # its frames: a track counts only if its median score reaches other_min_score
    persistent = {id(f) for tr in tracks if len(tr.frames) >= 2 and float(np.median([g.score for g in tr.faces])) >= other_min_score for f in tr.faces}
    others: dict[int, list[Face]] = {}
    for i in sampled:
        subj = frames.get(i)
        extra = [
            f for f in detections[i]
            if f is not subj and id(f) in persistent and f.size >= other_min_fraction * size and f.score >= other_min_score
        ]
        if extra:
            others[i] = extra
    return SubjectResult(sampled=sampled, subject=frames, others=others, subject_size=size)
