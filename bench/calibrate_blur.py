"""Where the blur thresholds in presets/blur.toml come from (``make calibrate-blur``).

Fitted on faces from the shared *videos* only, so the photo figures of ``make eval-blur``
(faces from images/) stay a held-out test:

- photo threshold: the 2nd percentile of the scores of faces sampled evenly through every
  clip in videos/ (sharp faces, with the few really blurred frames the clips contain), so
  about 2% of faces like them fall below it;
- video drop: how far below its clip's running median a frame must fall. Printed beside it:
  the drop of the blink frame (must stay under it) and of the real motion-blurred frames of
  blur/video_frames (must exceed it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from blur_data import canonical_grey, detector, pair_groups, video_faces  # noqa: E402

from prep.blur import blur_score, score_grey  # noqa: E402
from prep.blurdecide import BlurConfig  # noqa: E402
from prep.detect import main_face  # noqa: E402
from prep.images import read_image  # noqa: E402

BLINK = "videoretalking_4"  # its "blurry" frame is a blink, not blur


def main() -> None:
    scores = np.array([score_grey(canonical_grey(img)).score for _, _, img in video_faces()])
    print(f"faces from the clips: {len(scores)}; score percentiles 1/2/5/50: "
          + " / ".join(f"{np.quantile(scores, q):+.3f}" for q in (0.01, 0.02, 0.05, 0.5)))
    print(f"photo threshold (2nd percentile): {np.quantile(scores, 0.02):.3f}")
    det = detector()
    drops = {}
    for stem, g in pair_groups("video_frames").items():
        s = {}
        for k, path in g.items():
            img = read_image(path)
            s[k] = blur_score(img, main_face([f for f in det.detect(img) if f.score >= 0.8])).score
        drops[stem] = s["sharp"] - s["blur"]
        print(f"{stem:20s} drop {drops[stem]:.3f} (blurred frame {s['blur']:+.3f})")
    blink = drops.pop(BLINK)
    cfg = BlurConfig.resolve()
    print(f"video drop must lie between the blink's {blink:.3f} and real blur's {min(drops.values()):.3f}; "
          f"presets/blur.toml: photo_threshold {cfg.photo_threshold}, video_drop {cfg.video_drop}")


if __name__ == "__main__":
    main()
