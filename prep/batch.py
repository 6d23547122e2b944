"""Batch plumbing shared by every command: expand sources, name items, map the unit of work.

The unit of work is a plain module-level function ``fn(item, *args) -> record`` that never
raises for bad input. :func:`map_items` runs it in this process or in a local process
pool; a cluster runner (Ray, ...) only needs to map the same function over the same items.
Records come back in input order whatever the number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .progress import progress


def expand_sources(sources: Iterable[str | Path], extensions: set[str]) -> list[Path]:
    """Files as given, folders replaced by every file inside with one of ``extensions``
    (recursively, sorted by path). Paths that do not exist are kept: the unit of work
    reports them as errors, so a typo is not silently dropped."""
    out: list[Path] = []
    seen: set[Path] = set()
    for src in sources:
        p = Path(src)
        found = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in extensions and not q.name.startswith(".")) if p.is_dir() else [p]
        for q in found:
            key = q.resolve()
            if key not in seen:
                seen.add(key)
                out.append(q)
    return out


def item_ids(paths: list[Path]) -> list[str]:
    """A distinct output name per source: its stem, or ``parent__stem`` where stems collide."""
    stems = [p.stem for p in paths]
    ids = []
    for p, stem in zip(paths, stems):
        if stems.count(stem) == 1:
            ids.append(stem)
        else:
            parts = [x for x in p.resolve().parent.parts[-2:] if x not in ("/", "")]
            ids.append("__".join(parts + [stem]))
    return ids


def _worker_init() -> None:
    # one process per core: keep each library single-threaded so workers do not fight
    import cv2

    cv2.setNumThreads(1)


def map_items(fn: Callable[..., dict[str, Any]], items: list[tuple], workers: int = 1, desc: str = "", show_progress: bool | None = None) -> Iterator[dict[str, Any]]:
    """Yield ``fn(*item)`` for every item, in order. ``workers > 1`` uses a process pool."""
    if workers <= 1 or len(items) <= 1:
        for item in progress(items, len(items), desc, "file", show_progress):
            yield fn(*item)
        return
    workers = min(workers, len(items), os.cpu_count() or 1)
    # Workers start from a clean process, never a fork of this one: a fork taken while
    # OpenCV's or BLAS's thread pools are running can deadlock in the child.
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init, mp_context=ctx) as pool:
        futures = [pool.submit(fn, *item) for item in items]
        for fut in progress(futures, len(futures), desc, "file", show_progress):
            yield fut.result()


def summarize(records: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return counts
