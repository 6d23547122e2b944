"""Who is who: a face's identity as a 128-d vector, a reference person, matches and clusters.

The embedding is dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1.dat``)
on a chip aligned with dlib's 5-point landmark model (``shape_predictor_5_face_landmarks.dat``),
both CC0 files shipped by the ``face_recognition_models`` package (the optional extra
``prep[identity]``). Its 68-point model is never loaded. Nothing is downloaded at run time.
The landmarks and the chip come from dlib; the descriptor network is read from its file and
run in numpy (:mod:`prep.descriptor`: dlib's wheel runs it without a BLAS, 7 times slower).

Path of a face: detected box (any detector) -> 5 landmarks inside the box -> 150 px chip ->
128-d descriptor, L2-normalised -> cosine similarity to the reference (the best over the
reference photos) -> :class:`Match` (matched / uncertain, with the reason).

The API other stages use:

- :func:`load_reference` (driver, once): photos or folders -> a picklable :class:`Reference`
  that travels inside the resolved config to the workers.
- :func:`embed` (one face of one image) -> :class:`FaceEmbedding` (vector, size, turn).
- :func:`identify_tracks` (a video and its face tracks as frame -> box) -> one
  :class:`TrackIdentity` per track, decoding the video once (the call for ``crop --split``'s
  segments); :func:`track_identity` does the same from frames already in memory. A
  TrackIdentity holds the track's mean vector and, with a reference, its :class:`Match`
  (median over the sampled frames, so one bad frame does not flip it).
- :func:`decide` (similarities of one track) -> :class:`Match`.
- :class:`Clusterer` / :func:`cluster` (vectors in a fixed order) -> person labels, holding
  only one centroid per person (never an n x n matrix); :func:`person_folder` names them.
- :class:`PresenceScan` (a video's frames one at a time) -> per-frame "is the person here",
  exact at cuts (used by ``frames --person``).

Thresholds come from ``bench/calibrate_identity.py`` (see ``bench/identity_results.md``).
"""

from __future__ import annotations

import importlib.util
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .detect import Face
from .errors import PrepError

INSTALL_HINT = "pip install 'prep[identity]'"
MODEL_FILES = ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat")

# Cosine similarity of two L2-normalised descriptors. Calibrated by bench/calibrate_identity.py
# on the shared data (bench/identity_results.md): THRESHOLD is the similarity at which 0.1% of
# different-person pairs are accepted; matches within BAND of it are reported as uncertain.
THRESHOLD = 0.955
BAND = 0.015
# A face smaller than this (distance between the eye centres, px in the image it was found in)
# or turned further than MAX_TURN (0 frontal, 1 profile) gives an unreliable descriptor.
MIN_EYE_PX = 18.0
MAX_TURN = 0.5
CHIP = 150  # the descriptor's input side (dlib's own default)


def unavailable() -> str | None:
    """``None`` when the identity models can be used here, else the one line that says how to get them."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return f"--person and --group-by person need the face identity models: {INSTALL_HINT}"
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    missing = [f for f in MODEL_FILES if not (folder / f).is_file()]
    if missing:
        return f"face identity model {missing[0]} is missing from {folder}: reinstall with {INSTALL_HINT}"
    return None


def require() -> None:
    """Raise the one-line :class:`PrepError` when the extra is not installed."""
    why = unavailable()
    if why:
        raise PrepError(None, why)


def model_paths() -> tuple[Path, Path]:
    """(5-point landmark model, descriptor model) inside the installed package."""
    require()
    spec = importlib.util.find_spec("face_recognition_models")
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"  # type: ignore[union-attr]
    return folder / MODEL_FILES[0], folder / MODEL_FILES[1]


_models: dict[str, Any] = {}


def _load() -> tuple[Any, Any]:
    """One landmark model and one descriptor network per process (loading takes a fraction of a second)."""
    if not _models:
        import dlib

        from .descriptor import DescriptorNet

        lm, rec = model_paths()
        _models["shape"] = dlib.shape_predictor(str(lm))
        _models["rec"] = DescriptorNet.load(rec)
    return _models["shape"], _models["rec"]


@dataclass(frozen=True)
class FaceEmbedding:
    """``vector``: 128 float32, unit length. ``eye_px``: distance between the eye centres in
    source pixels; ``turn``: 0 for a frontal face, towards 1 for a profile (from where the nose
    sits between the eyes)."""

    vector: np.ndarray
    eye_px: float
    turn: float

    @property
    def usable(self) -> bool:
        return self.eye_px >= MIN_EYE_PX and self.turn <= MAX_TURN

    def why_unusable(self) -> str | None:
        if self.eye_px < MIN_EYE_PX:
            return f"face too small to identify reliably ({self.eye_px:.0f} px between the eyes, {MIN_EYE_PX:.0f} wanted)"
        if self.turn > MAX_TURN:
            return f"face turned too far to identify reliably (turn {self.turn:.2f}, at most {MAX_TURN})"
        return None


def _rgb(image: np.ndarray) -> np.ndarray:
    import cv2

    if image.ndim == 2:
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_GRAY2RGB))
    if image.shape[2] == 4:
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGRA2RGB))
    return np.ascontiguousarray(image[:, :, ::-1])


def landmarks(image: np.ndarray, face: Face, rgb: bool = False) -> tuple[Any, np.ndarray]:
    """dlib's 5 landmarks inside ``face.box`` of ``image`` (HxWx3 uint8 BGR, or RGB with
    ``rgb``): the dlib shape and a ``5x2`` array (two corners of one eye, two of the other, the
    base of the nose)."""
    import dlib

    shape_model, _ = _load()
    x, y, w, h = face.box
    rect = dlib.rectangle(int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))
    shape = shape_model(image if rgb else _rgb(image), rect)
    pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], np.float32)
    return shape, pts


def pose_facts(pts: np.ndarray) -> tuple[float, float]:
    """(eye distance px, turn in [0, 1]) from dlib's 5 points."""
    e1, e2, nose = pts[0:2].mean(axis=0), pts[2:4].mean(axis=0), pts[4]
    axis = e2 - e1
    d = float(np.hypot(*axis))
    if d < 1e-6:
        return 0.0, 1.0
    t = float(np.dot(nose - e1, axis) / (d * d))  # 0.5 when the nose is midway between the eyes
    return d, float(min(1.0, abs(t - 0.5) * 2.0))


def chip(image: np.ndarray, face: Face) -> tuple[np.ndarray, float, float]:
    """The aligned ``150x150x3 uint8 RGB`` chip of ``face``, its eye distance and its turn.

    Only the face's neighbourhood (the box grown by its size on every side, all the chip can
    see) is converted, so the cost does not grow with the frame's size."""
    import dlib

    x, y, w, h = face.box
    m = max(w, h)
    h_img, w_img = image.shape[:2]
    x0, y0 = max(0, int(x - m)), max(0, int(y - m))
    x1, y1 = min(w_img, int(x + w + m) + 1), min(h_img, int(y + h + m) + 1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        x0, y0, x1, y1 = 0, 0, w_img, h_img
    region = _rgb(image[y0:y1, x0:x1])
    shape, pts = landmarks(region, face.shifted(-x0, -y0), rgb=True)
    eye_px, turn = pose_facts(pts)
    return dlib.get_face_chip(region, shape, size=CHIP, padding=0.25), eye_px, turn


def describe_chip(face_chip: np.ndarray) -> np.ndarray:
    """128 float32, unit length, of an aligned chip from :func:`chip` (about 13 ms on a CPU
    core: dlib's network run in numpy, :mod:`prep.descriptor`). One chip per call, so that a
    face's vector never depends on what else was described with it."""
    _, rec = _load()
    v = rec(face_chip[None])[0]
    return v / max(float(np.linalg.norm(v)), 1e-12)


def embed(image: np.ndarray, face: Face) -> FaceEmbedding:
    """The identity vector of ``face`` (found by any detector) in ``image`` (HxWx3 uint8 BGR)."""
    c, eye_px, turn = chip(image, face)
    return FaceEmbedding(describe_chip(c), eye_px, turn)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of unit vectors, in [-1, 1]."""
    return float(np.dot(a, b))


@dataclass(frozen=True)
class Reference:
    """The person to keep: one unit vector per reference face, and where each came from.

    Plain tuples only, so it pickles, hashes and serialises into a config and its fingerprint.
    """

    sources: tuple[str, ...]
    vectors: tuple[tuple[float, ...], ...]
    threshold: float = THRESHOLD
    band: float = BAND

    def matrix(self) -> np.ndarray:
        return np.array(self.vectors, np.float32)

    def similarity(self, v: np.ndarray) -> float:
        """The best similarity of ``v`` to any reference face."""
        return float(np.max(self.matrix() @ v))

    def to_dict(self) -> dict[str, Any]:
        return {"sources": list(self.sources), "faces": len(self.vectors), "threshold": self.threshold, "band": self.band}


def load_reference(paths: Sequence[str | Path], detector: Any, threshold: float | None = None) -> Reference:
    """Embed the reference person once, on the driver: photos or folders of photos, each
    showing the person as its largest face. A photo with no usable face fails with one line."""
    from .batch import expand_sources
    from .detect import main_face
    from .images import IMAGE_EXTENSIONS, read_image

    require()
    files = expand_sources([str(p) for p in paths], IMAGE_EXTENSIONS)
    if not files:
        raise PrepError(None, f"--person: no photos in {', '.join(map(str, paths))}")
    sources, vectors = [], []
    for f in files:
        if not f.is_file():
            raise PrepError(f, "--person: reference photo not found")
        img = read_image(str(f))
        faces = [x for x in detector.detect(img) if x.score >= 0.8]
        face = main_face(faces)
        if face is None:
            raise PrepError(f, "--person: no face found in the reference photo")
        big = sorted((x.size for x in faces), reverse=True)
        if len(big) > 1 and big[1] > 0.8 * big[0]:
            raise PrepError(f, f"--person: {len(faces)} faces of similar size in the reference photo; give a photo (or crop) where the person's face is the largest")
        e = embed(img, face)
        if e.eye_px < MIN_EYE_PX:
            raise PrepError(f, f"--person: the face in the reference photo is too small ({e.eye_px:.0f} px between the eyes, at least {MIN_EYE_PX:.0f} needed)")
        if e.turn > MAX_TURN:
            raise PrepError(f, f"--person: the face in the reference photo is turned too far (turn {e.turn:.2f}, at most {MAX_TURN}); give a photo facing the camera")
        sources.append(str(f))
        vectors.append(tuple(round(float(v), 6) for v in e.vector))
    return Reference(tuple(sources), tuple(vectors), THRESHOLD if threshold is None else threshold)


@dataclass(frozen=True)
class Match:
    """A decision about one face, frame set or track. ``similarity`` is the robust (median)
    similarity to the reference; ``uncertain`` says the decision could go the other way and why."""

    similarity: float | None
    matched: bool
    uncertain: bool
    frames_used: int
    frames_seen: int
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "matched": self.matched,
            "uncertain": self.uncertain,
            "frames_used": self.frames_used,
            "frames_seen": self.frames_seen,
            "reason": self.reason,
        }


def decide(similarities: Sequence[float], ref: Reference, usable: Sequence[bool] | None = None) -> Match:
    """One decision from the per-frame similarities of one face (track).

    The usable frames (big and frontal enough) decide when there are any, else all frames do
    and the match is marked uncertain. The median decides, so one bad frame cannot flip it;
    the match is uncertain when the median is within ``ref.band`` of the threshold or when the
    frames disagree (fewer than two thirds on the median's side).
    """
    sims = np.asarray(similarities, np.float64)
    use = np.ones(len(sims), bool) if usable is None else np.asarray(usable, bool)
    if not len(sims):
        return Match(None, False, True, 0, 0, "no face to identify")
    reasons = []
    if not use.any():
        use = np.ones(len(sims), bool)
        reasons.append("only small or turned faces")
    s = sims[use]
    med = float(np.median(s))
    matched = med >= ref.threshold
    if abs(med - ref.threshold) <= ref.band:
        reasons.append(f"similarity {med:.3f} is close to the threshold {ref.threshold:.3f}")
    agree = float(np.mean((s >= ref.threshold) == matched))
    if len(s) >= 3 and agree < 2 / 3:
        reasons.append(f"frames disagree ({agree:.0%} on the decided side)")
    return Match(med, matched, bool(reasons), int(use.sum()) if "only small or turned faces" not in reasons else 0, len(sims), "; ".join(reasons) or None)


def face_match(e: FaceEmbedding, ref: Reference) -> dict[str, Any]:
    """The match record of one face (a photo's): similarity, matched, uncertain and why."""
    s = ref.similarity(e.vector)
    m = decide([s], ref)
    reasons = [r for r in (e.why_unusable(), m.reason) if r]
    return {"similarity": round(s, 4), "matched": m.matched, "uncertain": bool(reasons), "reason": "; ".join(reasons) or None}


@dataclass(frozen=True)
class TrackIdentity:
    """A face track's identity: ``vector`` (unit mean of its usable frames' vectors, for
    clustering; ``None`` without any face) and ``match`` against the reference (``None`` without one)."""

    vector: np.ndarray | None
    match: Match | None
    frames: tuple[int, ...]  # the frames embedded, in order
    similarities: tuple[float, ...]  # per embedded frame (empty without a reference)


def pick_evenly(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)`` (all of them when ``n <= k``)."""
    if n <= k:
        return list(range(n))
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, k)})


def track_identity(samples: Iterable[tuple[int, np.ndarray, Face]], ref: Reference | None = None) -> TrackIdentity:
    """The identity of one face track from ``(frame index, image HxWx3 uint8 BGR, face)`` samples
    (pass a handful spread over the track, see :func:`pick_evenly`: each costs about 80 ms).

    This is the call for a segment's track in ``crop --split``: similarity, matched,
    uncertain and frames used are in ``.match``; ``.vector`` goes to :class:`Clusterer`.
    """
    frames, embs = [], []
    for i, img, face in samples:
        frames.append(int(i))
        embs.append(embed(img, face))
    return identity_of(frames, embs, ref)


def identity_of(frames: Sequence[int], embs: Sequence[FaceEmbedding], ref: Reference | None) -> TrackIdentity:
    """:func:`track_identity` from embeddings already computed."""
    if not embs:
        return TrackIdentity(None, decide([], ref) if ref else None, (), ())
    usable = [e.usable for e in embs]
    vs = np.array([e.vector for e in embs])
    pick = vs[np.array(usable)] if any(usable) else vs
    mean = pick.mean(axis=0)
    vector = (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)
    if ref is None:
        return TrackIdentity(vector, None, tuple(frames), ())
    sims = [ref.similarity(e.vector) for e in embs]
    return TrackIdentity(vector, decide(sims, ref, usable), tuple(frames), tuple(round(s, 4) for s in sims))


def person_folder(label: int) -> str:
    """``person_00``, ``person_01``, ...: person 0 is the one with the most faces."""
    return f"person_{label:02d}"


@dataclass
class Clusterer:
    """Incremental leader clustering: each vector joins the person whose running centroid is
    most similar (at least ``threshold``) or starts a new person. Memory is one centroid per
    person, whatever the number of faces; the same vectors in the same order give the same
    labels. Labels are in order of first appearance; :meth:`ranking` renumbers by size."""

    threshold: float = THRESHOLD
    sums: list[np.ndarray] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    # the centroids made unit length, one row per person, updated where a person changes (made
    # again for every face, they cost time that grew with the number of persons: a crowd's
    # thousands of faces took seconds)
    _unit: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)

    def _set_unit(self, k: int) -> None:
        if k >= len(self._unit):  # room for more persons (the vectors' width is the first one's)
            grown = np.zeros((max(16, 2 * len(self._unit)), len(self.sums[k])))
            if len(self._unit):
                grown[: len(self._unit)] = self._unit
            self._unit = grown
        row = self.sums[k][None, :].copy()  # normalised as a one-row matrix: the same bits as all rows at once
        row /= np.maximum(np.linalg.norm(row, axis=1, keepdims=True), 1e-12)
        self._unit[k] = row[0]

    def add(self, v: np.ndarray, prefer: Iterable[int] = (), floor: float | None = None) -> tuple[int, float]:
        """The label given to ``v`` and its similarity to that person's centroid before it joined.
        ``prefer``, ``floor``: a face below the threshold for everyone joins the most similar of
        the ``prefer`` persons (those on the frame before) when it reaches ``floor`` with them
        (hysteresis: a person stays the same person through a soft or turned moment)."""
        v = np.asarray(v, np.float64)
        if self.sums:
            sims = self.similarities(v)
            best = int(np.argmax(sims))
            if sims[best] >= self.threshold:
                self.sums[best] = self.sums[best] + v
                self.counts[best] += 1
                self._set_unit(best)
                return best, float(sims[best])
            near = [k for k in prefer if floor is not None and sims[k] >= floor]
            if near:  # counted, but the doubtful face does not move the person's centroid
                best = max(near, key=lambda k: (sims[k], -k))
                self.counts[best] += 1
                return best, float(sims[best])
        self.sums.append(v.copy())
        self.counts.append(1)
        self._set_unit(len(self.sums) - 1)
        return len(self.sums) - 1, 1.0

    def similarities(self, v: np.ndarray) -> np.ndarray:
        """``v``'s similarity to each person's centroid (empty before the first person)."""
        return self._unit[: len(self.sums)] @ np.asarray(v, np.float64) if self.sums else np.zeros(0)

    def ranking(self) -> dict[int, int]:
        """First-appearance label -> final label (most faces first; ties keep first appearance)."""
        order = sorted(range(len(self.counts)), key=lambda k: (-self.counts[k], k))
        return {old: new for new, old in enumerate(order)}


def cluster(vectors: Iterable[np.ndarray], threshold: float = THRESHOLD) -> list[int]:
    """Person labels (0 = the person with the most vectors) for track or face vectors given
    in a fixed order (sort by source and time first: the order decides ties)."""
    cl = Clusterer(threshold)
    first = [cl.add(v)[0] for v in vectors]
    rank = cl.ranking()
    return [rank[k] for k in first]


def _smooth3(x: np.ndarray) -> np.ndarray:
    """Running median of three (ends kept): one odd value between two agreeing ones is replaced."""
    if len(x) < 3:
        return x.copy()
    y = x.copy()
    y[1:-1] = np.median(np.stack([x[:-2], x[1:-1], x[2:]]), axis=0)
    return y


class ChipSampler:
    """The identity consumer of a video's analysis pass: the aligned chips of the faces on a
    sample of analysed frames, kept so that ``--person`` and ``--group-by person`` need no
    second decode (:func:`track_identities` embeds a handful per track once the tracks are
    known).

    Memory is bounded whatever the video's length: at most ``cap`` chips (about 67 kB each)
    are held; when the store is full the sampling step doubles and the chips off the new step
    are dropped, so the kept frames stay evenly spread over the video. ``feed`` takes the
    frame the faces were found on (the analysis frame) and those faces, in its pixels.
    """

    def __init__(self, step: int, cap: int = 1000):
        require()
        self.step = max(1, int(step))
        self.cap = cap
        self.kept: dict[int, list[tuple[np.ndarray, float, float] | None]] = {}
        self.count = 0

    def feed(self, index: int, frame: np.ndarray, faces: Sequence[Face]) -> None:
        if index % self.step or not faces:
            return
        self.kept[index] = [_chip_or_none(frame, f) for f in faces]
        self.count += len(faces)
        while self.count > self.cap and len(self.kept) > 1:
            self.step *= 2
            for i in [i for i in self.kept if i % self.step]:
                self.count -= len(self.kept.pop(i))

    def chip_of(self, index: int, position: int) -> tuple[np.ndarray, float, float] | None:
        """The chip, eye distance and turn of face ``position`` on frame ``index`` (None when
        that frame was not kept or the face gave no chip)."""
        faces = self.kept.get(index)
        return faces[position] if faces is not None and position < len(faces) else None


def _position(faces: list[Face], face: Face) -> int:
    return next(k for k, f in enumerate(faces) if f is face)


def face_similarity(ref: Reference, frame: np.ndarray, face: Face) -> float | None:
    """How much ``face`` (in ``frame``'s pixels) looks like the person of ``ref`` (None when it
    gives no chip): one descriptor, about 15 ms."""
    c = _chip_or_none(frame, face)
    return None if c is None else ref.similarity(describe_chip(c[0]))


def _chip_or_none(frame: np.ndarray, face: Face) -> tuple[np.ndarray, float, float] | None:
    try:
        return chip(frame, face)
    except Exception:  # a face at the very edge the landmark model cannot place: not sampled
        return None


def track_identities(info: Any, fps: float | None, detections: dict[int, list[Face]], tracks: Sequence[Sequence[tuple[int, Face]]], sampler: ChipSampler | None, ref: Reference | None = None, per_track: int = 12, side: int = 960) -> list[TrackIdentity]:
    """The identity of each face track (as :func:`identify_tracks`), from the chips the
    analysis pass kept: ``tracks[k]`` is the track's ``(frame index, face)`` pairs, its faces
    those of ``detections`` (the analysis's faces, in the order the sampler was fed them). Up
    to ``per_track`` of each track's kept chips, spread evenly, are embedded (about 80 ms
    each). A track the sampler holds fewer than two chips of (a short track in a long video,
    where the sampling step has grown; or no ``sampler``) is decoded again for it, as before."""
    out: list[TrackIdentity | None] = []
    again: list[int] = []
    for k, tr in enumerate(tracks):
        have = [] if sampler is None else [(i, c) for i, face in tr if (c := sampler.chip_of(int(i), _position(detections[i], face))) is not None]
        if len(have) < min(2, len(tr)):
            out.append(None)
            again.append(k)
            continue
        picked = [have[j] for j in pick_evenly(len(have), per_track)]
        embs = [FaceEmbedding(describe_chip(c), eye_px, turn) for _, (c, eye_px, turn) in picked]
        out.append(identity_of([i for i, _ in picked], embs, ref))
    if again:
        for k, tid in zip(again, identify_tracks(info, fps, [tracks[k] for k in again], ref, side, per_track)):
            out[k] = tid
    return out  # type: ignore[return-value]


def identify_tracks(info: Any, fps: float | None, tracks: Sequence[Sequence[tuple[int, Face]]], ref: Reference | None = None, side: int = 960, per_track: int = 12) -> list[TrackIdentity]:
    """The identity of each face track of one video, decoding it once.

    ``info``: :class:`prep.probe.VideoInfo`; ``tracks[k]``: ``(frame index, face)`` pairs in
    time order, frame indices on the timeline of ``fps`` (``None``: the source's frames), faces
    in display pixels. Up to ``per_track`` frames of each track, spread evenly, are decoded
    (longer side ``side``) and embedded (about 80 ms each). Returns one :class:`TrackIdentity`
    per track: ``.match`` (with ``ref``: similarity, matched, uncertain, frames used),
    ``.vector`` (for :func:`cluster`), ``.frames`` and ``.similarities`` per embedded frame.
    This is the call for ``crop --split``'s segments: one track per segment.
    """
    from .decode import iter_frames, scaled_size

    require()
    want: dict[int, list[tuple[int, Face]]] = {}
    for k, tr in enumerate(tracks):
        for pos in pick_evenly(len(tr), per_track):
            i, face = tr[pos]
            want.setdefault(int(i), []).append((k, face))
    got: list[list[tuple[int, FaceEmbedding]]] = [[] for _ in tracks]
    if want:
        w, _ = scaled_size(info, side)
        f = w / info.display_width
        last = max(want)
        for i, frame in enumerate(iter_frames(info, fps, side)):
            for k, face in want.get(i, []):
                got[k].append((i, embed(frame, face.scaled(f))))
            if i >= last:
                break
    return [identity_of([i for i, _ in g], [e for _, e in g], ref) for g in got]


def choose_person(info: Any, detections: dict[int, list[Face]], ref: Reference, fps: float, max_gap: int, chips: ChipSampler | None = None, side: int = 960, per_track: int = 12) -> Any:
    """``crop --person``: the subject is the person of ``ref``, not the most present face.

    ``detections`` are the analysis pass's faces (frame index at ``fps`` -> faces, display
    pixels). Faces are linked into tracks (:func:`prep.video.tracks.face_tracks`); up to
    ``per_track`` frames of each track are embedded: the analysis pass's ``chips`` (no second
    decode), or without them frames decoded again (longer side ``side``).
    A face counts as the person where the nearest embedded frame of its track matches after a
    running median of three (one bad frame does not flip it; on a track that matches as a
    whole, down to ``ref.band`` under the threshold), so a track that runs across a cut from
    one person to another keeps only the person's part. Returns a
    :class:`prep.subject.SubjectResult` whose ``person`` holds the match record; raises
    :class:`PrepError` when the person is in none of the tracks.
    """
    from .subject import subject_result
    from .video.tracks import face_tracks

    require()
    tracks = [t for _, t in face_tracks(detections, [(0, max(detections, default=0) + 1)], max_gap)]
    if not tracks:
        raise PrepError(info.path, f"no face seen on two analysed frames or more in {len(detections)} analysed frames")
    pairs = [list(zip(t.frames, t.faces)) for t in tracks]
    ids = track_identities(info, fps, detections, pairs, chips, ref, per_track, side)
    results = []
    for tr, tid in zip(tracks, ids):
        if not tid.frames:
            continue
        sims = np.array(tid.similarities)
        # a track that matches keeps its faces down to the band under the threshold (the
        # hysteresis of frames --person: the person stays the person through a soft moment);
        # another person on the same track, across a cut, is far under it and is still cut off
        keep = _smooth3(sims) >= (ref.threshold - ref.band if tid.match.matched else ref.threshold)
        nearest = np.abs(np.array(tr.frames)[:, None] - np.array(tid.frames)[None, :]).argmin(axis=1)
        results.append((tid.match, tr, keep[nearest], sims, keep))
    results.sort(key=lambda r: -(r[0].similarity or -1.0))
    frames: dict[int, Face] = {}
    used: list[float] = []
    for m, tr, face_keep, sims, keep in results:
        if not face_keep.any():
            continue
        for fr, face, ok in zip(tr.frames, tr.faces, face_keep):
            if ok and fr not in frames:
                frames[fr] = face
        used.extend(sims[keep].tolist())
    track_report = [{"frames": [tr.frames[0], tr.frames[-1]], **m.to_dict(), "kept_faces": int(fk.sum()), "faces": len(tr.frames)} for m, tr, fk, _, _ in results]
    if not frames:
        best = results[0][0].similarity if results else None
        raise PrepError(info.path, f"the person is not in this clip: best face track similarity {best:.3f} < {ref.threshold:.3f} ({len(results)} face tracks checked)" if best is not None else "the person is not in this clip (no face could be identified)")
    res = subject_result(detections, tracks, frames)
    res.person = {"reference": ref.to_dict(), "match": decide(used, ref).to_dict(), "tracks": track_report}
    return res


class PresenceScan:
    """``frames --person``: on which frames is the person? Feed every frame in order with the
    faces found on it (:meth:`feed`), then :meth:`finish`.

    The faces of every ``stride``-th frame are embedded; where the answer changes between two
    embedded frames, the frames in between are bisected (their aligned chips are kept, never
    more than ``stride`` frames), so the change lands on the exact frame at a cost of about
    log2(stride) more embeddings. A frame is the person at ``ref.threshold`` or above, not the
    person below ``threshold - band``, and in between (uncertain) it keeps the answer of the
    frame before it (hysteresis: a known face stays known through a soft or turned moment, an
    unknown one is not let in). At the end a short run decided by one uncertain embedded frame
    between two runs of the other answer is flipped: one bad frame does not cut a shot.
    Memory: one small tuple per frame and at most ``stride`` frames of chips.
    """

    def __init__(self, ref: Reference, stride: int = 6, min_score: float = 0.8):
        self.ref = ref
        self.stride = max(1, stride)
        self.min_score = min_score
        self.buf: list[tuple[int, list[tuple[np.ndarray, float, float]]]] = []  # since the last embedded frame
        self.state: list[bool | None] = []  # per frame: True person, False other faces, None no face
        self.sim: list[float | None] = []  # the similarity that decided each frame
        self.measured: list[bool] = []
        self.embedded = 0
        self.best_face: dict[int, int] = {}  # measured frame -> index (among its confident faces) of the most similar face

    def feed(self, index: int, frame: np.ndarray, faces: list[Face]) -> None:
        """``index`` must count up from 0; ``faces`` in ``frame``'s pixels."""
        chips = [chip(frame, f) for f in faces if f.score >= self.min_score]
        self.state.append(None)
        self.sim.append(None)
        self.measured.append(False)
        self.buf.append((index, chips))
        if len(self.buf) == 1 or index - self.buf[0][0] >= self.stride:
            self._sample()

    def _measure(self, k: int, before: bool | None) -> bool | None:
        """Embed buf[k]'s faces and decide, ``before`` being the answer of the frame before it."""
        index, chips = self.buf[k]
        if not chips:
            state, s = None, None
        else:
            sims = [self.ref.similarity(describe_chip(c)) for c, _, _ in chips]
            s = max(sims)
            self.best_face[index] = int(np.argmax(sims))
            self.embedded += len(chips)
            t = self.ref.threshold
            state = True if s >= t else False if s < t - self.ref.band else bool(before)
        self.state[index], self.sim[index], self.measured[index] = state, s, True
        return state

    def _sample(self) -> None:
        n = len(self.buf)
        prev = self.state[self.buf[0][0]] if n > 1 else None
        self._measure(n - 1, prev)
        if n > 1:
            lo, hi = 0, n - 1
            while self.state[self.buf[hi][0]] != prev and hi - lo > 1:
                mid = (lo + hi) // 2
                if self._measure(mid, prev) == prev:
                    lo = mid
                else:
                    hi = mid
            # the other frames take the decision of the nearest measured frame (the earlier on a tie)
            meas = np.array([j for j in range(n) if self.measured[self.buf[j][0]]])
            for j in range(1, n - 1):
                index, chips = self.buf[j]
                if self.measured[index]:
                    continue
                src = self.buf[int(meas[np.argmin(np.abs(meas - j))])][0]
                self.state[index] = self.state[src] if chips else None
                self.sim[index] = self.sim[src] if chips else None
        self.buf = [self.buf[-1]]

    def finish(self) -> list[dict[str, Any]]:
        """Per frame: ``{"frame", "person": True/False/None (no face), "similarity", "measured"}``."""
        if len(self.buf) > 1:
            self._sample()
        self._smooth()
        return [
            {"frame": i, "person": st, "similarity": None if s is None else round(s, 4), "measured": me, "uncertain": s is not None and abs(s - self.ref.threshold) <= self.ref.band}
            for i, (st, s, me) in enumerate(zip(self.state, self.sim, self.measured))
        ]

    def _smooth(self) -> None:
        runs: list[list[int]] = []  # [start, end, state] over frames with a face
        for i, st in enumerate(self.state):
            if st is None:
                continue
            if runs and runs[-1][2] == st:
                runs[-1][1] = i
            else:
                runs.append([i, i, st])
        for r in range(1, len(runs) - 1):
            a, b, st = runs[r]
            if runs[r - 1][2] != st and runs[r + 1][2] != st:
                sims = [self.sim[i] for i in range(a, b + 1) if self.measured[i] and self.sim[i] is not None]
                if len(sims) == 1 and abs(sims[0] - self.ref.threshold) <= 2 * self.ref.band:
                    for i in range(a, b + 1):
                        if self.state[i] is not None:
                            self.state[i] = not st


PENDING_CHIPS = 64  # first faces of not-yet-kept persons held for their contact sheets (about 4 MB)


class GroupScan(PresenceScan):
    """``frames --group-by person``: which people are on each frame. The same sampling and
    bisection as :class:`PresenceScan`, but a frame's answer is the set of persons on it: each
    embedded face joins a :class:`Clusterer` (one centroid per person), with the same
    hysteresis (a face within the band under the threshold stays the person it was on the
    frame before instead of starting a person of its own). Persons seen on fewer
    than ``min_faces`` embedded faces (a turned face that formed its own cluster, say) are
    dropped. Up to ``keep_chips`` aligned chips per person are kept for its contact sheet."""

    def __init__(self, stride: int = 6, min_score: float = 0.8, threshold: float = THRESHOLD, min_faces: int = 3, keep_chips: int = 24):
        super().__init__(Reference((), (), threshold), stride, min_score)
        self.clusterer = Clusterer(threshold)
        self.min_faces = min_faces
        self.keep_chips = keep_chips
        self.chips: dict[int, list[tuple[int, np.ndarray]]] = {}
        # the first faces of a person not yet seen min_faces times wait here, at most PENDING_CHIPS
        # of them (the oldest go first): a crowd's one-off faces cannot fill memory
        self.pending: dict[int, list[tuple[int, np.ndarray]]] = {}
        self._pending_order: deque = deque()

    def _measure(self, k: int, before: Any) -> Any:
        index, chips = self.buf[k]
        state = None
        if chips:
            labels = self._labels([describe_chip(c) for c, _, _ in chips], set(before or ()))
            for j, label in enumerate(labels):
                c = chips[j][0]
                # chips of a person seen often enough to be kept; the first ones wait, bounded
                # (the many one-off faces of a crowd held up to 24 chips each, 67 KB a chip)
                if self.clusterer.counts[label] >= self.min_faces:
                    kept = self.chips.setdefault(label, self.pending.pop(label, []))
                    if len(kept) < self.keep_chips:
                        kept.append((index, c))
                else:
                    self.pending.setdefault(label, []).append((index, c))
                    self._pending_order.append(label)
                    while len(self._pending_order) > PENDING_CHIPS:
                        old = self._pending_order.popleft()
                        if self.pending.get(old):
                            self.pending[old].pop(0)
                            if not self.pending[old]:
                                del self.pending[old]
            self.embedded += len(chips)
            state = frozenset(labels)
        self.state[index], self.measured[index] = state, True
        return state

    def _labels(self, vectors: list[np.ndarray], before: set[int]) -> list[int]:
        """The persons of a frame's faces. In the detector's order, each face joins whoever it
        matches or starts a person, as without hysteresis; a face under the threshold for
        everyone but within the band of a person on the frame before is doubtful, and waits:
        then the doubtful ones, the most similar first, each stay a person of the frame before
        that no face of this frame has taken (as PresenceScan keeps its answer), else start one."""
        floor = self.ref.threshold - self.ref.band
        labels: list[int | None] = [None] * len(vectors)
        doubtful = []
        for j, v in enumerate(vectors):
            sims = self.clusterer.similarities(v)
            if len(sims) and sims.max() < self.ref.threshold and any(sims[k] >= floor for k in before):
                doubtful.append(j)
            else:
                labels[j] = self.clusterer.add(v)[0]
        doubtful.sort(key=lambda j: -max(float(self.clusterer.similarities(vectors[j])[k]) for k in before))
        for j in doubtful:
            labels[j] = self.clusterer.add(vectors[j], prefer=sorted(before - set(labels) - {None}), floor=floor)[0]  # type: ignore[operator]
        return labels  # type: ignore[return-value]

    def _smooth(self) -> None:
        pass

    def finish(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """Per frame: ``{"frame", "persons": [final labels, person 0 has the most faces], "measured"}``."""
        if len(self.buf) > 1:
            self._sample()
        rank = self.clusterer.ranking()
        self.kept = {k for k, n in enumerate(self.clusterer.counts) if n >= self.min_faces}
        return [
            {"frame": i, "persons": sorted(rank[k] for k in (st or ()) if k in self.kept), "measured": me}
            for i, (st, me) in enumerate(zip(self.state, self.measured))
        ]

    def centroids(self) -> dict[int, np.ndarray]:
        """Final label -> the person's centroid (128 float64, unit length) for the persons kept:
        what stands for a video's person when persons are merged across videos. After :meth:`finish`."""
        rank = self.clusterer.ranking()
        return {rank[k]: s / max(float(np.linalg.norm(s)), 1e-12) for k, s in enumerate(self.clusterer.sums) if k in self.kept}

    def sheet_tiles(self) -> dict[int, list[tuple[int, np.ndarray]]]:
        """Final label -> (frame, chip HxWx3 uint8 BGR) for the persons kept."""
        rank = self.clusterer.ranking()
        return {rank[k]: [(i, c[:, :, ::-1].copy()) for i, c in sorted(v, key=lambda x: x[0])] for k, v in self.chips.items() if k in self.kept}
