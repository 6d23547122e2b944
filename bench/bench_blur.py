"""Blur scoring speed: face crops per second on one core (OpenCV limited to one thread).

Each crop is aligned from the full photo (similarity warp to the 256 px template) and
scored, i.e. everything after detection. Faces from ../shared/data/images, or the sample
clip's first frame when that folder is absent.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from prep.blur import blur_score  # noqa: E402
from prep.detect import create_detector  # noqa: E402
from prep.images import read_image  # noqa: E402

from blur_data import SHARED  # noqa: E402


def main() -> None:
    cv2.setNumThreads(1)
    det = create_detector("auto", str(SHARED / "weights") if (SHARED / "weights").is_dir() else None)
    items = []
    for p in sorted((SHARED / "images").glob("*"))[:20]:
        img = read_image(p)
        items += [(img, f) for f in det.detect(img)[:3]]
    if not items:
        raise SystemExit("no faces found")
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 5.0:
        for img, face in items:
            blur_score(img, face)
            n += 1
    rate = n / (time.perf_counter() - t0)
    line = f"blur scoring: {rate:.0f} face crops per second on one core (align + score, {len(items)} faces from shared/data/images; target 300)"
    print(line)
    (ROOT / "bench" / "blur_speed.md").write_text(line + "\n")


if __name__ == "__main__":
    main()
