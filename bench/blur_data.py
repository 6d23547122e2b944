"""Face sets for evaluating the blur score (bench/eval_blur.py; not part of the package)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PREP_SHARED_DATA", ROOT.parent / "shared" / "data"))
sys.path.insert(0, str(ROOT))

from prep.align import align, face_scale  # noqa: E402
from prep.blur import CANON  # noqa: E402
from prep.detect import create_detector  # noqa: E402
from prep.kernels import apply_kernel, disk_kernel, motion_kernel  # noqa: E402

ALIGN = 512  # blur lengths are given at this face size


def detector():
    return create_detector("yunet", str(SHARED / "weights"), max_side=None)


def photo_faces(min_face: float = 100.0) -> list[tuple[str, float, np.ndarray]]:
    """(name, upscale, 512 aligned BGR crop) for each confident face in images/.

    ``upscale``: how much the photo was enlarged to bring the face to the 512 template
    (below 1: shrunk)."""
    det = detector()
    out = []
    for p in sorted((SHARED / "images").glob("*")):
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            continue
        for i, f in enumerate(det.detect(img)):
            if f.score >= 0.9 and f.size >= min_face:
                out.append((f"{p.name}#{i}", face_scale(f, ALIGN), align(img, f, ALIGN)))
    return out


def video_faces(per_clip: int = 40) -> list[tuple[str, float, np.ndarray]]:
    """Faces from frames spread evenly through each clip in videos/ (for fitting only)."""
    from prep.decode import iter_frames
    from prep.probe import probe_video

    det = detector()
    out = []
    for p in sorted((SHARED / "videos").glob("*.mp4")):
        info = probe_video(p)
        step = max(1, info.frame_count // per_clip)
        for i, frame in enumerate(iter_frames(info)):
            if i % step:
                continue
            faces = [f for f in det.detect(frame) if f.score >= 0.9]
            if faces:
                f = max(faces, key=lambda q: q.size)
                out.append((f"{p.name}@{i}", f.size, align(frame, f, ALIGN)))
    return out


def pair_groups(*folders: str) -> dict[str, dict[str, Path]]:
    """``{stem: {"blur": path, "sharp": path}}`` for the blurred/sharp pairs in ``blur/<folder>``
    (files named ``<stem>__...__blur*`` and ``<stem>__...__sharp``)."""
    groups: dict[str, dict[str, Path]] = {}
    for folder in folders:
        for p in sorted((SHARED / "blur" / folder).glob("*")):
            stem, kind = p.stem.split("__")[0], p.stem.split("__")[-1]
            groups.setdefault(stem, {})["blur" if kind.startswith("blur") else "sharp"] = p
    return groups


def reframe(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same unblurred face, framed a little differently (rotation, scale, shift, mirror)."""
    m = cv2.getRotationMatrix2D((256 + rng.uniform(-10, 10), 256 + rng.uniform(-10, 10)), rng.uniform(-8, 8), rng.uniform(0.9, 1.1))
    out = cv2.warpAffine(img, m, (ALIGN, ALIGN), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    return np.ascontiguousarray(out[:, ::-1]) if rng.random() < 0.5 else out


def photometric(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dimmer or brighter, lower contrast, a little sensor noise, a JPEG pass."""
    x = img.astype(np.float32)
    x = (x - x.mean()) * rng.uniform(0.5, 1.1) + x.mean()
    x = x * rng.uniform(0.25, 1.15) + rng.normal(0, rng.uniform(0, 2.0), x.shape)
    x = np.clip(x, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", x, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 96))])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def motion(img: np.ndarray, length: float, angle: float) -> np.ndarray:
    return apply_kernel(img, motion_kernel(length, angle))


def defocus(img: np.ndarray, radius: float) -> np.ndarray:
    return apply_kernel(img, disk_kernel(radius))


def canonical_grey(img: np.ndarray) -> np.ndarray:
    """A 512 template-aligned crop as the scorer's normalised grey crop (``CANON`` px)."""
    return cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), (CANON, CANON), interpolation=cv2.INTER_AREA)
