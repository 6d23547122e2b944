"""`make bench`: what the speech check costs, beside the rest of `prep crop`.

Footage: an edit made here of the shared clips with real speech, 720x720 at 25 fps: 20 s of one
man talking, a hard cut, 20 s of another (each with his own voice). Runs, side by side:

1. ``prep crop --split --preset hallo`` with ``--speech off`` and ``--speech require``;
2. the same on the 1080x1920 HEVC clip (20 s, one shot), and ``prep crop`` (one clip,
   default preset) on it with ``--speech off`` and ``--speech measure``;
3. the check's parts on one core (``OPENBLAS_NUM_THREADS=1``): decoding the face crops, the
   visual model, and listening (audio features, the lag search, the per-frame scores).

Wall times are the best of ``--repeat`` runs. Results go to stdout and bench/speech_speed.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from bench_crop import SHARED, bench_args, bench_env, run_measured  # noqa: E402
from bench_split import bare_segment_args, timed  # noqa: E402
from prep.ffmpeg import ffmpeg_exe  # noqa: E402

V = SHARED / "videos"
A = V / "latentsync_demo2_1080x1920_hevc.mp4"
B = V / "latentsync_demo3_1080x1920_30fps_hevc.mp4"
SQUARE = "scale=720:-2,crop=720:720:0:0,fps=25,setsar=1,format=yuv420p"


def make_edit(dest: Path) -> None:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", str(A), "-i", str(B), "-filter_complex",
                    f"[0:v]{SQUARE}[a];[1:v]{SQUARE}[b];[a][b]concat=n=2:v=1:a=0[v];[0:a][1:a]concat=n=2:v=0:a=1[s]",
                    "-map", "[v]", "-map", "[s]", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-c:a", "aac", str(dest)], check=True)


def best(args: list[str], env: dict, repeat: int, out: Path) -> tuple[float, int]:
    """The fastest of ``repeat`` runs, each into an emptied ``out`` (a run into a finished
    folder would only skip)."""
    runs = []
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        runs.append(run_measured(args, env))
    return min(runs)


def parts_one_core(edit: Path) -> dict[str, float]:
    """Seconds of each part of the check per second of video, on one core."""
    code = f"""
import json, time, numpy as np
from prep.config import CropConfig
from prep.crop import analyse
from prep.probe import probe_video
from prep.speech import sync
from prep.speech.audio import read_pcm
from prep.speech.lightasd import load_default
from prep.speech.track import RATE, face_embeddings, listen, _crops, smooth_boxes, boxes_at
info = probe_video({str(edit)!r})
cfg = CropConfig.resolve("default", speech="off")
an = analyse(info, cfg, show_progress=False)
sub = an.subject.subject
fr = sorted(i for i in sub if i < 500)
bt = np.array(fr) / cfg.fps; bx = np.array([[*sub[i].center, sub[i].size] for i in fr])
n = 500
model = load_default()
t = time.process_time()
crops = list(_crops(info, cfg.analysis_side, 0, n, smooth_boxes(boxes_at(np.arange(n) / RATE, bt, bx))))
decode = time.process_time() - t
t = time.process_time(); v = model.visual(np.stack(crops)); visual = time.process_time() - t
pcm = read_pcm(info, RATE, 0, n, margin=sync.MARGIN)
t = time.process_time(); listen(model, v, pcm); hear = time.process_time() - t
print(json.dumps({{"seconds": n / RATE, "decode": decode, "visual": visual, "listen": hear}}))
"""
    env = bench_env() | {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return {k: r[k] / r["seconds"] for k in ("decode", "visual", "listen")}


def main() -> None:
    a = bench_args(__doc__, "speech_speed.md")
    if not (SHARED / "weights" / "light_asd_pretrain_AVA_CVPR.model").is_file():
        raise SystemExit(f"needs the shared clips and the Light-ASD checkpoint in {SHARED}")
    env = bench_env()
    prep = [sys.executable, "-m", "prep.cli"]
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        edit = tmp / "speech_edit.mp4"
        make_edit(edit)
        rows = []
        for mode in ("off", "require"):
            out = tmp / f"split_{mode}"
            t = best(prep + ["crop", str(edit), "--split", "--preset", "hallo", "--speech", mode, "-o", str(out), "--report", str(out / "run.json")], env, a.repeat, out)
            rec = json.loads((out / "run.json").read_text())["items"][0]
            kept = sum(e["status"] == "kept" for e in rec["segments"])
            rows.append((f"crop --split --preset hallo --speech {mode}", t, kept))
        for mode in ("off", "require"):  # real 1080p footage: what a second decode of the tracks would cost shows here
            out = tmp / f"split1080_{mode}"
            t = best(prep + ["crop", str(A), "--split", "--preset", "hallo", "--speech", mode, "-o", str(out), "--report", str(out / "run.json")], env, a.repeat, out)
            run_rep = json.loads((out / "run.json").read_text())
            rec = run_rep["items"][0]
            rows.append((f"crop --split --preset hallo (1080x1920 HEVC, 20 s) --speech {mode}", t, sum(e["status"] == "kept" for e in rec["segments"])))
        # the bare ffmpeg crop+scale+encode of the same segments (the windows prep chose), for the goal of 1.5x
        segs = [json.loads(Path(e["report"]).read_text()) for e in rec["segments"] if e["status"] == "kept"]
        bare = min((timed([bare_segment_args(str(A), sg, run_rep["config"], str(tmp / f"bare_{k}_{i}.mp4")) for i, sg in enumerate(segs)], env) for k in range(a.repeat)), key=lambda r: r[0])
        for mode in ("off", "measure"):
            out = tmp / f"one_{mode}"
            t = best(prep + ["crop", str(A), "--speech", mode, "-o", str(out)], env, a.repeat, out)
            rows.append((f"crop (one clip, 1080x1920 HEVC, 20 s) --speech {mode}", t, 1))
        share_split = (rows[1][1][0] - rows[0][1][0]) / rows[1][1][0]
        share_1080 = (rows[3][1][0] - rows[2][1][0]) / rows[3][1][0]
        share_one = (rows[5][1][0] - rows[4][1][0]) / rows[5][1][0]
        parts = parts_one_core(edit)
    lines += [
        f"Footage: 40 s edit of two men talking (720x720, a cut at 20 s) and the 20 s 1080x1920 HEVC clip; {os.cpu_count()} cores; wall seconds, best of {a.repeat}.",
        "",
        "| run | wall s | peak MiB | clips kept |",
        "|---|---|---|---|",
        *[f"| {name} | {t[0]:.2f} | {t[1]} | {k} |" for name, t, k in rows],
        "",
        f"The speech check's share of the run: {share_split:.0%} of `crop --split` (goal: at most 15%), {share_1080:.0%} of it on the 1080p HEVC clip, {share_one:.0%} of a one-clip `crop`.",
        "",
        f"Against a bare ffmpeg crop+scale+encode of the same {len(segs)} segments of the 1080p clip ({bare[0]:.2f} s, peak {bare[1]} MiB; one command per segment, "
        f"the windows prep chose): `--split` {rows[2][1][0] / bare[0]:.2f}x with `--speech off`, {rows[3][1][0] / bare[0]:.2f}x with `--speech require` (goal: 1.5x).",
        "",
        "Its parts on one core, seconds per second of 25 fps video:",
        "",
        "| part | s per s |",
        "|---|---|",
        f"| decoding and cutting the face crops, as a decode of their own at analysis size (both paths now cut them in the analysis pass: this is what a track the pass could not follow costs) | {parts['decode']:.3f} |",
        f"| Light-ASD visual model (numpy) | {parts['visual']:.3f} |",
        f"| listening: VAD, MFCC, audio model, lag search, per-frame scores | {parts['listen']:.3f} |",
        f"| total | {sum(parts.values()):.3f} |",
    ]
    print("\n".join(lines), flush=True)
    Path(a.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
