"""Reading photos: any common format, grey, 16-bit, RGBA and EXIF-rotated, as 8-bit BGR."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .errors import PrepError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def read_image(path: str | Path) -> np.ndarray:
    """``HxWx3 uint8 BGR``, upright (EXIF orientation applied), alpha dropped, 16-bit scaled to 8.

    Raises :class:`PrepError` with a one-line reason for missing, empty, truncated or
    non-image files.
    """
    path = Path(path)
    if not path.is_file():
        raise PrepError(path, "file not found" if not path.exists() else "not a file")
    data = path.read_bytes()
    if not data:
        raise PrepError(path, "empty file (0 bytes)")
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-1024:]:
        raise PrepError(path, "truncated JPEG (no end-of-image marker)")
    if data[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND" not in data[-64:]:
        raise PrepError(path, "truncated PNG (no end chunk)")
    buf = np.frombuffer(data, np.uint8)
    # IMREAD_COLOR applies the EXIF orientation, drops alpha, expands grey, and scales 16-bit to 8-bit
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise PrepError(path, "not a readable image")
    if img.dtype != np.uint8:  # pragma: no cover - IMREAD_COLOR already gives 8-bit
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(1.0, float(img.max())))
    return img


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Lossless PNG, written atomically."""
    write_pngs([(path, image)])


def write_pngs(files: list[tuple[str | Path, np.ndarray]]) -> None:
    """PNGs that belong together (a sharp/degraded pair): all encoded and written under
    temporary names first, then renamed one after the other, so a run stopped meanwhile leaves
    the whole set or none of it (bar the instant between two renames)."""
    import contextlib

    from .fsutil import atomic_path

    data = []
    for path, image in files:
        ok, buf = cv2.imencode(".png", image)
        if not ok:
            raise PrepError(path, "PNG encoding failed")
        data.append((path, buf))
    with contextlib.ExitStack() as stack:
        for path, buf in data:
            stack.enter_context(atomic_path(path)).write_bytes(buf.tobytes())
