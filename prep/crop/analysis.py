"""The analysis pass: one decode of small frames at the output rate, and everything that
needs to look at every frame fed from it.

Per frame, in order: the face search (every ``detect_every``-th frame, the scanner following
known faces between full searches), the faces' identity chips (--person, --group-by: about
four analysed frames a second, bounded), the blur score of the main face, shot detection and
the review page's thumbnails (the last three on a second thread, see
:class:`~prep.videoscan.FrameAnalyzer`). What comes out, :class:`Analysis`, is plain facts
(face boxes in display pixels, per-frame scores, shots); planning reads them and decodes
nothing.

Per face track, after the pass: the speech facts (:func:`track_speech`). The speech model's
face crops are cut in the pass: on the one-clip path of the main face (taken when it turns out
to be the subject, :class:`prep.speech.track.PassCrops`), with --split or --person of every
face track as the tracks form (:class:`prep.video.trackcrops.SplitCrops`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..config import CropConfig
from ..decode import frame_count_at, iter_frames, scaled_size
from ..detect import Detector, Face, cached_detector
from ..errors import PrepError
from ..probe import VideoInfo
from ..progress import progress
from ..subject import SubjectResult, choose_subject
from ..video import speaking
from ..video.review import keep_thumb
from ..video.shots import Shots, ShotDetector
from ..videoscan import FrameAnalyzer

SPLIT_FOLLOW = 0.1  # --split: faces down to this share of the largest are followed frame to frame


def get_detector(cfg: CropConfig) -> Detector:
    """The clip analysis's detector: the video scanner searches regions at known scales."""
    return cached_detector(cfg.detector, cfg.weights_dir, max_side=None, score_threshold=cfg.score_threshold)


def max_gap(cfg: CropConfig) -> int:
    """Frames a face may go unseen and still continue its track."""
    return int(round(1.5 * cfg.fps))


def min_len(cfg: CropConfig) -> int:
    """Frames of the shortest segment (``min_seconds``): a shorter track is not judged."""
    return max(1, int(round(cfg.min_seconds * cfg.fps)))


@dataclass(frozen=True)
class Analysis:
    n_frames: int
    sampled: list[int]
    subject: SubjectResult | None  # the clip's subject (--split keeps every track and may have none)
    detector: str
    detector_note: str | None
    blur: np.ndarray  # per output frame, NaN where no face was known
    shots: Shots
    detections: dict[int, list[Face]]  # analysed frame -> faces (display px)
    chips: Any = None  # --person, --group-by: the faces' aligned chips on a sample of frames (prep.identity.ChipSampler)
    speech_crops: Any = None  # the speech model's crops cut in this pass (PassCrops: the main face; SplitCrops: every track)


def analyse(info: VideoInfo, cfg: CropConfig, detector: Detector | None = None, show_progress: bool | None = None, thumbs: Path | None = None, frames: Iterator[np.ndarray] | None = None) -> Analysis:
    """Decode small frames at the output rate and find the faces on sampled frames.

    Face coordinates are returned in display pixels of the source. ``thumbs``: a folder that
    receives a small picture of the footage twice a second (for the review page). Without
    --split, the subject is chosen (``--person``: the track that matches) and a clip without
    a face is an error. ``frames``: the analysis frames from a decode that also encodes
    (:func:`prep.encode.encode_fixed_reading`), instead of a decode of their own.
    The speech model's face crops are cut in this pass too (with the check on, at 25 fps):
    of the main face without --split, of every face track with it.
    """
    detector = detector or get_detector(cfg)
    n = frame_count_at(info, cfg.fps)
    w, _ = scaled_size(info, cfg.analysis_side)
    back = info.display_width / w
    detections: dict[int, list[Face]] = {}
    # --split tracks every face that persists, so smaller faces are followed between full searches too
    # --split also searches the whole frame on the first analysed frame after a cut, so a face
    # of the new shot is tracked from the cut, not from the next periodic full search (up to 1 s later)
    scanner = FrameAnalyzer(detector, cfg.detect_every, cfg.face_px, full_every=max(1, round(cfg.fps / cfg.detect_every)), min_relative=SPLIT_FOLLOW if cfg.split else None, search_new_shots=cfg.split)
    blur = np.full(n, np.nan)
    shots = ShotDetector(cfg.fps)
    chips = None
    if cfg.person is not None or cfg.group_by:  # identity from this decode: about four faces a second kept
        from ..identity import ChipSampler

        chips = ChipSampler(cfg.detect_every * max(1, round(cfg.fps / 4 / cfg.detect_every)))

    if not cfg.split and cfg.person is None:  # the main face's crops, taken if it turns out to be the subject
        speech_crops = speaking.pass_crops(info, cfg, n)
    elif cfg.split:  # every track's crops, as the tracks form
        speech_crops = speaking.split_crops(info, cfg, n, shots, cfg.detect_every, max_gap(cfg), min_len(cfg))
    else:  # --person: the faces from the first frame that look like the person (which track is the person's is known after the pass)
        from ..identity import face_similarity

        # its subject's check spans the whole clip, however long min_seconds asks a clip to be
        speech_crops = speaking.split_crops(info, cfg, n, shots, cfg.detect_every, max_gap(cfg), 1, from_start=True,
                                            judge=functools.partial(face_similarity, cfg.person), floor=cfg.person.threshold - cfg.person.band)

    def beside(i: int, frame: np.ndarray) -> None:  # on the scanner's second thread, in frame order
        shots.feed(i, frame)
        if thumbs is not None:
            keep_thumb(thumbs, i, frame, cfg.fps)

    for i, frame, faces, score in scanner.run(progress(frames if frames is not None else iter_frames(info, cfg.fps, cfg.analysis_side), n, "analyse", "frame", show_progress), last=n - 1, also=beside):
        if faces is not None:
            detections[i] = [f.scaled(back) for f in faces]
            if chips is not None:
                chips.feed(i, frame, faces)
        if i < n:
            blur[i] = score
        if speech_crops is not None:
            speech_crops.feed(i, frame, detections[i] if faces is not None else None)
    found = shots.finish(n)
    if speech_crops is not None:
        speech_crops.finish(found)
    if cfg.person is not None and not cfg.split:  # --person: the subject is the face track that matches
        from ..identity import choose_person

        subject = choose_person(info, detections, cfg.person, cfg.fps, max_gap=max_gap(cfg), chips=chips)
    else:
        subject = choose_subject(detections, max_gap=max_gap(cfg))
    if subject is None and not cfg.split:
        raise PrepError(info.path, f"no face found in any of {len(detections)} analysed frames")
    return Analysis(n, sorted(detections), subject, detector.name, getattr(detector, "auto_note", None), blur, found, detections, chips, speech_crops)


def track_speech(info: VideoInfo, cfg: CropConfig, frames: list[int], faces: list[Face], start: int, end: int, embedded: Any = None) -> Any:
    """The speech facts of a face track over output frames ``[start, end)``, or the
    ``speech`` report saying why there are none (no audio; under ``measure``, any failure:
    the clip is still made). Under ``require`` a failure is the clip's error. ``embedded``:
    the track's visual side from the pass (:attr:`Analysis.speech_crops`), when it is this track."""
    if not info.has_audio:
        return speaking.unmeasured("no audio")
    try:
        return speaking.track_facts(info, cfg, frames, faces, start, end, embedded)
    except Exception as exc:
        if cfg.speech == "require":
            raise
        return speaking.unmeasured(exc.problem if isinstance(exc, PrepError) else f"the speech check failed: {type(exc).__name__}: {exc} (please report this)")
