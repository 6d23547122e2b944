"""Degradation speed: images per second per core for each model beside the floor (one JPEG
encode + decode of the same image), the speed-up over the reference BSRGAN code's ~230 ms per
512x512 image on one core of this machine, and prep pairs with 2 workers against 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("PREP_SHARED_DATA", ROOT.parent / "shared" / "data"))
REFERENCE_MS = 230.0

from prep.degrade import DEGRADATIONS, degrade, load_params  # noqa: E402


def source_image() -> np.ndarray:
    p = SHARED / "images" / "GFPGAN__cropped_faces__Adele_crop.png"
    if p.is_file():
        return cv2.resize(cv2.imread(str(p)), (512, 512))
    from skimage import data

    return cv2.resize(data.astronaut()[:, :, ::-1], (512, 512))


def per_image_ms(fn, n: int) -> float:
    fn(0)
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t) / n * 1000


def main() -> None:
    cv2.setNumThreads(1)
    img = source_image()
    rows = ["| degradation | scale | ms per image (1 core) | images/s/core | vs reference 230 ms |", "|---|---|---|---|---|"]

    def jpeg(_: int) -> None:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        cv2.imdecode(buf, cv2.IMREAD_COLOR)

    floor = per_image_ms(jpeg, 200)
    rows.append(f"| floor: one JPEG encode + decode | - | {floor:.1f} | {1000 / floor:.0f} | - |")
    for name in DEGRADATIONS:
        p = load_params(name)
        for sf in (1, 4):
            ms = per_image_ms(lambda i: degrade(img, np.random.default_rng(i), sf, p), 40)
            rows.append(f"| {name} | {sf} | {ms:.1f} | {1000 / ms:.1f} | {REFERENCE_MS / ms:.1f}x faster |")
            print(rows[-1], flush=True)
    # workers: the whole command on 48 photos
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for k in range(96):
            cv2.imwrite(str(src / f"{k:03d}.png"), np.roll(img, 7 * k, axis=1))
        times = {}
        for w in (1, 2):
            t = time.perf_counter()
            # one OpenCV and BLAS thread per process in both runs, so the comparison measures the workers
            env = {**os.environ, "OPENCV_FOR_THREADS_NUM": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
            subprocess.run([sys.executable, "-m", "prep.cli", "pairs", str(src), "-o", str(Path(tmp) / f"out{w}"), "--workers", str(w)], check=True, stdout=subprocess.DEVNULL, env=env)
            times[w] = time.perf_counter() - t
    rows += ["", f"`prep pairs` on 96 photos of 512 px (bsrgan, scale 1, reading and PNG writing included, one OpenCV and BLAS thread per process): 1 worker {times[1]:.1f} s, "
             f"2 workers {times[2]:.1f} s: {times[1] / times[2]:.2f}x."]
    text = "\n".join(rows) + "\n"
    (ROOT / "bench" / "pairs_results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
