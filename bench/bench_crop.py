"""`make bench`: prep crop against a bare ffmpeg crop+scale+encode of the same output.

For each clip in ../shared/data/videos (or the paths given): the wall time of
``prep crop --preset geneface`` (fixed window: probe + analysis pass + encode, run as the CLI
in a fresh process) beside the wall time of one ffmpeg command that crops the same window,
scales and encodes with the same settings; their ratio; and the peak memory of the whole
process tree (prep plus its ffmpeg children), sampled from /proc. Then a 4-minute 720p clip,
memory against video length (10 s and 80 s of one clip played forwards and backwards), and
what the speech check and --person add on the first clip. The speech check is off in the
table (not every shared clip speaks). Results go to stdout and bench/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PREP_SHARED_DATA", ROOT.parent / "shared" / "data"))
sys.path.insert(0, str(ROOT))

from prep.ffmpeg import ffmpeg_exe  # noqa: E402


def tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, in KiB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ppid, pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
        rss[int(d)] = pages * os.sysconf("SC_PAGE_SIZE") // 1024
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return total


def run_measured(args: list[str], env: dict | None = None, check: bool = True) -> tuple[float, int]:
    """Wall seconds and peak tree memory (MiB) of a command (``check``: a failure stops the bench)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss_kb(proc.pid))
            time.sleep(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, err = proc.communicate()
    done.set()
    th.join()
    if check and proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{err.decode(errors='replace')}")
    return time.perf_counter() - t0, peak // 1024


def bench_args(doc: str, results: str) -> Any:
    """The options every bench takes: ``--repeat`` (best of) and ``--out`` (its results file in bench/)."""
    import argparse

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / results))
    return ap.parse_args()


def bench_env() -> dict:
    """The environment prep runs in for a bench: the shared YuNet model when it is there."""
    env = dict(os.environ)
    if (SHARED / "weights").is_dir():
        env.setdefault("PREP_WEIGHTS_DIR", str(SHARED / "weights"))
    return env


def bare_ffmpeg_args(src: str, rep: dict, out: str) -> list[str]:
    """The same output with one plain ffmpeg command (window taken from prep's report)."""
    info, w, cfg = rep["source_info"], rep["window"], rep["config"]
    x, y, side = int(w["x"]), int(w["y"]), int(w["side"])
    vf = [f"fps={cfg['fps']}"]
    if info["sar"] != "1:1":
        vf.append(f"scale={info['display_width']}:{info['display_height']},setsar=1")
    W, H = info["display_width"], info["display_height"]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + side), min(H, y + side)
    vf.append(f"crop={x1 - x0}:{y1 - y0}:{x0}:{y0}")
    if (x0 - x, y0 - y, x + side - x1, y + side - y1) != (0, 0, 0, 0):
        vf.append(f"pad={side}:{side}:{x0 - x}:{y0 - y}")
    vf.append(f"scale={cfg['size']}:{cfg['size']}:flags=lanczos")  # prep's scaler: the same output pixels
    args = [ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", src, "-vf", ",".join(vf),
            "-c:v", "libx264", "-preset", cfg["x264_preset"], "-crf", str(cfg["crf"]), "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac", "-b:a", cfg["audio_bitrate"]] if info["has_audio"] else ["-an"]
    return args + [out]


def pingpong(src: Path, piece: float, seconds: float, tmp: Path) -> Path:
    """``seconds`` of ``src``'s first ``piece`` seconds played forwards, then backwards, again
    and again: a long clip with no cut (the picture and the sound run on at every joint)."""
    ff = [ffmpeg_exe(), "-nostdin", "-v", "error", "-y"]
    unit = tmp / f"{src.stem}_fb.mp4"
    graph = "[0:v]split[a][b];[b]reverse[r];[a][r]concat=n=2:v=1:a=0[v];[0:a]asplit[c][d];[d]areverse[e];[c][e]concat=n=2:v=0:a=1[s]"
    subprocess.run(ff + ["-t", f"{piece}", "-i", str(src), "-filter_complex", graph, "-map", "[v]", "-map", "[s]", "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-c:a", "aac", str(unit)], check=True)
    out = tmp / f"{src.stem}_{seconds:.0f}s.mp4"
    loops = int(seconds // (2 * piece)) + 1
    subprocess.run(ff + ["-stream_loop", str(loops), "-i", str(unit), "-t", f"{seconds}", "-c", "copy", str(out)], check=True)
    return out


def window_source(rep: dict) -> str:
    """How the clip's window was encoded: in the analysis's decode with the key frames' window,
    or a second time with the analysed one."""
    if "analysed" in rep["window"]:
        return "key frames, kept"
    return "analysed, encoded again" if "analyse_encode" in rep["timings"] else "analysed"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="*", help="videos (default: every clip in ../shared/data/videos)")
    ap.add_argument("--preset", default="geneface")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results.md"))
    ap.add_argument("--repeat", type=int, default=3, help="runs of each command; the fastest is reported")
    ap.add_argument("--checks-only", action="store_true", help="only what the speech check and --person add (to stdout)")
    a = ap.parse_args()
    clips = [Path(c) for c in a.clips] or sorted((SHARED / "videos").glob("*.mp4"))
    if not clips:
        raise SystemExit(f"no clips: give paths or provide {SHARED / 'videos'}")
    env = bench_env()
    prep = [sys.executable, "-m", "prep.cli"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # the same preset with the shared decode off (window_tolerance 0): analysed, then encoded
        from prep.config import preset_dirs

        sequential = Path(tmp) / f"{a.preset}_sequential.toml"
        text = next(d / f"{a.preset}.toml" for d in preset_dirs() if (d / f"{a.preset}.toml").is_file()).read_text()
        sequential.write_text(text.replace("[crop]\n", "[crop]\nwindow_tolerance = 0\n", 1))
        for clip in [] if a.checks_only else clips:
            # best of --repeat runs of each, alternating (a shared 2-core machine is noisy; the
            # minimum is the run least disturbed by others, as timeit reports it)
            runs_prep, runs_seq, runs_ff, rep = [], [], [], None
            for k in range(a.repeat):
                out = Path(tmp) / f"{clip.stem}_{k}"
                runs_prep.append(run_measured(prep + ["crop", str(clip), "-o", str(out), "--preset", a.preset, "--speech", "off", "--report", str(out / "run.json")], env))
                item = json.loads((out / "run.json").read_text())["items"][0]
                this = json.loads(Path(item["report"]).read_text())
                if rep is None or this["timings"]["total"] < rep["timings"]["total"]:
                    rep = this
                runs_seq.append(run_measured(prep + ["crop", str(clip), "-o", str(out) + "_seq", "--preset", str(sequential), "--speech", "off"], env))
                runs_ff.append(run_measured(bare_ffmpeg_args(str(clip), rep, str(Path(tmp) / f"{clip.stem}_bare.mp4"))))
            t_prep, m_prep = min(t for t, _ in runs_prep), max(m for _, m in runs_prep)
            t_seq = min(t for t, _ in runs_seq)
            t_ff, m_ff = min(t for t, _ in runs_ff), max(m for _, m in runs_ff)
            rows.append((clip.name, rep["source_info"]["duration"], t_ff, t_prep, t_prep / t_ff, m_ff, m_prep, rep["timings"], window_source(rep), t_seq / t_ff))
            print(f"{clip.name}: ffmpeg {t_ff:.2f} s, prep {t_prep:.2f} s, ratio {t_prep / t_ff:.2f} (analysed first: {t_seq / t_ff:.2f}), peak MiB {m_ff} / {m_prep}", flush=True)
        # a 4-minute 720p talking head, and memory against length: a clip played forwards then
        # backwards, repeated (a plain loop has a cut at every joint, which a fixed window refuses)
        s18 = next((c for c in clips if "1280x720" in c.name), clips[0])
        for seconds in () if a.checks_only else (240.0,):
            long = pingpong(s18, 9.0, seconds, Path(tmp))
            out = Path(tmp) / f"{long.stem}_prep"
            t_prep, m_prep = run_measured(prep + ["crop", str(long), "-o", str(out), "--preset", a.preset, "--speech", "off", "--report", str(out / "run.json")], env)
            item = json.loads((out / "run.json").read_text())["items"][0]
            rep = json.loads(Path(item["report"]).read_text())
            t_ff, m_ff = run_measured(bare_ffmpeg_args(str(long), rep, str(Path(tmp) / f"{long.stem}_bare.mp4")))
            rows.append((f"{s18.stem} forwards-backwards, {seconds / 60:.0f} min", rep["source_info"]["duration"], t_ff, t_prep, t_prep / t_ff, m_ff, m_prep, rep["timings"], window_source(rep), None))
            print(f"{long.name}: ffmpeg {t_ff:.2f} s, prep {t_prep:.2f} s, ratio {t_prep / t_ff:.2f}, peak MiB {m_ff} / {m_prep}", flush=True)
        src = clips[0]
        mem = []
        for seconds in () if a.checks_only else (10.0, 80.0):
            path = pingpong(src, 5.0, seconds, Path(tmp))
            out = Path(tmp) / f"len_{path.stem}"
            t, m = run_measured(prep + ["crop", str(path), "-o", str(out), "--preset", a.preset, "--speech", "off"], env)
            mem.append((f"{src.stem}, {seconds:.0f} s", t, m))
            print(f"length check {path.name}: {t:.1f} s, peak {m} MiB", flush=True)
        # what the speech check and --person add (the first clip; the person: a frame of it)
        costs = []
        ref = Path(tmp) / "ref.png"
        subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-ss", "5", "-i", str(src), "-frames:v", "1", str(ref)], check=True)
        runs = (("--speech off", ["--speech", "off"]), ("--speech require (the preset's)", []), ("--speech off --person", ["--speech", "off", "--person", str(ref)]), ("--speech require --person", ["--person", str(ref)]))
        times: dict[str, list[float]] = {label: [] for label, _ in runs}
        for k in range(a.repeat):  # alternating, as above
            for j, (label, extra) in enumerate(runs):
                out = Path(tmp) / f"cost_{j}_{k}"
                times[label].append(run_measured(prep + ["crop", str(src), "-o", str(out), "--preset", a.preset, *extra], env)[0])
        for label, _ in runs:
            costs.append((label, min(times[label])))
            print(f"{src.name} {label}: {min(times[label]):.2f} s", flush=True)
    lines = [
        f"prep crop --preset {a.preset} vs a bare ffmpeg crop+scale+encode of the same output (libx264 with the same crf and preset, the same Lanczos scaler, the same AAC settings); "
        f"{os.cpu_count()} cores. Times are wall seconds, the best of {a.repeat} runs of each; memory is the peak resident size of the whole process tree.",
        "",
        "| clip | length s | ffmpeg s | prep s | ratio | ratio, analysed first | ffmpeg MiB | prep MiB | prep: probe / analyse(+encode) / (second) encode s | window |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, dur, t_ff, t_prep, ratio, m_ff, m_prep, tm, placed, seq in rows:
        lines.append(f"| {name} | {dur:.1f} | {t_ff:.2f} | {t_prep:.2f} | {ratio:.2f} | {'-' if seq is None else f'{seq:.2f}'} | {m_ff} | {m_prep} | {tm['probe']:.2f} / {tm.get('analyse_encode', tm.get('analyse', 0)):.2f} / {tm['encode']:.2f} | {placed} |")
    lines += ["", "Memory against length (the first clip's first 5 s forwards then backwards, repeated):", "", "| input | wall s | peak MiB |", "|---|---|---|"]
    lines += [f"| {n} | {t:.1f} | {m} |" for n, t, m in mem]
    lines += ["", f"What the checks add ({clips[0].name}, best of {a.repeat}):", "", "| run | wall s | against --speech off |", "|---|---|---|"]
    lines += [f"| {label} | {t:.2f} | {t / costs[0][1]:.2f}x |" for label, t in costs]
    text = "\n".join(lines) + "\n"
    if a.checks_only:
        print("\n".join(lines[-len(costs) - 4 :]))
        return
    Path(a.out).write_text(text)
    print("\n" + text)


if __name__ == "__main__":
    main()
