"""`make bench`: `prep crop --split` on real footage with cuts, a dissolve and several people.

The footage is an edit made here from the shared talking-head clips (about 32 s, 720x720, four
shots joined by hard cuts and a 1 s crossfade, three people). Two comparisons:

1. ``prep crop --split --mode fixed`` against a bare ffmpeg crop+scale+encode of the same
   segments (one ffmpeg command per kept segment, seeking to it, with the window prep chose
   and the same encoder settings): the price of finding shots, tracks and segments.
2. ``prep crop --split --preset latentsync`` (5 s segments at 256 px) against a LatentSync-style
   chain of three tools and three decodes: PySceneDetect's ``scenedetect`` command splitting
   the shots (``detect-adaptive split-video``, ffmpeg cutting), ffmpeg cutting each shot into
   5 s segments at 25 fps, then ``prep crop --preset latentsync`` on every segment.

The edit's audio is tones, not speech, so the speech check is off here (bench_speech.py measures
it on real speech). Wall times are the best of ``--repeat`` runs; memory is the peak of the whole
process tree.
Results go to stdout and bench/split_results.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from bench_crop import SHARED, bench_args, bench_env, run_measured  # noqa: E402
from prep.ffmpeg import ffmpeg_exe  # noqa: E402

V = SHARED / "videos"
SQUARE = "scale=720:720:force_original_aspect_ratio=increase,crop=720:720{xy},fps=25,setsar=1,format=yuv420p,settb=1/25"


def make_edit(dest: Path) -> None:
    """latentsync 8 s | cut | sadtalker 7 s | 1 s crossfade | livep_d9 10 s | cut | latentsync 8 s."""
    top, mid = SQUARE.format(xy=":0:0"), SQUARE.format(xy="")
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y",
                    "-ss", "0", "-t", "8", "-i", str(V / "latentsync_demo2_1080x1920_hevc.mp4"),
                    "-t", "8", "-i", str(V / "sadtalker_WDA_KatieHill_512_mpeg4.mp4"),
                    "-t", "10", "-i", str(V / "livep_d9_512x480_sar15x16.mp4"),
                    "-ss", "10", "-t", "8", "-i", str(V / "latentsync_demo2_1080x1920_hevc.mp4"),
                    "-f", "lavfi", "-t", "40", "-i", "sine=frequency=440:sample_rate=16000",
                    "-filter_complex",
                    f"[0:v]{top}[a];[1:v]{mid}[b];[2:v]{mid}[c];[3:v]{top}[d];[a][b]concat=n=2:v=1:a=0,settb=1/25[ab];"
                    "[ab][c]xfade=transition=fade:duration=1:offset=14,settb=1/25[abc];[abc][d]concat=n=2:v=1:a=0[v]",
                    "-map", "[v]", "-map", "4:a", "-shortest", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-c:a", "aac", str(dest)], check=True)


def bare_segment_args(src: str, seg: dict, cfg: dict, out: str) -> list[str]:
    w = seg["window"]
    x, y, side = int(w["x"]), int(w["y"]), int(w["side"])
    W, H = seg["source_info"]["display_width"], seg["source_info"]["display_height"]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + side), min(H, y + side)
    vf = [f"fps={cfg['fps']}", f"crop={x1 - x0}:{y1 - y0}:{x0}:{y0}"]
    if (x0 - x, y0 - y, x + side - x1, y + side - y1) != (0, 0, 0, 0):
        vf.append(f"pad={side}:{side}:{x0 - x}:{y0 - y}")
    vf.append(f"scale={cfg['size']}:{cfg['size']}:flags=lanczos")
    dur = seg["source_end"] - seg["source_start"]
    return [ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-ss", f"{seg['source_start']:.3f}", "-t", f"{dur:.3f}", "-i", src, "-vf", ",".join(vf),
            "-c:v", "libx264", "-preset", cfg["x264_preset"], "-crf", str(cfg["crf"]), "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", cfg["audio_bitrate"], out]


def timed(steps: list[list[str]], env: dict) -> tuple[float, int]:
    t, m = 0.0, 0
    for args in steps:
        dt, dm = run_measured(args, env)
        t, m = t + dt, max(m, dm)
    return t, m


def main() -> None:
    a = bench_args(__doc__, "split_results.md")
    if not V.is_dir():
        raise SystemExit(f"needs the shared clips in {V}")
    env = bench_env()
    prep = [sys.executable, "-m", "prep.cli"]
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # scenedetect's split-video calls `ffmpeg` from PATH: give it the project's binary
        (tmp / "bin").mkdir()
        (tmp / "bin" / "ffmpeg").symlink_to(ffmpeg_exe())
        env["PATH"] = f"{tmp / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        edit = tmp / "edit.mp4"
        make_edit(edit)
        length = float(subprocess.run([sys.executable, "-c", f"from prep.probe import probe_video; print(probe_video({str(edit)!r}).duration)"], capture_output=True, text=True, check=True).stdout)

        # 1. --split (fixed windows) vs bare ffmpeg on the same segments
        best_prep, best_bare, rec = None, None, None
        for k in range(a.repeat):
            out = tmp / f"split_{k}"
            r = run_measured(prep + ["crop", str(edit), "--split", "--mode", "fixed", "--speech", "off", "-o", str(out), "--report", str(out / "run.json")], env)
            best_prep = r if best_prep is None or r[0] < best_prep[0] else best_prep
            run_rep = json.loads((out / "run.json").read_text())
            rec = run_rep["items"][0]
            segs = [json.loads(Path(e["report"]).read_text()) for e in rec["segments"] if e["status"] == "kept"]
            b = timed([bare_segment_args(str(edit), s, run_rep["config"], str(tmp / f"bare_{k}_{i}.mp4")) for i, s in enumerate(segs)], env)
            best_bare = b if best_bare is None or b[0] < best_bare[0] else best_bare
        kept = [e for e in rec["segments"] if e["status"] == "kept"]
        lines += [
            f"Footage: an edit of the shared clips, {length:.1f} s at 720x720, {len(rec['shots'])} shots ({', '.join(t['kind'] for t in rec['transitions'])}); "
            f"{os.cpu_count()} cores; wall seconds, best of {a.repeat}; memory is the peak of the process tree.",
            "",
            f"1. `prep crop --split --mode fixed` ({len(kept)} segments kept, {len(rec['segments']) - len(kept)} rejected) against a bare ffmpeg crop+scale+encode of the same segments:",
            "",
            "| | wall s | peak MiB |",
            "|---|---|---|",
            f"| bare ffmpeg, one command per segment | {best_bare[0]:.2f} | {best_bare[1]} |",
            f"| prep crop --split | {best_prep[0]:.2f} | {best_prep[1]} |",
            f"| ratio | {best_prep[0] / best_bare[0]:.2f} | |",
            "",
        ]
        print("\n".join(lines), flush=True)

        # 2. LatentSync-style chain vs prep crop --split --preset latentsync
        best_chain, best_ls, n_chain, n_ls = None, None, 0, 0
        for k in range(a.repeat):
            d = tmp / f"chain_{k}"
            t0 = time.perf_counter()
            s1 = run_measured([sys.executable, "-m", "scenedetect", "-i", str(edit), "-o", str(d / "shots"), "-q", "detect-adaptive", "split-video"], env)
            cut_steps = [[ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", str(p), "-r", "25", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
                          "-c:a", "aac", "-f", "segment", "-segment_time", "5", "-reset_timestamps", "1", str(d / "seg" / f"{p.stem}_%03d.mp4")]
                         for p in sorted((d / "shots").glob("*.mp4"))]
            (d / "seg").mkdir()
            s2 = timed(cut_steps, env)
            s3 = run_measured(prep + ["crop", str(d / "seg"), "--preset", "latentsync", "--no-split", "--speech", "off", "-o", str(d / "crops"), "--report", str(d / "crops.json")], env, check=False)
            chain = (time.perf_counter() - t0, max(s1[1], s2[1], s3[1]))
            n_chain = json.loads((d / "crops.json").read_text())["counts"].get("ok", 0)
            best_chain = chain if best_chain is None or chain[0] < best_chain[0] else best_chain
            out = tmp / f"ls_{k}"
            r = run_measured(prep + ["crop", str(edit), "--preset", "latentsync", "--speech", "off", "-o", str(out), "--report", str(out / "run.json")], env)
            n_ls = sum(e["status"] == "kept" for e in json.loads((out / "run.json").read_text())["items"][0]["segments"])
            best_ls = r if best_ls is None or r[0] < best_ls[0] else best_ls
        part2 = [
            "2. `prep crop --split --preset latentsync` (5 s segments, 256 px) against a LatentSync-style chain "
            "(`scenedetect detect-adaptive split-video`, ffmpeg cutting 5 s segments at 25 fps, `prep crop --preset latentsync` on each):",
            "",
            "| | wall s | peak MiB | clips written |",
            "|---|---|---|---|",
            f"| three-tool chain | {best_chain[0]:.2f} | {best_chain[1]} | {n_chain} |",
            f"| prep crop --split | {best_ls[0]:.2f} | {best_ls[1]} | {n_ls} |",
            f"| ratio | {best_ls[0] / best_chain[0]:.2f} | | |",
            "",
            "The chain's clips include the dissolve's blended frames and the stubs of shots cut at 5 s; prep's have neither.",
        ]
        print("\n".join(part2), flush=True)
        lines += part2

        # 3. what identity costs: --group-by person (every track identified) against --split alone;
        # its faces come from the analysis pass (before, a second decode at 960 px: 1.24x)
        best = {}
        for k in range(a.repeat):
            for name, extra in (("split", []), ("group", ["--group-by", "person"])):
                out = tmp / f"id_{name}_{k}"
                r = run_measured(prep + ["crop", str(edit), "--split", "--mode", "fixed", "--speech", "off", *extra, "-o", str(out), "--report", str(out / "run.json")], env)
                best[name] = r if name not in best or r[0] < best[name][0] else best[name]
        part3 = [
            "",
            "3. What identity costs: `prep crop --split --mode fixed --group-by person` (every face track identified; its faces "
            "are the analysis pass's, no second decode) against the same without it:",
            "",
            "| | wall s | peak MiB |",
            "|---|---|---|",
            f"| prep crop --split | {best['split'][0]:.2f} | {best['split'][1]} |",
            f"| prep crop --split --group-by person | {best['group'][0]:.2f} | {best['group'][1]} |",
            f"| ratio | {best['group'][0] / best['split'][0]:.2f} | |",
        ]
        print("\n".join(part3), flush=True)
        lines += part3
    Path(a.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
