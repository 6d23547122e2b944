"""Runners: the driver's cost per item and its memory on large manifests, and the throughput
of the local and the Ray runner on the same real work. Writes bench/runner_results.md.

1. Driver: a text manifest of N paths to files that do not exist, mapped with ``prep pairs``'
   unit of work (each item comes back at once as an error record), its driver-side resume check,
   and the streamed report (JSON lines, then the summary). The time is then the driver's own:
   manifest read, resume check, sending, the record, the log. Each run is a fresh process, and
   its peak resident memory (``ru_maxrss``) is measured at 10,000 and 100,000 items.
2. Throughput: ``prep pairs`` (bsrgan, 512 px) on the same photos with the local runner
   (2 processes) and with Ray (a local Ray with 2 CPUs), after a warm-up batch on each;
   Ray's start-up is timed apart.
3. Per-core rate of ``prep pairs --align`` on in-the-wild photos (detection, alignment,
   degradation, PNG writing), for the README's estimate.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("PREP_SHARED_DATA", ROOT.parent / "shared" / "data"))
OUT = ROOT / "bench" / "runner_results.md"
os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a Ray for this machine only: no token written to ~/.ray


def driver_run(n: int, runner: str) -> dict:
    """In this (fresh) process: map ``n`` manifest items and return time and memory."""
    from prep.batch import iter_inputs
    from prep.images import IMAGE_EXTENSIONS
    from prep.manifest import write_text_manifest
    from prep.pairs import PairsConfig, done, make_pairs
    from prep.runlog import RunLog
    from prep.runner import RunOptions, open_runner

    work = Path(tempfile.mkdtemp(prefix="prepbench"))
    manifest = write_text_manifest(work / "list.txt", (f"/nonexistent/photos/{k:07d}.jpg" for k in range(n)))
    cfg = PairsConfig.resolve(size=64)
    out = str(work / "out")
    Path(out).mkdir()
    t0 = time.perf_counter()
    with open_runner(RunOptions(runner, 2 if runner == "ray" else 1)) as run:
        started = time.perf_counter()
        if runner == "ray":  # a Ray started here: its workers are started before timing
            list(run.map(make_pairs, [(f"/nonexistent/{k}.jpg", str(k), out, cfg) for k in range(8)], done))
            started = time.perf_counter()
        inputs, total = iter_inputs((), manifest, IMAGE_EXTENSIONS)
        log = RunLog(work / "run.json", "pairs")
        for _ in log.stream(run.map(make_pairs, ((p, i, out, cfg) for p, i in inputs), done, total)):
            pass
        log.finish({})
        end = time.perf_counter()
    assert log.counts == {"error": n}, log.counts
    return {"n": n, "runner": runner, "startup_s": started - t0, "seconds": end - started, "ms_per_item": (end - started) / n * 1000,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def photos(n: int, size: int = 512) -> Path:
    """``n`` distinct face photos of ``size`` px (the shared Adele crop, or scikit-image's astronaut, shifted)."""
    import cv2
    import numpy as np

    p = SHARED / "images" / "GFPGAN__cropped_faces__Adele_crop.png"
    if p.is_file():
        img = cv2.resize(cv2.imread(str(p)), (size, size))
    else:
        from skimage import data

        img = cv2.resize(data.astronaut()[:, :, ::-1], (size, size))
    d = Path(tempfile.mkdtemp(prefix="prepbenchphotos"))
    for k in range(n):
        cv2.imwrite(str(d / f"{k:04d}.png"), np.roll(img, k, axis=1))
    return d


def throughput(n: int, rounds: int = 3) -> list[dict]:
    """Both runners open at once and timed in turn, ``rounds`` times (this machine is shared:
    turns spread the other load over both); the best round of each is reported."""
    from prep.batch import expand_sources, item_ids
    from prep.images import IMAGE_EXTENSIONS
    from prep.pairs import PairsConfig, done, make_pairs
    from prep.runner import RunOptions, open_runner

    src = photos(n)
    warm = photos(8)
    cfg = PairsConfig.resolve(size=512, degrade="bsrgan")
    out = Path(tempfile.mkdtemp(prefix="prepbenchout"))

    def batch(run, folder: Path, dest: Path) -> float:
        paths = expand_sources([folder], IMAGE_EXTENSIONS)
        t = time.perf_counter()
        recs = list(run.map(make_pairs, [(str(p), i, str(dest), cfg) for p, i in zip(paths, item_ids(paths))], done))
        assert all(r["status"] == "ok" for r in recs)
        return time.perf_counter() - t

    t0 = time.perf_counter()
    with open_runner(RunOptions("local", 2)) as local:
        t1 = time.perf_counter()
        with open_runner(RunOptions("ray", 2)) as ray:
            t2 = time.perf_counter()
            runs = {"local": (local, t1 - t0, []), "ray": (ray, t2 - t1, [])}
            for name, (run, _, _) in runs.items():
                batch(run, warm, out / name / "warm")
            for k in range(rounds):
                for name, (run, _, times) in runs.items():
                    times.append(batch(run, src, out / name / str(k)))
                    print(name, k, times[-1], flush=True)
    return [{"runner": name, "n": n, "startup_s": startup, "seconds": min(times), "all": times, "items_per_s": n / min(times)} for name, (_, startup, times) in runs.items()]


def align_rate() -> dict:
    """Photos per second on one core for ``pairs --align`` (bsrgan, 512 px) on in-the-wild photos."""
    import cv2

    from prep.images import IMAGE_EXTENSIONS
    from prep.pairs import PairsConfig, make_pairs

    cv2.setNumThreads(1)
    wild = sorted(p for p in (SHARED / "images").glob("*") if "whole_imgs" in p.name or "facerec__" in p.name or "dlib__faces" in p.name) if (SHARED / "images").is_dir() else []
    wild = [p for p in wild if p.suffix.lower() in IMAGE_EXTENSIONS]
    if not wild:
        d = photos(8, 1024)
        wild = sorted(d.glob("*.png"))
    cfg = PairsConfig.resolve(size=512, degrade="bsrgan", align=True, max_upscale=4.0)
    out = Path(tempfile.mkdtemp(prefix="prepbenchalign"))
    make_pairs(str(wild[0]), "warm", str(out / "warm"), cfg)
    t = time.perf_counter()
    faces = 0
    for k, p in enumerate(wild):
        rec = make_pairs(str(p), f"{k:03d}", str(out / "run"), cfg)
        faces += len(rec.get("pairs", []))
    seconds = time.perf_counter() - t
    return {"photos": len(wild), "faces": faces, "seconds": seconds, "photos_per_s_core": len(wild) / seconds}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="prepbench") as root:
        tempfile.tempdir = root  # every folder made here goes, and is removed, with it
        run_bench()


def run_bench() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--driver":
        print(json.dumps(driver_run(int(sys.argv[2]), sys.argv[3])))
        return
    if sys.argv[1:] == ["--throughput"]:
        print(throughput(96))
        return
    driver = []
    for runner in ("local", "ray"):
        for n in (10_000, 100_000):
            r = subprocess.run([sys.executable, __file__, "--driver", str(n), runner], capture_output=True, text=True)
            if r.returncode:
                sys.exit(f"driver bench failed ({runner}, {n}): {r.stderr[-2000:]}")
            driver.append(json.loads(r.stdout.strip().splitlines()[-1]))
            print(driver[-1], flush=True)
    thr = throughput(96)
    rate = align_rate()
    print(rate, flush=True)
    lines = [
        "Runners on this project's 2-core machine (`make bench`, bench/bench_runner.py).",
        "",
        "Driver: a text manifest of N paths (files that do not exist, so each item comes back at once as an error record: the time is the driver's own),",
        "mapped with `prep pairs`' unit of work, its resume check on the driver and the streamed report (JSON lines + summary). A fresh process per row; peak = its ru_maxrss.",
        "",
        "| runner | items | driver ms per item | peak MiB | start-up s |",
        "|---|---|---|---|---|",
    ]
    for d in driver:
        lines.append(f"| {d['runner']} | {d['n']:,} | {d['ms_per_item']:.3f} | {d['peak_mib']:.0f} | {d['startup_s']:.1f} |")
    lines += [
        "",
        f"Throughput: `prep pairs` (bsrgan, 512 px) on {thr[0]['n']} photos, after a warm-up batch of 8; local = 2 processes, Ray = a local Ray with 2 CPUs;",
        "both open at once and timed in turn, 3 rounds (the machine is shared with other work): best round, all rounds in brackets.",
        "",
        "| runner | start-up s | seconds | photos/s | vs local |",
        "|---|---|---|---|---|",
    ]
    for t in thr:
        lines.append(f"| {t['runner']} | {t['startup_s']:.1f} | {t['seconds']:.1f} ({', '.join(f'{x:.1f}' for x in t['all'])}) | {t['items_per_s']:.2f} | {t['items_per_s'] / thr[0]['items_per_s']:.0%} |")
    lines += [
        "",
        f"`prep pairs --align` (bsrgan, 512 px, --max-upscale 4) on {rate['photos']} in-the-wild photos ({rate['faces']} faces kept), one core: "
        f"{rate['seconds']:.1f} s, {rate['photos_per_s_core']:.2f} photos/s per core.",
        "",
    ]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
