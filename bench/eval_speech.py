"""Accuracy of the speech check on edits of the shared clips with real speech (`make eval-speech`).

Every face of the speech clips is paired with audio whose truth is known exactly:
- its own audio, shifted by -6..+6 frames (audio late: +): the face is the speaker, and the
  offset is known;
- another clip's speech (a voice-over, or a listener who moves their lips to other words):
  the face is not the speaker.
Stretches of 20 s (whole clips), 10 s (halves) and 6 s (thirds) show how the measurement
depends on length. The face's embeddings are computed once per stretch and the audio is shifted
in samples, so every variant sees exactly the same pictures.

Writes bench/speech_results.md: the equal error rate of "this face is the speaker" on the
sync evidence, the share of offsets within one frame, and the model's cost per second of video.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prep.config import CropConfig  # noqa: E402
from prep.crop import analyse  # noqa: E402
from prep.probe import probe_video  # noqa: E402
from prep.speech import sync  # noqa: E402
from prep.speech.audio import read_pcm  # noqa: E402
from prep.speech.lightasd import load_default  # noqa: E402
from prep.speech.track import RATE, SpeechConfig, face_embeddings, listen, summarize  # noqa: E402

SHARED = Path(os.environ.get("PREP_SHARED_DATA", ROOT.parent / "shared" / "data"))
WEIGHTS = SHARED / "weights"
CLIPS = ["latentsync_demo2_1080x1920_hevc.mp4", "latentsync_demo3_1080x1920_30fps_hevc.mp4", "sadtalker_WDA_KatieHill_512_mpeg4.mp4"]
SHIFTS = (-6, -4, -2, 0, 2, 4, 6)
PER = 640  # samples a frame at 16 kHz, 25 fps
EXTRA = max(abs(s) for s in SHIFTS)


def stretches(n: int) -> list[tuple[str, int, int]]:
    """(length class, start, end) in frames: the whole clip, its halves, its thirds."""
    out = [("whole", 0, n)]
    if n >= 400:
        out += [("10 s", k * n // 2, (k + 1) * n // 2) for k in range(2)]
        out += [("6 s", k * n // 3, (k + 1) * n // 3) for k in range(3)]
    return out


def main() -> None:
    if not (WEIGHTS / "light_asd_pretrain_AVA_CVPR.model").is_file():
        sys.exit(f"eval-speech needs the shared data with the Light-ASD checkpoint ({WEIGHTS})")
    os.environ.setdefault("PREP_WEIGHTS_DIR", str(WEIGHTS))
    model = load_default(WEIGHTS)
    scfg = SpeechConfig(mode="require", weights_dir=str(WEIGHTS))
    cfg = CropConfig.resolve("default", speech="off", weights_dir=str(WEIGHTS))
    faces, audio = {}, {}
    seconds_video, seconds_visual = 0.0, 0.0
    for name in CLIPS:
        info = probe_video(SHARED / "videos" / name)
        an = analyse(info, cfg, show_progress=False)
        sub = an.subject.subject
        frames = sorted(sub)
        bt = np.array(frames) / cfg.fps
        bx = np.array([[*sub[i].center, sub[i].size] for i in frames])
        n = int(round(an.n_frames / cfg.fps * RATE))
        t = time.process_time()
        visual, _ = face_embeddings(model, info, 0, n, bt, bx, cfg.analysis_side)
        seconds_visual += time.process_time() - t
        seconds_video += n / RATE
        faces[name] = visual
        audio[name] = read_pcm(info, RATE, 0, n, margin=sync.MARGIN + EXTRA)
        print(f"{name}: {n / RATE:.1f} s, face embedded", flush=True)
    rows = []
    t_listen = 0.0
    for name, visual in faces.items():
        n = len(visual)
        for cls, a, b in stretches(n):
            v = visual[a:b]
            for other in CLIPS:
                pcm = audio[other]
                shifts = SHIFTS if other == name else (0,)
                for d in shifts:
                    lo = (EXTRA + a - d) * PER  # audio late by d frames: its sample for frame t is at t - d
                    want = (b - a + 2 * sync.MARGIN) * PER
                    seg = pcm[max(0, lo) : max(0, lo) + want]
                    seg = np.concatenate([np.zeros(max(0, -lo), np.int16), seg])
                    seg = np.pad(seg, (0, max(0, want - len(seg))))[:want]
                    t = time.process_time()
                    rep = summarize(listen(model, v, seg), scfg)
                    t_listen += time.process_time() - t
                    rows.append({"face": name, "audio": other, "class": cls, "shift": d, "own": other == name, **{k: rep.get(k) for k in ("sync", "offset_exact", "offset_frames", "confidence", "speaking", "voiced")}})
        print(f"{name}: {len(rows)} cases so far", flush=True)
    write(rows, seconds_video, seconds_visual, t_listen)


def eer(pos: list[float], neg: list[float]) -> tuple[float, float]:
    """Equal error rate (the smallest max(miss rate, false-accept rate) over thresholds) and
    its threshold, for scores where higher means 'speaker'."""
    best = (1.0, 0.0)
    for th in sorted(set(pos + neg)):
        gap = max(np.mean([p < th for p in pos]), np.mean([q >= th for q in neg]))
        if gap < best[0]:
            best = (float(gap), th)
    return best


def write(rows: list[dict], seconds_video: float, seconds_visual: float, t_listen: float) -> None:
    lines = ["# Speech check: accuracy on edits of the shared clips", "", "Made by `make eval-speech` (bench/eval_speech.py). Faces: " + ", ".join(CLIPS) + ".",
             "Own audio shifted by " + ", ".join(f"{s:+d}" for s in SHIFTS) + " frames; other clips' speech as voice-overs.", "",
             "| stretch | cases (own / other) | EER speaker vs not | threshold | offsets within 1 frame (trusted / all own) | untrusted own offsets | default rules: own kept | others rejected |",
             "|---|---|---|---|---|---|---|---|"]
    cfg = SpeechConfig(mode="require")
    from prep.speech.track import verdict

    for cls in ("whole", "10 s", "6 s"):
        sel = [r for r in rows if r["class"] == cls]
        if not sel:
            continue
        own = [r for r in sel if r["own"]]
        other = [r for r in sel if not r["own"]]
        pos = [r["sync"] if r["sync"] is not None else -9 for r in own]
        neg = [r["sync"] if r["sync"] is not None else -9 for r in other]
        e, th = eer(pos, neg)
        trusted = [r for r in own if r["offset_exact"] is not None and r["confidence"] >= cfg.min_confidence]
        within = [r for r in trusted if abs(r["offset_exact"] - r["shift"]) <= 1.0]
        within_all = [r for r in own if r["offset_exact"] is not None and abs(r["offset_exact"] - r["shift"]) <= 1.0]
        kept = [r for r in own if verdict({**r, "measured": True, "sync_z": None, "windows": 0, "note": None}, cfg) is None]
        rejected = [r for r in other if verdict({**r, "measured": True, "sync_z": None, "windows": 0, "note": None}, cfg) is not None]
        lines.append(f"| {cls} | {len(own)} / {len(other)} | {e:.1%} | {th:.2f} | {len(within)}/{len(trusted)} ({len(within_all)}/{len(own)}) | {len(own) - len(trusted)} | {len(kept)}/{len(own)} | {len(rejected)}/{len(other)} |")
    lines += ["", f"Cost on one core: face crops and visual embeddings {seconds_visual / seconds_video:.3f} s per second of video (decode included); "
              f"audio features, lag search and scores {t_listen / max(1, len(rows)) / (seconds_video / len(CLIPS)):.3f} s per second per audio variant.", "",
              "## Every case", "", "| face | audio | stretch | shift | sync | offset | confidence | speaking | voiced |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['face'][:20]} | {r['audio'][:20]} | {r['class']} | {r['shift']:+d} | {r['sync']} | {r['offset_exact']} | {r['confidence']} | {r['speaking']} | {r['voiced']} |")
    out = ROOT / "bench" / "speech_results.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:14]))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
