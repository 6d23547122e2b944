"""The key-frame look: a provisional fixed window from a few key frames, placed before the one
decode that both encodes the clip and analyses it (fixed mode, sources of 1080p and up, see
:mod:`prep.crop.clip`).

Key frames decode on their own, so the look costs a seek and at most one decode each (0.1 s on
a 20 s 1080p HEVC clip). The window it places is checked against the one the whole analysis
gives: within ``window_tolerance`` of the side the provisional window is kept (its encode is
already done), further off the clip is encoded again with the analysed window.
"""

from __future__ import annotations

import numpy as np

from ..config import CropConfig
from ..decode import keyframes, scaled_size
from ..detect import Detector
from ..detect.scan import FaceScanner
from ..probe import VideoInfo
from ..subject import choose_subject
from ..window import fixed_window, integer_window

LOOK_FRAMES = 8  # seeks spread over the clip (long GOPs give fewer distinct key frames)
# Sources from this size on (display pixels a frame) share their decode: below it decoding is
# cheap next to the analysis and the encode, and sharing it gained nothing while a window
# placed too far off costs a second encode (measured: README, "One analysis pass").
SHARED_DECODE_PIXELS = 1_500_000


def shares_decode(info: VideoInfo, cfg: CropConfig) -> bool:
    """Whether the clip is encoded in the analysis's decode: a fixed window, a tolerance above
    0 and a source large enough that its decode is worth saving."""
    return cfg.mode == "fixed" and cfg.window_tolerance > 0 and info.display_width * info.display_height >= SHARED_DECODE_PIXELS


def provisional_window(info: VideoInfo, cfg: CropConfig, detector: Detector) -> tuple[int, int, int] | None:
    """The fixed window the key frames suggest, or None (no face on them, or the file does not
    seek: the clip is then analysed before it is encoded, as without the look)."""
    import av

    back = info.display_width / scaled_size(info, cfg.analysis_side)[0]
    detections = {}
    try:
        for k, frame in enumerate(keyframes(info, cfg.analysis_side, LOOK_FRAMES)):
            # as the analysis sees faces: found on the whole frame, then measured again in
            # their region shrunk to face_px (whole-frame boxes are a few per cent larger)
            scanner = FaceScanner(detector, cfg.face_px, full_every=2)
            scanner.scan(frame)
            detections[k] = [f.scaled(back) for f in scanner.scan(frame)]
    except (av.error.FFmpegError, OSError):  # a file PyAV cannot seek: the look is only a shortcut
        return None
    subject = choose_subject(detections, max_gap=LOOK_FRAMES) if detections else None
    if subject is None:
        return None
    faces = list(subject.subject.values())
    win = fixed_window(np.array([f.center for f in faces]), np.array([f.size for f in faces]), cfg.face_fraction, cfg.face_y)
    return integer_window(win)


def close_enough(provisional: tuple[int, int, int], analysed: tuple[int, int, int], tolerance: float) -> bool:
    """Whether the provisional window's centre and side are each within ``tolerance`` of the
    analysed window's side."""
    (x0, y0, s0), (x1, y1, s1) = provisional, analysed
    limit = tolerance * s1
    return abs((x0 + s0 / 2) - (x1 + s1 / 2)) <= limit and abs((y0 + s0 / 2) - (y1 + s1 / 2)) <= limit and abs(s0 - s1) <= limit
