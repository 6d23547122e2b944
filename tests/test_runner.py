"""Runners, for real: the local pool and Ray (a two-node cluster started on this machine
through `ray start` once for the module, every Ray test on it; a local Ray with 2 CPUs when
PREP_SKIP_CLUSTER=1), manifests, the streamed run report, resume on the driver, faults, and
byte-identical outputs across runners."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import isolated_env

from prep.cli import main
from prep.errors import PrepError
from prep.manifest import read_manifest
from prep.runlog import RunLog, records_path
from prep.runner import RunOptions, open_runner, run_items


BIN = Path(sys.executable).parent
# Ray's clusters made here are reached only from this machine: no token (Ray would otherwise
# write one to ~/.ray/auth_token, and a node started later would have to find the same).
NO_AUTH = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def tree(d: Path) -> dict[str, bytes]:
    """Every output file's bytes (the per-photo markers under .prep/ name their own folder)."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file() and ".prep" not in p.parts}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- units of work used only here (module-level and picklable, like the stages' own) -------------

def touch(path: str, out: str) -> dict:
    """Writes OUT/<name>.done and a line in OUT/calls.log each time it runs (which items reached a worker)."""
    with open(Path(out) / "calls.log", "a") as f:
        f.write(Path(path).name + "\n")
    (Path(out) / (Path(path).name + ".done")).write_text(path)
    return {"source": path, "status": "ok", "pid": os.getpid()}


def touch_done(path: str, out: str) -> dict | None:
    return {"source": path, "status": "skipped"} if (Path(out) / (Path(path).name + ".done")).is_file() else None


def die_once(path: str, flags: str) -> dict:
    """The first time it sees an item, its worker process dies (as if killed); then it works."""
    flag = Path(flags) / (Path(path).name + ".died")
    if not flag.exists():
        flag.write_text("x")
        os._exit(1)
    return {"source": path, "status": "ok", "pid": os.getpid()}


def dies_on_3(path: str, flags: str) -> dict:
    """Item 3 kills its worker process every time; the others work."""
    if path.endswith("/3.jpg"):
        os._exit(1)
    return {"source": path, "status": "ok"}


def raises(path: str, calls: str) -> dict:
    """A unit of work with a bug: it raises instead of returning an error record."""
    with open(calls, "a") as f:
        f.write(path + "\n")
    raise ZeroDivisionError("a bug")


# ---- manifests ------------------------------------------------------------------------------------

@pytest.mark.same_everywhere
def test_manifest_text_csv_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "sub").mkdir()
    txt = tmp_path / "list.txt"
    txt.write_text("# photos\n/data/a.jpg\n\nsub/b.png\n  /data/c.jpg  \n")
    assert list(read_manifest(txt)) == [("/data/a.jpg", "a"), (str(tmp_path / "sub" / "b.png"), "b"), ("/data/c.jpg", "c")]
    csv = tmp_path / "list.csv"
    csv.write_text("url,PATH,id\nx,/d/one.mp4,first\ny,/d/two.mp4,\n")
    assert list(read_manifest(csv)) == [("/d/one.mp4", "first"), ("/d/two.mp4", "two")]
    pqf = tmp_path / "list.parquet"
    pq.write_table(pa.table({"path": [f"/p/{i:05d}.jpg" for i in range(20000)], "w": list(range(20000))}), pqf, row_group_size=4096)
    rows = read_manifest(pqf)
    assert next(rows) == ("/p/00000.jpg", "00000")  # streamed: the first row without reading the rest
    assert sum(1 for _ in rows) == 19999
    bad = tmp_path / "nopath.csv"
    bad.write_text("file,size\n/a.jpg,3\n")
    with pytest.raises(PrepError, match=r"no 'path' column in the CSV header \(columns: file, size\)") as e:
        list(read_manifest(bad))
    assert str(bad) in str(e.value)
    with pytest.raises(PrepError, match="manifest not found"):
        list(read_manifest(tmp_path / "none.txt"))
    for bad_id in ("../../escape", "spk1/x", ".hidden", "a\\b"):  # outputs outside OUT, in folders trainers skip, or hidden
        escape = tmp_path / "escape.csv"
        escape.write_text(f"path,id\n/d/one.png,fine\n/d/two.png,{bad_id}\n")
        with pytest.raises(PrepError, match=r"entry 2 \(/d/two.png\): id .* is not a plain file name"):
            list(read_manifest(escape))


def test_two_inputs_with_one_id_are_reported_not_overwritten(faces_dir, tmp_path):
    """A manifest listing a/face.png and b/face.png names both 'face': the first is made, the
    second is an error naming the first (it was skipped as "done before", its photo lost, and the
    summary counted a pair it never wrote); a rerun says the same. A source that moved is not
    another input: its outputs are made again under the same id."""
    import shutil

    photo = sorted(faces_dir.glob("*.png"))[0]
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        shutil.copy(photo, tmp_path / d / "face.png")
    lst = tmp_path / "list.txt"
    lst.write_text("a/face.png\nb/face.png\n")
    out = tmp_path / "out"
    for _ in range(2):
        res = run("pairs", "--from-list", lst, "-o", out, "--size", "64", "--val-fraction", "0")
        assert res.exit_code == 1 and f"already names the outputs of {tmp_path / 'a' / 'face.png'}" in res.stderr, res.stderr
        assert "1 train and 0 val pairs" in res.stdout and "1 photos failed" in res.stdout, res.stdout
    marker = json.loads(next((out / ".prep" / "pairs").glob("*.json")).read_text())
    assert marker["source"] == str(tmp_path / "a" / "face.png")
    shutil.move(tmp_path / "a", tmp_path / "moved")  # a moved source: its id is free again
    lst.write_text("b/face.png\n")
    res = run("pairs", "--from-list", lst, "-o", out, "--size", "64", "--val-fraction", "0")
    assert res.exit_code == 0, res.stderr


def test_from_list_on_the_command_line(faces_dir, tmp_path):
    names = sorted(p.name for p in faces_dir.glob("*.png"))[:3]
    lst = tmp_path / "photos.csv"
    lst.write_text("path,id\n" + "".join(f"{faces_dir / n},face_{n[:3]}\n" for n in names))
    res = run("pairs", "--from-list", lst, "-o", tmp_path / "out", "--size", "64")
    assert res.exit_code == 0, res.stderr
    made = sorted(p.name for p in (tmp_path / "out").rglob("sharp/*.png"))
    assert made == [f"face_{n[:3]}.png" for n in names]
    res = run("pairs", "-o", tmp_path / "out2")
    assert res.exit_code == 2 and "give files or folders, or --from-list FILE" in res.stderr


# ---- the streamed report and resume on the driver -------------------------------------------------

@pytest.mark.same_everywhere
def test_report_streams_as_items_finish_and_resume_skips_on_the_driver(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    items = [(f"/in/{k:03d}.jpg", str(out)) for k in range(10)]
    log = RunLog(tmp_path / "run.json", "test")
    stream = log.stream(run_items(touch, iter(items), RunOptions("local", 1), touch_done, 10))
    next(stream)
    assert len(records_path(tmp_path / "run.json").read_text().splitlines()) == 1  # on disk before the run ends
    for _ in range(3):
        next(stream)
    stream.close()  # the driver stops after 4 items
    (out / "calls.log").unlink()
    log = RunLog(tmp_path / "run.json", "test")
    recs = list(log.stream(run_items(touch, iter(items), RunOptions("local", 2), touch_done, 10)))
    log.finish({"note": "second run"})
    assert [r["status"] for r in recs] == ["skipped"] * 4 + ["ok"] * 6  # input order kept
    assert sorted((out / "calls.log").read_text().split()) == [f"{k:03d}.jpg" for k in range(4, 10)]  # done items never reached a worker
    assert all("node" not in r for r in recs[:4]) and all(r["node"] == socket.gethostname() for r in recs[4:])
    rep = json.loads((tmp_path / "run.json").read_text())
    assert rep["counts"] == {"ok": 6, "skipped": 4} and rep["note"] == "second run" and len(rep["items"]) == 10
    assert [i["source"] for i in rep["items"]] == [i[0] for i in items]


BLAS_THREADS = """
import ctypes
import numpy  # the driver has numpy loaded before its pool starts, as prep's CLI has
from prep.runner import RunOptions, run_items


def blas_threads(path, _):
    # the threads of the OpenBLAS that numpy's wheels bundle, in this process
    with open("/proc/self/maps") as f:
        libs = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line})
    for lib in libs:
        dll = ctypes.CDLL(lib)
        for sym in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
            if hasattr(dll, sym):
                return {"source": path, "status": "ok", "threads": int(getattr(dll, sym)())}
    return {"source": path, "status": "ok", "threads": None}


if __name__ == "__main__":
    print(sorted({r["threads"] for r in run_items(blas_threads, [(str(k), "") for k in range(4)], RunOptions("local", 2))}, key=str))
"""


def test_pool_workers_share_the_cores_out_among_their_blas_threads(tmp_path):
    """Each of two pool workers runs BLAS with its share of the cores (one each on two cores).
    Set in the worker itself, the setting came too late: the fork server the workers come from
    had loaded numpy with the driver's program, and the workers' spinning BLAS threads made the
    speech check's model twice as slow with --workers 2 on two cores."""
    from prep.runner import pool_threads

    if not Path("/proc/self/maps").is_file():
        pytest.skip("needs /proc to find the BLAS library")
    script = tmp_path / "driver.py"
    script.write_text(BLAS_THREADS)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    if out.stdout.strip() == "[None]":
        pytest.skip("no OpenBLAS found in the workers")
    assert out.stdout.strip() == f"[{pool_threads(2)['OPENBLAS_NUM_THREADS']}]", out.stdout


@pytest.mark.same_everywhere
def test_local_pool_retries_a_dead_worker(tmp_path):
    items = [(f"/in/{k}.jpg", str(tmp_path)) for k in range(5)]
    recs = list(run_items(die_once, items, RunOptions("local", 2)))
    assert [r["status"] for r in recs] == ["ok"] * 5
    assert len(list(tmp_path.glob("*.died"))) == 5


def test_an_item_that_kills_its_worker_fails_alone(tmp_path):
    """Items go to the workers in chunks; when a chunk's worker dies on every try, its items
    run again one by one, so only the item that kills its worker is failed."""
    items = [(f"/in/{k}.jpg", str(tmp_path)) for k in range(6)]
    recs = list(run_items(dies_on_3, items, RunOptions("local", 2, chunk=3, max_retries=1)))
    assert [r["status"] for r in recs] == ["ok"] * 3 + ["error"] + ["ok"] * 2
    assert "the worker process died 2 times" in recs[3]["message"]


def test_without_ray_one_line_says_how_to_install(faces_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without the extra has
    res = run("pairs", faces_dir, "-o", tmp_path, "--runner", "ray")
    assert res.exit_code == 1
    assert res.stderr == "prep: --runner ray needs Ray, which is not installed: pip install 'prep[ray]'\n"


@pytest.fixture(scope="module")
def gated_photos(faces_dir, tmp_path_factory) -> tuple[Path, Path, list[str], dict]:
    """The interrupted runs' sources (49 photos, the last one gated), their command and the
    tree a clean, uninterrupted run of it makes (once for the three ways of stopping it)."""
    d = tmp_path_factory.mktemp("gated")
    photos = d / "photos"
    photos.mkdir()
    for k in range(6):
        for p in sorted(faces_dir.glob("*.png")):
            (photos / f"{k}_{p.name}").write_bytes(p.read_bytes())
    gate = d / "zz_last.png"
    gate.write_bytes(next(faces_dir.glob("*.png")).read_bytes())
    args = [str(BIN / "prep"), "pairs", str(photos), str(gate), "--size", "128", "--degrade", "realesrgan", "--workers", "2"]
    with isolated_env(tmp_path_factory):  # a module fixture runs before the per-test environment
        clean = subprocess.run(args + ["-o", str(d / "clean")], capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr
    return photos, gate, args, tree(d / "clean")


@pytest.mark.same_everywhere
@pytest.mark.parametrize("sig, group", [(signal.SIGINT, True), (signal.SIGTERM, False), (signal.SIGTERM, True)], ids=["ctrl-c", "sigterm-to-the-driver", "sigterm-to-the-group"])
def test_interrupted_driver_leaves_no_partial_output_and_resumes(gated_photos, tmp_path, sig, group):
    """Ctrl-C in the middle of a run (SIGINT to the driver's process group, as a terminal sends
    it), a SIGTERM to the driver (``kill PID``) or to the whole group (a scheduler's stop: the
    workers die mid-item): no half-written file or temporary folder, a run report that says it
    was interrupted (listing what was done), and the next run finishes the same bytes as a
    clean run."""
    import cv2

    # the last item waits at a gate (tests/gate/sitecustomize.py, in every process of the run):
    # the signal comes when every other item is done and that one is in progress
    _, gate, args, clean_tree = gated_photos
    Path(f"{gate}.reached").unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent / "gate"), "PREP_TEST_GATE": str(gate)}
    out = tmp_path / "out"
    # Ctrl-C as a terminal's foreground job gets it: a shell's background job (CI's, a `make
    # test &`) starts with SIGINT ignored, and prep, as any program, keeps what it is given
    proc = subprocess.Popen(args + ["-o", str(out), "--report", str(tmp_path / "run.json")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not Path(f"{gate}.reached").exists():
        time.sleep(0.05)
    assert proc.poll() is None
    os.killpg(proc.pid, sig) if group else os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().endswith("prep: interrupted; run the same command again to resume")
    written = [p for p in out.rglob("*") if p.is_file()]
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["interrupted"] is True and 0 < len(summary["items"]) <= 48  # the gated one is not done
    pngs = len([p for p in written if p.suffix == ".png"])
    assert 2 * len(summary["items"]) <= pngs <= 96 and pngs % 2 == 0  # whole pairs, of every item reported done
    assert not [p for p in written if ".part" in p.name]  # no temporary left behind
    assert not [p for p in out.rglob("tmp*") if p.is_dir()]
    for p in written:
        if p.suffix == ".png":
            assert cv2.imread(str(p)) is not None, p  # every file there is whole
    again = subprocess.run(args + ["-o", str(out)], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    before = re.search(r"(\d+) photos done before", again.stdout)
    assert before and len(summary["items"]) <= int(before[1]) <= pngs // 2, again.stdout
    assert tree(out) == clean_tree


# ---- Ray, started once for the module ---------------------------------------------------------
# A two-node cluster on this machine (`ray start`, one CPU per node), to which this process
# connects as a driver: every Ray test below runs on it, and the two-node test drives it from
# another process through the CLI. With PREP_SKIP_CLUSTER=1 (CI's fresh pass) a local Ray with
# 2 CPUs started in this process stands in for it (the two-node test is skipped there).

CLUSTER = os.environ.get("PREP_SKIP_CLUSTER") != "1"


def _start_node(tmp: str, log: Path, env: dict[str, str], *extra: str) -> subprocess.Popen:
    """One `ray start --block` in its own session, so the test stops exactly what it started."""
    ports = {k: free_port() for k in ("dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port", "runtime-env-agent-port", "node-manager-port", "object-manager-port")}
    args = [str(BIN / "ray"), "start", "--block", "--num-cpus=1", "--disable-usage-stats", f"--temp-dir={tmp}", "--node-ip-address=127.0.0.1", *[f"--{k}={v}" for k, v in ports.items()], *extra]
    return subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True, env=env)


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


def _start_cluster(tmp: str, logs: Path, env: dict[str, str], procs: list[subprocess.Popen]) -> str:
    """A head and a worker node; returns the head's address once the head listens (the worker
    node is started, :func:`_wait_for_nodes` waits for it)."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    procs.append(_start_node(tmp, logs / "head.log", env, "--head", f"--port={port}", "--include-dashboard=false"))
    deadline = time.time() + 90
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            break
        except OSError:
            assert procs[0].poll() is None and time.time() < deadline, (logs / "head.log").read_text()[-2000:]
            time.sleep(0.2)
    procs.append(_start_node(tmp, logs / "worker.log", env, f"--address={address}"))
    return address


def _wait_for_nodes(ray, procs: list[subprocess.Popen], logs: Path, n: int = 2) -> None:
    """Until the connected cluster has ``n`` live nodes (asked in this process: a `ray status`
    per poll would start a Python with Ray each time)."""
    deadline = time.time() + 90
    while sum(node["Alive"] for node in ray.nodes()) < n:
        assert procs[1].poll() is None and time.time() < deadline, (logs / "worker.log").read_text()[-2000:]
        time.sleep(0.2)


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """This process connected to the module's Ray: (ray, the two-node cluster's address or None)."""
    import ray

    from conftest import WEIGHTS

    tmp = tempfile.mkdtemp(prefix="prepray", dir="/tmp")  # short: Ray's socket paths must stay short
    logs = tmp_path_factory.mktemp("ray_logs")
    # the units of work defined in this file must be importable by Ray's workers (prep's own are
    # installed); the workers get the environment the tests' own fixture gives this process
    env = {"PYTHONPATH": os.pathsep.join([str(Path(__file__).parent)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])),
           "PREP_OFFLINE": "1", "PREP_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "cache"), **NO_AUTH}
    if WEIGHTS.is_dir():
        env["PREP_WEIGHTS_DIR"] = str(WEIGHTS)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    procs: list[subprocess.Popen] = []
    try:
        if CLUSTER:
            # a node given SIGTERM stops at once (by default it drains for up to 30 s)
            address = _start_cluster(tmp, logs, {**os.environ, **env, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}, procs)
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
            _wait_for_nodes(ray, procs, logs)
        else:
            address = None
            ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False, _temp_dir=tmp)
        yield ray, address
    finally:
        ray.shutdown()
        _stop(procs)
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def local_ray(ray_cluster):
    """Ray, with this process connected as the driver (what `--runner ray` then uses)."""
    return ray_cluster[0]


def ray_nodes_ok(nodes: set[str]) -> bool:
    """Records' nodes are Ray nodes of this machine: one with a local Ray, at most two on the cluster."""
    return 1 <= len(nodes) <= (2 if CLUSTER else 1) and all(n.startswith(socket.gethostname() + "/") for n in nodes)


@pytest.mark.same_everywhere
def test_pairs_and_augment_same_bytes_local_and_ray(local_ray, faces_dir, tmp_path):
    common = [faces_dir, "--size", "128", "--copies", "2", "--seed", "11", "--degrade", "bsrgan", "--val-fraction", "0.25"]
    assert run("pairs", *common, "-o", tmp_path / "local").exit_code == 0
    res = run("pairs", *common, "-o", tmp_path / "ray", "--runner", "ray", "--report", tmp_path / "ray.json")
    assert res.exit_code == 0, res.stderr
    local, ray_out = tree(tmp_path / "local"), tree(tmp_path / "ray")
    assert len(local) > 16 and local == ray_out
    nodes = {json.loads(line)["node"] for line in (tmp_path / "ray.jsonl").read_text().splitlines()}
    assert ray_nodes_ok(nodes), nodes
    # augment the pairs just made: the same, with 1 local process and on Ray
    assert run("augment", tmp_path / "local", "-o", tmp_path / "aug_local", "--preset", "pairs", "--seed", "3").exit_code == 0
    res = run("augment", tmp_path / "local", "-o", tmp_path / "aug_ray", "--preset", "pairs", "--seed", "3", "--runner", "ray")
    assert res.exit_code == 0, res.stderr
    a, b = tree(tmp_path / "aug_local"), tree(tmp_path / "aug_ray")
    assert len(a) >= 8 and a == b


def test_crop_same_output_local_and_ray(local_ray, clips, tmp_path):
    """The sample clip's first 3 s, its pixels squeezed and tagged non-square (with its audio: the
    speech is measured)."""
    for name, extra in (("local", []), ("ray", ["--runner", "ray"])):
        res = run("crop", clips["sar"], "-o", tmp_path / name, "--size", "128", "--mode", "track", *extra)
        assert res.exit_code == 0, res.stderr
    clip = "sar"
    assert (tmp_path / "local" / f"{clip}.mp4").read_bytes() == (tmp_path / "ray" / f"{clip}.mp4").read_bytes()
    a, b = (json.loads((tmp_path / d / f"{clip}.json").read_text()) for d in ("local", "ray"))
    for rec in (a, b):
        rec.pop("timings")
        rec.pop("output"), rec.pop("report")
    assert a == b


@pytest.mark.same_everywhere
def test_ray_resume_skips_on_the_driver_and_a_bad_photo_is_one_error(local_ray, faces_dir, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in sorted(faces_dir.glob("*.png"))[:4]:
        (photos / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "out"
    assert run("pairs", photos, "-o", out, "--size", "64", "--runner", "ray").exit_code == 0
    for p in sorted(faces_dir.glob("*.png"))[4:]:
        (photos / p.name).write_bytes(p.read_bytes())
    (photos / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    res = run("pairs", photos, "-o", out, "--size", "64", "--runner", "ray", "--report", tmp_path / "r.json")
    assert res.exit_code == 1
    assert res.stderr == f"prep: {photos / 'zz_broken.png'}: truncated PNG (no end chunk)\n"
    recs = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [r["status"] for r in recs] == ["skipped"] * 4 + ["ok"] * 4 + ["error"]
    assert all("node" not in r for r in recs[:4])  # answered on the driver: never sent to a worker
    assert all(r["node"].startswith(socket.gethostname() + "/") for r in recs[4:])
    assert "4 photos done before" in res.output and "1 photos failed" in res.output


@pytest.mark.same_everywhere
def test_ray_retries_a_killed_worker_but_never_a_bug(local_ray, tmp_path):
    flags = tmp_path / "flags"
    flags.mkdir()
    items = [(f"/in/{k}.jpg", str(flags)) for k in range(4)]
    recs = list(run_items(die_once, items, RunOptions("ray", max_retries=2)))
    assert [r["status"] for r in recs] == ["ok"] * 4  # each item's worker died once; Ray ran it again
    assert len(list(flags.glob("*.died"))) == 4
    calls = tmp_path / "calls.log"
    recs = list(run_items(raises, [(f"/in/{k}.jpg", str(calls)) for k in range(3)], RunOptions("ray", max_retries=2)))
    assert [r["status"] for r in recs] == ["error"] * 3
    assert recs[0]["message"] == "/in/0.jpg: unexpected ZeroDivisionError: a bug (please report this)"
    assert sorted(calls.read_text().split()) == [f"/in/{k}.jpg" for k in range(3)]  # run once each: no retry loop


@pytest.mark.same_everywhere
def test_on_ray_an_item_that_kills_its_worker_fails_alone(local_ray, tmp_path):
    items = [(f"/in/{k}.jpg", str(tmp_path)) for k in range(6)]
    recs = list(run_items(dies_on_3, items, RunOptions("ray", chunk=3, max_retries=0)))
    assert [r["status"] for r in recs] == ["ok"] * 3 + ["error"] + ["ok"] * 2


@pytest.mark.same_everywhere
def test_in_flight_tasks_are_bounded(local_ray, tmp_path):
    """The driver reads items only as tasks finish: at most ``in_flight`` chunks are outstanding."""
    read = []

    def items():
        for k in range(40):
            read.append(k)
            yield (f"/in/{k:03d}.jpg", str(tmp_path))

    with open_runner(RunOptions("ray", in_flight=3, chunk=2)) as runner:
        stream = runner.map(touch, items())
        first = next(stream)
        assert first["source"] == "/in/000.jpg"
        assert len(read) <= 2 * 3 + 2  # three chunks of two, and the one being formed
        rest = list(stream)
    assert len(rest) == 39 and len(read) == 40


# ---- a two-node cluster on this machine, driven through the CLI ---------------------------------

@pytest.mark.skipif(not CLUSTER, reason="PREP_SKIP_CLUSTER=1: the two-node cluster test runs in CI's first pass only")
def test_two_node_cluster_through_the_cli(ray_cluster, faces_dir, tmp_path):
    """`prep pairs --runner ray --ray-address` from another process: its items run on both
    nodes (tasks are spread; the first ones go out one item each) and the bytes are those of a
    local run."""
    _, address = ray_cluster
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(2):
        for p in sorted(faces_dir.glob("*.png")):
            (photos / f"{k}_{p.name}").write_bytes(p.read_bytes())
    env = {**os.environ, **NO_AUTH, "PREP_RAY_ADDRESS": address}
    env.pop("RAY_ADDRESS", None)
    args = ["pairs", str(photos), "--size", "256", "--copies", "2", "--degrade", "realesrgan", "--seed", "5", "--report", str(tmp_path / "run.json")]
    res = subprocess.run([str(BIN / "prep"), *args, "-o", str(tmp_path / "cluster"), "--runner", "ray", "--ray-address", address], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    recs = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert len(recs) == 16 and {r["status"] for r in recs} == {"ok"}
    nodes = {r["node"] for r in recs}
    assert len(nodes) == 2, nodes  # items ran on both nodes
    local = subprocess.run([str(BIN / "prep"), *args, "-o", str(tmp_path / "local"), "--workers", "2"], capture_output=True, text=True, cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    assert tree(tmp_path / "cluster") == tree(tmp_path / "local")


def test_frames_takes_several_videos(clips, tmp_path):
    """One video writes into OUT (as before); a folder of them one OUT/<name>/ each, mapped like
    the other commands, and a second run skips them on the driver."""
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.mp4").write_bytes(clips["odd_noaudio"].read_bytes())
    out = tmp_path / "out"
    res = run("frames", folder, "-o", out, "--fps", "5", "--workers", "2", "--report", tmp_path / "run.json")
    assert res.exit_code == 0, res.stderr
    for name in ("a", "b"):
        rep = json.loads((out / name / "frames.json").read_text())
        assert rep["status"] == "ok" and rep["frames"] == 10 and (out / name / "00010.png").is_file()
    assert (out / "a" / "00001.png").read_bytes() == (out / "b" / "00001.png").read_bytes()
    again = run("frames", folder, "-o", out, "--fps", "5")
    assert again.exit_code == 0 and again.output.count("skip ") == 2
    one = run("frames", clips["odd_noaudio"], "-o", tmp_path / "one", "--fps", "5")
    assert one.exit_code == 0 and (tmp_path / "one" / "frames.json").is_file() and (tmp_path / "one" / "00001.png").read_bytes() == (out / "a" / "00001.png").read_bytes()
    dfl = run("frames", folder, "-o", tmp_path / "dfl", "--layout", "dfl")
    assert dfl.exit_code == 1 and dfl.stderr == "prep: --layout dfl takes one video (a DeepFaceLab workspace holds one data_src or data_dst)\n"


def test_a_crop_whose_id_names_another_sources_clip_is_an_error(tmp_path):
    """crop's resume check and its unit of work see a report (or --split record) left under the
    same id by another source that still exists: an error naming it, not a skip or an overwrite."""
    import dataclasses

    from prep.config import CropConfig
    from prep.crop import crop_video, done, output_paths, split_marker

    a, b = tmp_path / "a" / "clip.mp4", tmp_path / "b" / "clip.mp4"
    for p in (a, b):
        p.parent.mkdir()
        p.write_bytes(b"not decoded: the clash is found first")
    out = tmp_path / "out"
    cfg = CropConfig.resolve("hallo")
    for c, report in ((cfg, output_paths(str(a), out, cfg, "clip")[1]), (dataclasses.replace(cfg, split=True), split_marker(out, "clip"))):
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps({"source": str(a), "status": "ok", "config_key": "x"}))
        for rec in (done(str(b), out, c, "clip"), crop_video(str(b), out, c, "clip")):
            assert rec["status"] == "error" and f"already names the outputs of {a}" in rec["message"], rec
        assert done(str(a), out, c, "clip") is None  # its own source: not a clash (a different key: to be made again)
        assert done(str(tmp_path / "c" / "clip.mp4"), out, c, "clip") is None  # a missing source fails as itself, not as a clash
        report.unlink()


@pytest.mark.parametrize("runner", ["local", "ray"])
def test_workers_below_one_is_one_line_for_either_runner(faces_dir, tmp_path, runner):
    """--runner ray --workers -5 was taken as "all the CPUs"; the local runner refused it."""
    res = run("pairs", faces_dir, "-o", tmp_path / "out", "--runner", runner, "--workers", "-5")
    assert res.exit_code == 1 and res.stderr.strip() == "prep: --workers must be at least 1, got -5"
