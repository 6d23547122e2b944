"""Who is who: a face's identity as a 128-d vector, a reference person, matches and clusters.

The embedding is dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1.dat``)
on a chip aligned with dlib's 5-point landmark model (``shape_predictor_5_face_landmarks.dat``),
both CC0 files shipped by the ``face_recognition_models`` package (the optional extra
``prep[identity]``). Its 68-point model is never loaded. Nothing is downloaded at run time.

Path of a face: detected box (any detector) -> 5 landmarks inside the box -> 150 px chip ->
128-d descriptor, L2-normalised -> cosine similarity to the reference (the best over the
reference photos) -> :class:`Match` (matched / uncertain, with the reason).

The API other stages use:

- :func:`load_reference` (driver, once): photos or folders -> a picklable :class:`Reference`
  that travels inside the resolved config to the workers.
- :func:`embed` (one face of one image) -> :class:`FaceEmbedding` (vector, size, turn).
- :func:`track_identity` (several frames of one face track) -> :class:`TrackIdentity`
  (the track's mean vector and, with a reference, its :class:`Match`; robust to bad frames).
- :func:`decide` (similarities of one track) -> :class:`Match`.
- :class:`Clusterer` / :func:`cluster` (vectors in a fixed order) -> person labels, holding
  only one centroid per person (never an n x n matrix); :func:`person_folder` names them.
- :class:`PresenceScan` (a video's frames one at a time) -> per-frame "is the person here",
  exact at cuts (used by ``frames --person``).

Thresholds come from ``bench/calibrate_identity.py`` (see ``bench/identity_results.md``).
"""

from __future__ import annotations

import importlib.util
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
    """One landmark model and one descriptor per process (loading takes about a second)."""
    if not _models:
        import dlib

        lm, rec = model_paths()
        _models["shape"] = dlib.shape_predictor(str(lm))
        _models["rec"] = dlib.face_recognition_model_v1(str(rec))
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


def landmarks(image: np.ndarray, face: Face) -> tuple[Any, np.ndarray]:
    """dlib's 5 landmarks inside ``face.box`` of ``image`` (HxWx3 uint8 BGR): the dlib shape and
    a ``5x2`` array (two corners of one eye, two of the other, the base of the nose)."""
    import dlib

    shape_model, _ = _load()
    x, y, w, h = face.box
    rect = dlib.rectangle(int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))
    shape = shape_model(_rgb(image), rect)
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
    """The aligned ``150x150x3 uint8 RGB`` chip of ``face``, its eye distance and its turn."""
    import dlib

    shape, pts = landmarks(image, face)
    eye_px, turn = pose_facts(pts)
    return dlib.get_face_chip(_rgb(image), shape, size=CHIP, padding=0.25), eye_px, turn


def describe_chip(face_chip: np.ndarray) -> np.ndarray:
    """128 float32, unit length, of an aligned chip from :func:`chip` (about 80 ms on a CPU core)."""
    _, rec = _load()
    v = np.asarray(rec.compute_face_descriptor(face_chip), np.float32)
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
        if e.eye_px < MIN_EYE_PX / 2:
            raise PrepError(f, f"--person: the face in the reference photo is too small ({e.eye_px:.0f} px between the eyes)")
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

    def add(self, v: np.ndarray) -> tuple[int, float]:
        """The label given to ``v`` and its similarity to that person's centroid before it joined."""
        v = np.asarray(v, np.float64)
        if self.sums:
            c = np.array(self.sums)
            c /= np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
            sims = c @ v
            best = int(np.argmax(sims))
            if sims[best] >= self.threshold:
                self.sums[best] = self.sums[best] + v
                self.counts[best] += 1
                return best, float(sims[best])
        self.sums.append(v.copy())
        self.counts.append(1)
        return len(self.sums) - 1, 1.0

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
