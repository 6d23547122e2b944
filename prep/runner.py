"""Runners: map a unit of work over items, here, in a local process pool, or on a Ray cluster.

The unit of work is any plain module-level function ``fn(*item) -> record`` that never raises
for bad input (the stages' own functions: ``crop_video``, ``make_pairs``, ...); ``item[0]`` is
the item's source path. This is the only module that imports Ray; nothing below it knows
which runner calls it.

What every runner does the same way (:meth:`Runner.map`):

- items are read lazily and at most ``in_flight`` tasks are outstanding, so the driver's
  memory does not grow with the number of items;
- ``done(*item)``, when given, is asked on the driver first: an item it answers for (its
  output and record exist) is reported as it is and never sent to a worker;
- items are sent in chunks whose size adapts to how long an item takes (small, fast items
  travel together, so per-task overhead stays far below the work);
- records come back in input order, each naming the ``node`` it ran on;
- a worker process that dies is retried (``max_retries`` times); what then still fails, or a
  unit of work that raises, becomes error records for its items and the run goes on.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from .errors import PrepError
from .progress import Progress

RUNNERS = ("local", "ray")
INSTALL_RAY = "--runner ray needs Ray, which is not installed: pip install 'prep[ray]'"
TASK_SECONDS = 0.25  # chunks grow until one takes about this long
MAX_CHUNK = 512

Record = dict[str, Any]
UnitOfWork = Callable[..., Record]


@dataclass(frozen=True)
class RunOptions:
    """How to run a batch. ``workers``: processes of the local runner, or the CPUs of a Ray
    started for the run (``None``: all of this machine's). ``address``: an existing Ray
    cluster (``ray start --head`` prints it); ``None`` starts a local one for the run (or uses
    ``$RAY_ADDRESS`` when set). ``chunk``: items per task, 0 to adapt. ``in_flight``: tasks
    outstanding at most, 0 for four per CPU."""

    runner: str = "local"
    workers: int | None = 1
    address: str | None = None
    max_retries: int = 3
    chunk: int = 0
    in_flight: int = 0
    show_progress: bool | None = None

    def __post_init__(self) -> None:
        if self.runner not in RUNNERS:
            raise PrepError(None, f"unknown runner {self.runner!r} (choose {' or '.join(RUNNERS)})")
        if self.workers is not None and self.workers < 1:
            raise PrepError(None, "workers must be at least 1")


def node_name() -> str:
    """This process's node: the host name, and the Ray node id when inside a Ray worker."""
    host = socket.gethostname()
    if _in_ray_worker:
        import ray

        return f"{host}/{ray.get_runtime_context().get_node_id()[:12]}"
    return host


_in_ray_worker = False
_worker_ready = False


def _worker_setup(in_ray: bool) -> None:
    # one task per core: keep each library single-threaded so workers do not fight
    global _worker_ready, _in_ray_worker
    if not _worker_ready:
        import cv2

        cv2.setNumThreads(1)
        _in_ray_worker = in_ray
        _worker_ready = True


def run_chunk(fn: UnitOfWork, chunk: list[tuple], in_ray: bool = False, setup: bool = True) -> tuple[list[Record], float]:
    """Run ``fn`` on each item of ``chunk`` in this process: (records with ``node``, seconds)."""
    if setup:
        _worker_setup(in_ray)
    t0 = time.perf_counter()
    node = node_name()
    records = []
    for item in chunk:
        rec = fn(*item)
        rec["node"] = node
        records.append(rec)
    return records, time.perf_counter() - t0


def failed_record(item: tuple, problem: str) -> Record:
    """The error record of an item whose task failed outside the unit of work."""
    src = str(item[0])
    problem = " ".join(problem.split())
    return {"source": src, "status": "error", "error": problem, "message": f"{src}: {problem}"}


class _Chunker:
    """Chunk size from the time items take: starts at 1, aims at ``TASK_SECONDS`` per task."""

    def __init__(self, fixed: int) -> None:
        self.fixed = fixed
        self.per_item: float | None = None

    def size(self) -> int:
        if self.fixed:
            return self.fixed
        if self.per_item is None:
            return 1
        return max(1, min(MAX_CHUNK, int(TASK_SECONDS / max(self.per_item, 1e-7))))

    def observe(self, n: int, seconds: float) -> None:
        if n:
            t = seconds / n
            self.per_item = t if self.per_item is None else 0.7 * self.per_item + 0.3 * t


class Runner:
    """Maps units of work over items (see the module's docstring). Use :func:`open_runner`."""

    def __init__(self, opts: RunOptions) -> None:
        self.opts = opts

    # the runner-specific part: how many tasks run at once, submit a chunk, wait for it
    def parallelism(self) -> int:
        return 1

    def concurrent(self) -> bool:
        return True

    def submit(self, fn: UnitOfWork, chunk: list[tuple]) -> Any:
        return run_chunk(fn, chunk, setup=False)  # in this process: done at once

    def result(self, fn: UnitOfWork, chunk: list[tuple], handle: Any) -> tuple[list[Record], float]:
        return handle

    def close(self) -> None:
        pass

    def alone(self, fn: UnitOfWork, chunk: list[tuple]) -> tuple[list[Record], float]:
        """A chunk whose worker died every try, each item sent again as a task of its own: only
        the item that kills its worker is failed, the others run (or, written before the death,
        answer from their own resume check)."""
        records: list[Record] = []
        for item in chunk:
            records += self.result(fn, [item], self.submit(fn, [item]))[0]
        return records, 0.0

    def map(self, fn: UnitOfWork, items: Iterable[tuple], done: UnitOfWork | None = None, total: int | None = None, desc: str = "") -> Iterator[Record]:
        """Yield one record per item, in input order (see the module's docstring)."""
        # in this process an item runs when it is sent: send the next only when asked for
        window = self.opts.in_flight or (4 * self.parallelism() if self.concurrent() else 0)
        chunker = _Chunker(self.opts.chunk or (0 if self.concurrent() else 1))
        pending: deque = deque()  # ("ready", record) or ("task", chunk, handle)
        bar = Progress(total, desc, self.opts.show_progress)

        def emit(entry: tuple) -> Iterator[Record]:
            if entry[0] == "ready":
                bar.update(entry[1])
                yield entry[1]
                return
            _, chunk, handle = entry
            records, seconds = self.result(fn, chunk, handle)
            chunker.observe(len(chunk), seconds)
            for r in records:
                bar.update(r)
                yield r

        def drain(limit: int) -> Iterator[Record]:
            while len(pending) > limit:
                yield from emit(pending.popleft())

        chunk: list[tuple] = []
        try:
            for item in items:
                old = done(*item) if done is not None else None
                if old is not None:
                    if chunk:
                        pending.append(("task", chunk, self.submit(fn, chunk)))
                        chunk = []
                    pending.append(("ready", old))
                else:
                    chunk.append(item)
                    if len(chunk) >= chunker.size():
                        pending.append(("task", chunk, self.submit(fn, chunk)))
                        chunk = []
                yield from drain(window)
            if chunk:
                pending.append(("task", chunk, self.submit(fn, chunk)))
            yield from drain(0)
        finally:
            bar.close()
            self.cancel([e[2] for e in pending if e[0] == "task"])

    def cancel(self, handles: list[Any]) -> None:
        pass


class _PoolTask:
    """A chunk sent to the local pool; sent again (a new future) if the pool breaks."""

    def __init__(self, key: int, fn: UnitOfWork, chunk: list[tuple]) -> None:
        self.key, self.fn, self.chunk, self.tries = key, fn, chunk, 0
        self.future: Future | None = None
        self.generation = -1

    def failed(self) -> bool:
        return self.future is None or not self.future.done() or self.future.exception() is not None


_started: Any = None  # pool workers: where each says which task it starts


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _pool_init(started: Any) -> None:
    """A pool worker: where it says which task it starts. (Its libraries' thread counts were set
    before the pool's processes started: see :meth:`LocalRunner._pool`.)"""
    global _started
    _started = started


def pool_threads(workers: int) -> dict[str, str]:
    """The thread count of BLAS and OpenMP in each of ``workers`` pool processes: the cores
    shared out (one each when there are as many workers as cores, as Ray sets for its
    workers). Without it every worker's BLAS starts a thread per core, and their spinning
    threads fight: the speech check's model ran twice as slow with two workers on two cores."""
    return {var: str(max(1, (os.cpu_count() or 1) // max(1, workers))) for var in _THREAD_VARS}


def _pool_chunk(key: int, fn: UnitOfWork, chunk: list[tuple]) -> tuple[list[Record], float]:
    _started.put(key)  # written to the pipe before the work starts: a worker that dies is known by it
    return run_chunk(fn, chunk)


_POOLS: list[ProcessPoolExecutor] = []  # this process's live pools (what a SIGTERM has to stop)


def interrupt_workers() -> None:
    """Send Ctrl-C (SIGINT) to this process's pool workers: each stops as on Ctrl-C, removing
    its temporary files. Used when the driver alone is stopped by SIGTERM (``kill PID``)."""
    import signal

    for pool in list(_POOLS):
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            try:
                if proc.is_alive() and proc.pid:
                    os.kill(proc.pid, signal.SIGINT)
            except (OSError, ValueError):
                pass


def preloads(fn: UnitOfWork) -> list[str]:
    """The modules a unit of work's processes import: its own, and those it names in its
    module's ``POOL_PRELOAD`` (imported inside its functions, so that a command that does not
    need them starts without them)."""
    module = getattr(fn, "__module__", None)
    if not module or module not in sys.modules:
        return []
    return [module, *getattr(sys.modules[module], "POOL_PRELOAD", ())]


class LocalRunner(Runner):
    """This process (``workers`` 1) or a pool of ``workers`` processes on this machine.

    Pool workers start from a clean process (forkserver), never a fork of this one: a fork
    taken while OpenCV's or BLAS's thread pools run can deadlock in the child."""

    def __init__(self, opts: RunOptions) -> None:
        super().__init__(opts)
        self.workers = min(opts.workers or os.cpu_count() or 1, os.cpu_count() or 1) if opts.workers != 1 else 1
        self.pool: ProcessPoolExecutor | None = None
        self.generation = 0
        self.live: dict[int, _PoolTask] = {}  # outstanding tasks
        self.started: Any = None
        self.running: set[int] = set()  # keys of tasks a worker has started
        self.keys = 0

    def parallelism(self) -> int:
        return self.workers

    def concurrent(self) -> bool:
        return self.workers > 1

    def _pool(self, fn: UnitOfWork) -> ProcessPoolExecutor:
        if self.pool is None:
            import multiprocessing

            # set before the fork server starts: it loads numpy (and BLAS reads these at load),
            # and the workers are forked from it; a setting the user made stays
            for var, value in pool_threads(self.workers).items():
                os.environ.setdefault(var, value)
            ctx = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
            if ctx.get_start_method() == "forkserver":
                # what every worker imports anyway is imported once, in the fork server (a
                # server already running, from an earlier pool of this process, keeps its own)
                ctx.set_forkserver_preload(["__main__", *preloads(fn)])
            self.started = ctx.SimpleQueue()
            self.pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_pool_init, initargs=(self.started,))
            _POOLS.append(self.pool)
        return self.pool

    def submit(self, fn: UnitOfWork, chunk: list[tuple]) -> Any:
        if self.workers == 1:
            return run_chunk(fn, chunk, setup=False)
        self.keys += 1
        task = _PoolTask(self.keys, fn, chunk)
        self.live[task.key] = task
        self._resend(task)
        return task

    def result(self, fn: UnitOfWork, chunk: list[tuple], handle: Any) -> tuple[list[Record], float]:
        if self.workers == 1:
            return handle
        task: _PoolTask = handle
        self._drain()  # keep the pipe of started tasks empty: a full pipe would block the workers
        try:
            while True:
                try:
                    return task.future.result()
                except BrokenProcessPool:
                    # a worker died (killed, out of memory) and took the pool with every task in it
                    if task.generation == self.generation:
                        self._restart()
                    elif not task.failed():
                        continue
                    if task.tries > self.opts.max_retries:
                        if len(chunk) > 1:  # which item kills its worker is not known: each runs alone
                            return self.alone(fn, chunk)
                        return [failed_record(it, f"the worker process died {task.tries} times running this item's task") for it in chunk], 0.0
        except Exception as exc:  # noqa: BLE001 - a unit of work that raised: a bug, reported per item
            return [failed_record(it, f"unexpected {type(exc).__name__}: {exc} (please report this)") for it in chunk], 0.0
        finally:
            self.live.pop(task.key, None)
            self.running.discard(task.key)

    def _drain(self) -> None:
        while self.started is not None and not self.started.empty():
            key = self.started.get()
            if key in self.live:  # a task already collected is forgotten
                self.running.add(key)

    def _restart(self) -> None:
        """A new pool; the unfinished tasks of the broken one are sent again. Those that had
        started (one of them died) are charged a try."""
        self._drain()
        started, self.running = self.running, set()
        if self.pool is not None:
            self._forget_pool().shutdown(wait=False, cancel_futures=True)
        self.pool = None
        self.generation += 1
        for t in list(self.live.values()):
            if t.failed():
                t.tries += t.key in started
                if t.tries <= self.opts.max_retries:
                    self._resend(t)

    def _resend(self, task: _PoolTask) -> None:
        if task.generation != self.generation:
            task.future = self._pool(task.fn).submit(_pool_chunk, task.key, task.fn, task.chunk)
            task.generation = self.generation

    def cancel(self, handles: list[Any]) -> None:
        self.close()

    def close(self) -> None:
        if self.pool is not None:
            self._forget_pool().shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def _forget_pool(self) -> ProcessPoolExecutor:
        """This runner's pool, no longer one a SIGTERM has to stop."""
        if self.pool in _POOLS:
            _POOLS.remove(self.pool)
        return self.pool


class RayRunner(Runner):
    """Ray tasks on the cluster at ``address``, or on a Ray started here for the run."""

    def __init__(self, opts: RunOptions) -> None:
        super().__init__(opts)
        try:
            import ray
        except ImportError:
            raise PrepError(None, INSTALL_RAY) from None
        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no reports sent home; works offline
            kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "ERROR", "log_to_driver": False}  # failures come back as records
            address = opts.address or os.environ.get("RAY_ADDRESS") or None
            if address:
                kwargs["address"] = address
            elif opts.workers:
                kwargs["num_cpus"] = opts.workers
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise PrepError(None, f"cannot reach the Ray cluster at {address or 'a new local Ray'}: {' '.join(str(exc).split())[:200]}") from None
            self.started = True
        # SPREAD: tasks go to every node, not first to the one the driver is on
        self.task = ray.remote(num_cpus=1, max_retries=opts.max_retries, retry_exceptions=False, scheduling_strategy="SPREAD")(run_chunk)

    def parallelism(self) -> int:
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def submit(self, fn: UnitOfWork, chunk: list[tuple]) -> Any:
        return self.task.remote(fn, chunk, True)

    def result(self, fn: UnitOfWork, chunk: list[tuple], handle: Any) -> tuple[list[Record], float]:
        try:
            return self.ray.get(handle)
        except self.ray.exceptions.RayTaskError as exc:  # the unit of work raised: a bug
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            return [failed_record(it, f"unexpected {type(cause).__name__}: {cause} (please report this)") for it in chunk], 0.0
        except self.ray.exceptions.RayError as exc:  # the worker or its node died more than max_retries times
            if len(chunk) > 1:  # which item kills its worker is not known: each runs alone
                return self.alone(fn, chunk)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return [failed_record(it, f"the task failed after {self.opts.max_retries} retries ({type(exc).__name__}: {first[:160]})") for it in chunk], 0.0

    def cancel(self, handles: list[Any]) -> None:
        for h in handles:
            with contextlib.suppress(Exception):
                self.ray.cancel(h, force=True)

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
            self.started = False


@contextlib.contextmanager
def open_runner(opts: RunOptions) -> Iterator[Runner]:
    """The runner ``opts`` asks for, closed (pool stopped, a Ray started here shut down) on exit."""
    runner: Runner = RayRunner(opts) if opts.runner == "ray" else LocalRunner(opts)
    try:
        yield runner
    finally:
        runner.close()


def run_items(fn: UnitOfWork, items: Iterable[tuple], opts: RunOptions = RunOptions(), done: UnitOfWork | None = None, total: int | None = None, desc: str = "") -> Iterator[Record]:
    """:meth:`Runner.map` with a runner opened for this one batch."""
    with open_runner(opts) as runner:
        yield from runner.map(fn, items, done, total, desc)
