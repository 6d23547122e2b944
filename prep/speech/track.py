"""The speech check of one face track: decode its stretch once for the model's face crops,
read its audio once, and keep the per-frame facts; stretches of it are then judged from those
facts alone (:func:`summarize`, :func:`verdict`), so a track split into segments is analysed once.

Times: the model runs at 25 frames a second (``RATE``), whatever the output's rate; speech
frame ``j`` of a track is at ``t0 + j / 25`` s of the output timeline.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import cv2
import numpy as np

from ..decode import iter_frames, scaled_size
from ..errors import PrepError
from ..probe import VideoInfo
from . import sync
from .audio import RATE as AUDIO_RATE
from .audio import read_pcm
from .crops import MEDIAN, face_crop, smooth_boxes
from .lightasd import LightASD, load_default
from .mfcc import mfcc
from .vad import voiced_frames

RATE = 25.0  # frames a second the model was trained on
MIN_FACE = 24  # px (analysis frame): below this the model's 112 px view is mostly upscaled blur
NOT_SPEAKING, NO_SPEECH, OUT_OF_SYNC = "not_speaking", "no_speech", "out_of_sync"
MODES = ("off", "measure", "require")


@dataclass(frozen=True)
class SpeechConfig:
    """The speech check's settings (a preset's ``[speech]`` table)."""

    mode: str = "off"  # off | measure | require
    min_speaking: float = 0.4  # share of the frames where the face must be the speaker
    min_voiced: float = 0.3  # share of the frames with a voice in the audio
    min_sync: float = 1.85  # sync evidence below this: the mouth does not follow this voice
    max_offset: float = 6.0  # frames (25 fps) of audio offset accepted (and corrected): 240 ms
    min_confidence: float = 0.5  # offset confidence below this: the offset cannot be trusted
    checkpoint: str = "ava"
    weights_dir: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise PrepError(None, f"speech mode must be one of {', '.join(MODES)}, got {self.mode!r}")


@dataclass
class TrackSpeech:
    """Per-frame facts of one track's stretch (``n`` frames at 25 fps from ``t0`` s)."""

    t0: float
    n: int
    has_audio: bool
    voiced: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (n,)
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (n,) at the track's offset
    visual: np.ndarray | None = None  # (n, 128)
    loud: np.ndarray | None = None  # (n + 2 MARGIN,) log power, from MARGIN frames early
    lag_starts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    lag_rows: np.ndarray | None = None  # (windows, K_HI - K_LO + 1)
    small: bool = False  # the face is too small for the model on most frames
    note: str | None = None
    whole: dict[str, Any] | None = None  # the whole stretch's summary, once made

    def frame_of(self, t: float) -> int:
        """The speech frame at output time ``t`` seconds (clipped to the stretch)."""
        return int(np.clip(np.floor((t - self.t0) * RATE + 1e-6), 0, max(0, self.n - 1)))


def boxes_at(times: np.ndarray, box_times: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Face boxes ``(len(times), 3)`` (centre x, centre y, side) interpolated between the
    analysed ones (held at the ends)."""
    return np.stack([np.interp(times, box_times, boxes[:, c]) for c in range(3)], axis=1)


class VisualStream:
    """Visual embeddings of crops pushed one at a time: they go through the model's
    :class:`~prep.speech.lightasd.VisualEncoder` ``group`` at a time, so memory does not grow
    with the track's length and every frame is computed once; results equal one pass over the
    whole track."""

    def __init__(self, model: LightASD, group: int = 16):
        self.encoder = model.visual_encoder()
        self.group = group
        self.out: list[np.ndarray] = []
        self.buf: list[np.ndarray] = []

    def push(self, crop: np.ndarray) -> None:
        self.buf.append(crop)
        if len(self.buf) == self.group:
            self.out.append(self.encoder.push(np.stack(self.buf)))
            self.buf.clear()

    def finish(self) -> np.ndarray:
        if self.buf:
            self.out.append(self.encoder.push(np.stack(self.buf)))
            self.buf.clear()
        self.out.append(self.encoder.finish())
        return np.concatenate(self.out)


def _embed_stream(model: LightASD, crops: Iterable[np.ndarray]) -> np.ndarray:
    """Visual embeddings of a stream of crops (:class:`VisualStream`)."""
    stream = VisualStream(model)
    for c in crops:
        stream.push(c)
    return stream.finish()


def _crops(info: VideoInfo, analysis_side: int, start: int, n: int, boxes: np.ndarray) -> Iterator[np.ndarray]:
    w, _ = scaled_size(info, analysis_side)
    f = w / info.display_width
    for j, frame in enumerate(iter_frames(info, RATE, analysis_side, start=start, count=n)):
        if j >= n:
            break
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        cx, cy, side = boxes[j] * f
        yield face_crop(grey, cx, cy, side)


def analyse_track(info: VideoInfo, t0: float, t1: float, box_times: np.ndarray, boxes: np.ndarray, cfg: SpeechConfig, analysis_side: int = 640,
                  embedded: tuple[np.ndarray, bool] | None = None) -> TrackSpeech:
    """The facts of the face track ``boxes`` ((N, 3) centre x, centre y, side, display px, at
    ``box_times`` seconds) over ``[t0, t1)`` seconds of the output timeline. ``embedded``: the
    visual embeddings and ``small`` flag already made from the analysis pass's own frames
    (:class:`PassCrops`), which are what :func:`face_embeddings` would decode again."""
    j0, n = speech_frames(t0, t1)
    t0 = j0 / RATE
    if not info.has_audio:
        return TrackSpeech(t0, n, False, note="no audio")
    if n < sync.WINDOW:
        return TrackSpeech(t0, n, True, note="too short for the speech model (under 2 s)")
    model = load_default(cfg.weights_dir, cfg.checkpoint)
    pcm = read_pcm(info, RATE, j0, n, margin=sync.MARGIN)
    visual, small = embedded if embedded is not None else face_embeddings(model, info, j0, n, box_times, boxes, analysis_side)
    return listen(model, visual, pcm, t0, small)


def speech_frames(t0: float, t1: float) -> tuple[int, int]:
    """``(j0, n)``: the model's frames ``[j0, j0 + n)`` (at ``RATE``) over ``[t0, t1)`` seconds."""
    j0 = int(round(t0 * RATE))
    return j0, max(0, int(round(t1 * RATE)) - j0)


def _track_boxes(info: VideoInfo, j0: int, n: int, box_times: np.ndarray, boxes: np.ndarray, analysis_side: int) -> tuple[np.ndarray, bool]:
    """The smoothed boxes (n, 3) of speech frames ``[j0, j0 + n)`` and whether the face is too
    small for the model on most of them."""
    bx = smooth_boxes(boxes_at(j0 / RATE + np.arange(n) / RATE, box_times, boxes))
    w, _ = scaled_size(info, analysis_side)
    return bx, float(np.median(bx[:, 2])) * w / info.display_width < MIN_FACE


def _held(visual: np.ndarray, n: int) -> np.ndarray:
    """``n`` embeddings: a decoder that fell short of the rounded count holds its last frame."""
    if len(visual) < n:
        visual = np.concatenate([visual, np.repeat(visual[-1:], n - len(visual), axis=0)]) if len(visual) else np.zeros((n, 128), np.float32)
    return visual[:n]


def face_embeddings(model: LightASD, info: VideoInfo, j0: int, n: int, box_times: np.ndarray, boxes: np.ndarray, analysis_side: int = 640) -> tuple[np.ndarray, bool]:
    """The model's visual embeddings (n, 128) of the face over speech frames ``[j0, j0 + n)``,
    decoded once (memory bounded by the chunk, not the track), and whether the face is too
    small for the model on most frames."""
    bx, small = _track_boxes(info, j0, n, box_times, boxes, analysis_side)
    return _held(_embed_stream(model, _crops(info, analysis_side, j0, n, bx)), n), small


def tracks_embeddings(model: LightASD, info: VideoInfo, tracks: list[tuple[int, int, np.ndarray, np.ndarray]], analysis_side: int = 640, max_gap: int = int(2 * RATE)) -> list[tuple[np.ndarray, bool]]:
    """:func:`face_embeddings` of several tracks (``(j0, n, box_times, boxes)`` each) from as
    few decodes as there are groups of tracks: tracks whose speech frames overlap, or lie
    within ``max_gap`` frames of each other, are cut from one decode over their union (two
    faces in one shot, a shot after a shot) instead of one decode each, and none decodes a
    stretch twice. Results equal :func:`face_embeddings` per track. Memory: a visual stream
    (about 28 MB) per track on screen at the frame being cut, not the tracks' length."""
    w, _ = scaled_size(info, analysis_side)
    f = w / info.display_width
    jobs = [(j0, n, *_track_boxes(info, j0, n, bt, b, analysis_side)) for j0, n, bt, b in tracks]
    out: list[Any] = [None] * len(jobs)
    order = sorted(range(len(jobs)), key=lambda k: jobs[k][0])
    groups: list[list[int]] = []
    end = None
    for k in order:
        j0, n = jobs[k][0], jobs[k][1]
        if end is None or j0 > end + max_gap:
            groups.append([])
            end = j0 + n
        groups[-1].append(k)
        end = max(end, j0 + n)
    for g in groups:
        a = min(jobs[k][0] for k in g)
        b = max(jobs[k][0] + jobs[k][1] for k in g)
        streams = {k: VisualStream(model) for k in g}
        for j, frame in enumerate(iter_frames(info, RATE, analysis_side, start=a, count=b - a), start=a):
            if j >= b:
                break
            grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            for k in [k for k in streams if jobs[k][0] <= j < jobs[k][0] + jobs[k][1]]:
                j0, n, bx, small = jobs[k]
                cx, cy, side = bx[j - j0] * f
                streams[k].push(face_crop(grey, cx, cy, side))
                if j == j0 + n - 1:  # the track's last frame: its stream's buffers go now, not at the group's end
                    out[k] = (_held(streams.pop(k).finish(), n), small)
        for k, stream in streams.items():  # a decoder that fell short
            out[k] = (_held(stream.finish(), jobs[k][1]), jobs[k][3])
    return out


class PassCrops:
    """The model's face crops cut from the analysis pass's own frames, so that the clip's face
    is not decoded a second time (the one-clip path, where the output rate is the model's).

    Which face will be the clip's subject is decided after the pass (:mod:`prep.subject`);
    here the main face of each analysed frame is taken as it, its boxes are interpolated and
    median-smoothed exactly as :func:`face_embeddings` does over the whole track (a 13-frame
    window: each crop waits a few frames for the boxes after it), and the crops go through the
    visual model as they come. :meth:`embedded` hands the result over only when the subject
    turns out to be that face on exactly those frames; otherwise (several people, a face that
    comes late or leaves for long) the track is decoded again as before. Memory: the frames
    waiting for their box, at most ``max_wait`` small grey frames."""

    def __init__(self, model: LightASD, info: VideoInfo, analysis_side: int, n: int, max_wait: int = 50):
        if n < sync.WINDOW:
            raise ValueError(f"PassCrops needs a track of at least {sync.WINDOW} frames, got {n}")
        self.w, _ = scaled_size(info, analysis_side)
        self.display_width = info.display_width
        self.f = self.w / info.display_width
        self.n, self.max_wait = n, max_wait
        self.stream = VisualStream(model)
        self.faces: dict[int, Any] = {}  # analysed frame -> the face taken as the subject's
        self.known: deque = deque()  # (time s, centre x, centre y, side) from the last one at or before the window
        self.waiting: deque = deque()  # (frame, grey) not yet cropped
        self.interp: dict[int, np.ndarray] = {}  # frame -> interpolated box, for the median windows
        self.next = 0  # next frame to crop
        self.sides: list[float] = []  # smoothed sides, for the ``small`` verdict
        self.given_up: str | None = None
        self.visual: np.ndarray | None = None  # (n, 128), once handed over
        self._ended = False

    def feed(self, i: int, frame: np.ndarray, faces: list | None) -> None:
        """Frame ``i`` of the pass (BGR, analysis size) and, on analysed frames, its faces in display px."""
        if self.given_up:
            return
        if faces:
            main = max(faces, key=lambda f: f.size)
            if any(g is not main and g.score >= 0.75 and g.size >= 0.5 * main.size for g in faces):
                self.give_up("two faces of a size")
                return
            self.faces[i] = main
            self.known.append((i / RATE, *main.center, main.size))
        if i < self.n:
            self.waiting.append((i, cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)))
        self._crop_ready()
        if len(self.waiting) > self.max_wait:
            self.give_up(f"no face for {self.max_wait} frames")

    def give_up(self, why: str) -> None:
        self.given_up = why
        self.waiting.clear()
        self.stream = None  # type: ignore[assignment]

    def _box(self, t: int) -> np.ndarray | None:
        """The interpolated box at frame ``t``, once the boxes around it are final."""
        if t in self.interp:
            return self.interp[t]
        if not self.known or (self.known[-1][0] < t / RATE and not self._ended):
            return None
        k = np.array(self.known, np.float64)
        box = boxes_at(np.array([t / RATE]), k[:, 0], k[:, 1:])[0]
        self.interp[t] = box
        return box

    def _smoothed(self, j: int) -> np.ndarray | None:
        h = MEDIAN // 2  # n > 2 h: a track shorter than the model's window never gets here
        c = min(max(j, h), self.n - 1 - h)
        window = [self._box(t) for t in range(c - h, c + h + 1)]
        if any(b is None for b in window):
            return None
        return np.median(np.array(window), axis=0)

    def _crop_ready(self) -> None:
        h = MEDIAN // 2
        while self.waiting:
            j, grey = self.waiting[0]
            box = self._smoothed(j)
            if box is None:
                return
            self.waiting.popleft()
            self.sides.append(float(box[2]))
            cx, cy, side = box * self.f
            self.stream.push(face_crop(grey, cx, cy, side))
            self.next = j + 1
            # boxes and times no window will read again
            for t in [t for t in self.interp if t < min(max(self.next, h), self.n - 1 - h) - h]:
                del self.interp[t]
            while len(self.known) >= 2 and self.known[1][0] <= (self.next - h - 1) / RATE:
                self.known.popleft()

    def finish(self, shots: Any = None) -> None:
        """The pass is over: the last frames are cropped with the boxes held at the end
        (``shots``: the pass's, not needed for a face over the whole clip)."""
        self._ended = True
        if not self.given_up:
            if not self.known:
                self.give_up("no face")
                return
            self._crop_ready()

    def track(self, frames: list[int], faces: list[Any], start: int, end: int) -> tuple[np.ndarray, bool] | None:
        """:meth:`embedded` for a face track (``faces`` on ``frames`` over ``[start, end)``):
        only a track over the whole clip can be the face taken here."""
        return self.embedded(dict(zip(frames, faces))) if (start, end) == (0, self.n) else None

    def release(self) -> None:
        """Let the model's stream and embeddings go (handed over or not): nothing more is handed over."""
        self.visual = None
        self.give_up(self.given_up or "released")

    def embedded(self, subject: dict[int, Any]) -> tuple[np.ndarray, bool] | None:
        """``(visual (n, 128), small)`` when ``subject`` (frame -> face) is the face taken here
        on exactly the same frames, else ``None`` (the track must be decoded again)."""
        if self.given_up or not self._ended or len(self.sides) != self.n or subject.keys() != self.faces.keys() or any(subject[i] is not self.faces[i] for i in subject):
            return None  # (a decoder that fell short of the frame count: decoded again, as before)
        small = float(np.median(np.array(self.sides))) * self.w / self.display_width < MIN_FACE
        if self.visual is None:  # the stream's buffers go now, not when the clip is written
            self.visual, self.stream = self.stream.finish()[: self.n], None  # type: ignore[assignment]
        return self.visual, small


def listen(model: LightASD, visual: np.ndarray, pcm: np.ndarray, t0: float = 0.0, small: bool = False) -> TrackSpeech:
    """The facts of a face (visual embeddings (n, 128)) with the audio ``pcm`` (16 kHz mono
    int16 from ``MARGIN`` frames before the face's first frame to ``MARGIN`` after its last)."""
    n, margin = len(visual), sync.MARGIN
    per = AUDIO_RATE / RATE
    voiced = voiced_frames(pcm[int(round(margin * per)) : int(round((margin + n) * per))], RATE, n)
    audio = audio_embeddings(model, mfcc(pcm, AUDIO_RATE))
    need = n + 2 * margin
    audio = np.pad(audio, ((0, max(0, need - len(audio))), (0, 0)))[:need]
    starts = sync.window_starts(voiced)
    rows = sync.lag_matrix(model, visual, audio, starts)
    off = sync.measure_offset(rows)
    k = 0 if off.frames is None else int(np.clip(round(off.frames + sync.BIAS), sync.K_LO, sync.K_HI))
    scores = sync.speaking_scores(model, visual, audio[margin + k : margin + k + n])
    return TrackSpeech(t0, n, True, voiced, scores, visual, sync.loudness(pcm, need, per), starts, rows, small)


def audio_embeddings(model: LightASD, feats: np.ndarray, chunk: int = 1000, halo: int = 8) -> np.ndarray:
    """The audio model's embeddings of MFCCs (4 rows a frame), ``chunk`` frames at a time with
    ``halo`` frames of context each side (its receptive field is about 5): memory does not grow
    with the track; results equal one pass over the whole sequence."""
    t = -(-(-(-len(feats) // 2)) // 2)  # the model's output length: ceil(ceil(N / 2) / 2)
    if t <= chunk + 2 * halo:
        return model.audio(feats)
    out = np.empty((t, 128), np.float32)
    for a in range(0, t, chunk):
        lo, hi = max(0, a - halo), min(t, a + chunk + halo)
        emb = model.audio(feats[4 * lo : 4 * hi])
        b = min(t, a + chunk)
        out[a:b] = emb[a - lo : a - lo + (b - a)]
    return out


def _smooth(x: np.ndarray, k: int = 5) -> np.ndarray:
    return np.convolve(x, np.ones(k) / k, mode="same") if len(x) >= k else x


def speaking_frames(ts: TrackSpeech) -> np.ndarray:
    """(n,) bool: Light-ASD says this face speaks (score smoothed over 5 frames above 0) and the
    audio has a voice. Whether it is *this* voice is :func:`summarize`'s ``sync``."""
    if not ts.has_audio or ts.visual is None:
        return np.zeros(ts.n, bool)
    return (_smooth(ts.scores) > 0) & ts.voiced


def shares(ts: TrackSpeech, a: int, b: int, synced: bool) -> dict[str, Any]:
    """``speaking``, ``score`` and ``voiced`` of speech frames ``[a, b)``: ``speaking`` counts a
    frame only for a face whose mouth follows this voice (``synced``)."""
    flags = speaking_frames(ts)[a:b]
    return {
        "speaking": round(float(flags.mean()) if synced and len(flags) else 0.0, 3),
        "score": round(float(ts.scores[a:b].mean()), 3) if b > a else None,
        "voiced": round(float(ts.voiced[a:b].mean()), 3) if b > a else 0.0,
    }


def summarize(ts: TrackSpeech, cfg: SpeechConfig, a: int = 0, b: int | None = None) -> dict[str, Any]:
    """The report's ``speech`` object for speech frames ``[a, b)`` of the track (``sync`` below
    ``cfg.min_sync`` where the stretch is long enough to tell: no frame counts as speaking)."""
    b = ts.n if b is None else b
    if not ts.has_audio or ts.visual is None:
        return {"measured": False, "note": ts.note}
    sel = (ts.lag_starts >= a) & (ts.lag_starts + sync.WINDOW <= b)
    off = sync.measure_offset(ts.lag_rows[sel]) if ts.lag_rows is not None else sync.Offset(None, 0.0, 0, np.zeros(0))
    lo = sync.MARGIN
    z = sync.sync_z(ts.visual[a:b], ts.loud[a : b + 2 * lo]) if off.windows and ts.loud is not None else None
    evidence = sync.sync_evidence(off.t, z)
    # within a frame of 0 is 0: the measurement is good to about a frame, and an offset under
    # 40 ms is below what viewers notice (ITU-R BT.1359: +45 ms early, -125 ms late)
    offset = None if off.frames is None else (0 if abs(off.frames) < 1.0 else int(round(off.frames)))
    rep = {
        "measured": True,
        **shares(ts, a, b, evidence is None or evidence >= cfg.min_sync),
        "offset_frames": offset,
        "offset_exact": off.frames,
        "confidence": off.confidence,
        "corrected_ms": 0.0,
        "sync": None if evidence is None else round(evidence, 2),
        "sync_t": off.t,
        "sync_z": None if z is None else round(z, 2),
        "windows": off.windows,
        "fps": RATE,
    }
    if ts.small:
        rep["note"] = f"the face is under {MIN_FACE} px in the analysis frames: the model sees little of the mouth"
    return rep


def verdict(rep: dict[str, Any], cfg: SpeechConfig) -> tuple[str, str] | None:
    """``(reason, why)`` when a stretch with report ``rep`` fails ``cfg``'s rules, else None.
    A face too small for the model says so in its ``why``."""
    found = _verdict(rep, cfg)
    if found is not None and rep.get("note") and rep.get("measured") and found[0] != NO_SPEECH:
        return found[0], f"{found[1]}; {rep['note']}"
    return found


def _verdict(rep: dict[str, Any], cfg: SpeechConfig) -> tuple[str, str] | None:
    if not rep.get("measured"):
        if rep.get("note") == "no audio":
            return NO_SPEECH, "the clip has no audio stream"
        return NOT_SPEAKING, f"speech not measurable: {rep.get('note')}"
    if rep["voiced"] < cfg.min_voiced:
        return NO_SPEECH, f"a voice in only {rep['voiced']:.0%} of the frames (the preset needs {cfg.min_voiced:.0%}): silence, music or noise"
    z = rep["sync"]
    if z is not None and z < cfg.min_sync:
        return NOT_SPEAKING, f"the mouth does not follow the voice (sync {z:.1f} < {cfg.min_sync:g}): a listener, a voice-over or a face on a screen"
    if rep["speaking"] < cfg.min_speaking:
        return NOT_SPEAKING, f"the face speaks in {rep['speaking']:.0%} of its frames (the preset needs {cfg.min_speaking:.0%})"
    if rep["offset_frames"] is None or rep["confidence"] < cfg.min_confidence:
        return OUT_OF_SYNC, f"the audio offset cannot be measured reliably (confidence {rep['confidence']:.2f} < {cfg.min_confidence:g}, {rep['windows']} voiced windows)"
    if abs(rep["offset_exact"]) > cfg.max_offset + 0.5:
        side = "late" if rep["offset_exact"] > 0 else "early"
        return OUT_OF_SYNC, f"the audio is {abs(rep['offset_frames'])} frames ({abs(rep['offset_frames']) * 40} ms) {side}, beyond the preset's {cfg.max_offset:g} frames"
    return None
