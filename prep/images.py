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
    if data[:2] == b"\xff\xd8" and not jpeg_complete(data):
        raise PrepError(path, "truncated JPEG (no end-of-image marker)")
    if data[:8] == b"\x89PNG\r\n\x1a\n" and not png_complete(data):
        raise PrepError(path, "truncated PNG (no end chunk)")
    buf = np.frombuffer(data, np.uint8)
    # IMREAD_COLOR applies the EXIF orientation, drops alpha, expands grey, and scales 16-bit to 8-bit
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as exc:  # OpenCV refuses, among others, images over its size limit (2^30 pixels)
        why = "over OpenCV's limit of 2^30 pixels" if "MAX_IMAGE_PIXELS" in str(exc) else " ".join(str(exc).split())[-160:]
        raise PrepError(path, f"not a readable image ({why})") from None
    if img is None or img.size == 0:
        raise PrepError(path, "not a readable image")
    if img.dtype != np.uint8:  # pragma: no cover - IMREAD_COLOR already gives 8-bit
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(1.0, float(img.max())))
    return img


def png_complete(data: bytes) -> bool:
    """Whether a PNG's chunks, walked by their lengths, reach the end chunk (what follows it,
    however long, is allowed, as decoders allow it)."""
    n, pos = len(data), 8
    while pos + 8 <= n:
        if data[pos + 4 : pos + 8] == b"IEND":
            return True
        pos += 12 + int.from_bytes(data[pos : pos + 4], "big")
    return False


def jpeg_complete(data: bytes) -> bool:
    """Whether a JPEG's image reaches its end-of-image marker. The segments are walked by their
    lengths (an EXIF thumbnail's own marker, inside its segment, is not taken for the image's)
    and each scan's data up to the next marker; what follows the image's end is allowed: the
    video a phone appends to a "motion photo", an editor's trailer."""
    n, pos = len(data), 2
    while pos + 1 < n:
        if data[pos] != 0xFF:  # stray bytes before a marker: libjpeg skips them with a warning, and so does this walk
            pos = data.find(b"\xff", pos)
            if pos < 0:
                return False
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # a fill byte before a marker
            pos += 1
        elif marker == 0xD9:  # end of image
            return True
        elif 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            pos += 2
        else:
            if pos + 4 > n:
                return False
            pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
            if marker == 0xDA:  # a scan: its data runs to the next marker that is not a stuffed 0 or a restart
                while True:
                    pos = data.find(b"\xff", pos)
                    if pos < 0 or pos + 1 >= n:
                        return False
                    nxt = data[pos + 1]
                    if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
                        pos += 2
                    elif nxt == 0xFF:
                        pos += 1
                    else:
                        break
    return False


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
