"""Batch plumbing shared by every command: expand sources, name items, map the unit of work.

The unit of work is a plain module-level function ``fn(item, *args) -> record`` that never
raises for bad input. :mod:`prep.runner` maps it (this process, a local process pool or
Ray); :func:`map_items` is the local runner's short form. Records come back in input order
whatever the number of workers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .errors import PrepError


def expand_sources(sources: Iterable[str | Path], extensions: set[str]) -> list[Path]:
    """Files as given, folders replaced by every file inside with one of ``extensions``
    (recursively, sorted by path). Paths that do not exist are kept: the unit of work
    reports them as errors, so a typo is not silently dropped."""
    return [q for q, _ in found_in(sources, extensions)]


def found_in(sources: Iterable[str | Path], extensions: set[str]) -> list[tuple[Path, Path | None]]:
    """:func:`expand_sources` with, for each file, the folder given that it was found in
    (``None`` for a file given by itself): what :func:`item_ids` names it by."""
    out: list[tuple[Path, Path | None]] = []
    seen: set[Path] = set()
    for src in sources:
        p = Path(src)
        # hidden files and folders are left out (a .thumbs folder, an earlier run's .prep)
        found = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in extensions and not any(x.startswith(".") for x in q.relative_to(p).parts)) if p.is_dir() else [p]
        for q in found:
            key = q.resolve()
            if key not in seen:
                seen.add(key)
                out.append((q, p if p.is_dir() else None))
    return out


MAX_NAME = 120  # bytes: a name with its folders longer than this takes their digest (file names stop at 255)


def item_ids(paths: list[Path], roots: list[Path | None] | None = None) -> list[str]:
    """A distinct output name per source that stays the same when other files are added: its
    stem, with the folders between it and the folder given (``roots``) in front
    (``shoot1__IMG_0001`` for ``photos/shoot1/IMG_0001.jpg`` when ``photos`` was given), so a
    second ``IMG_0001.jpg`` added in another folder later renames nothing done before. Where
    names still collide (the same path under two folders given, a file given by itself and one
    found in a folder, ``a.jpg`` beside ``a.png``): the two folders above and the stem, and as
    many folders as it takes where even those collide (``/x/p/q/a.jpg`` beside
    ``/y/p/q/a.jpg``), and the extension where only it differs. Names over ``MAX_NAME`` bytes
    (deep trees) are the stem and a digest of the folders."""
    import hashlib
    from collections import Counter

    roots = roots if roots is not None else [None] * len(paths)
    names = []
    for p, root in zip(paths, roots):
        inside = p.relative_to(root).parent.parts if root is not None else ()
        name = "__".join([*inside, p.stem])
        if inside and len(name.encode()) > MAX_NAME:  # a deep tree: the stem and the folders' digest
            name = f"{p.stem}__{hashlib.sha1('/'.join(inside).encode()).hexdigest()[:10]}"
        names.append(name)
    counts = Counter(names)
    ids = []
    for p, name in zip(paths, names):
        if counts[name] == 1:
            ids.append(name)
        else:
            parts = [x for x in p.resolve().parent.parts[-2:] if x not in ("/", "")]
            ids.append("__".join(parts + [p.stem]))
    clash = Counter(ids)
    for k, (p, i) in enumerate(zip(paths, ids)):
        if clash[i] > 1:
            parts = [x for x in p.resolve().parent.parts if x not in ("/", "")]
            ids[k] = "__".join(parts + [p.stem]) + (f"__{p.suffix.lstrip('.').lower()}" if p.suffix else "")
    return ids


def iter_inputs(sources: Iterable[str | Path], from_list: str | Path | None, extensions: set[str]) -> tuple[Iterator[tuple[str, str]], int | None]:
    """``(path, item id)`` for every input, and how many there are (``None`` if unknown).

    Files and folders (``sources``) are expanded here (a folder walk, named by
    :func:`item_ids` by their place in the folder given); a manifest (``from_list``, see
    :mod:`prep.manifest`) is streamed as it is, never walked or held whole. Both may be given: the sources come first.
    """
    from itertools import chain

    from .manifest import count_manifest, read_manifest

    found = found_in(sources, extensions) if sources else []
    paths = [p for p, _ in found]
    listed = list(zip(map(str, paths), item_ids(paths, [root for _, root in found])))
    if from_list is None:
        return iter(listed), len(listed)
    n = count_manifest(from_list)
    it = read_manifest(from_list)
    first = next(it, None)  # a missing or malformed manifest fails here, before any work
    streamed = chain([first], it) if first is not None else iter(())
    return chain(listed, streamed), None if n is None else n + len(listed)


def map_items(fn: Callable[..., dict[str, Any]], items: list[tuple], workers: int = 1, desc: str = "", show_progress: bool | None = None) -> Iterator[dict[str, Any]]:
    """Yield ``fn(*item)`` for every item, in order. ``workers > 1`` uses a process pool."""
    from .runner import RunOptions, run_items

    yield from run_items(fn, items, RunOptions("local", workers, show_progress=show_progress), total=len(items), desc=desc)


def summarize(records: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return counts


def read_record(path: str | Path) -> dict[str, Any] | None:
    """An earlier run's JSON record (a marker or a report), or None when there is none or it is
    not whole."""
    try:
        rec = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def taken_by(record: dict[str, Any] | None, src: str) -> str | None:
    """The other input an earlier ``record`` (:func:`read_record`) was made from, when two
    inputs were given the same id (a manifest listing ``a/face.png`` and ``b/face.png``, both
    named ``face``) and that other file still exists; else None. A source that moved (its old
    path gone) or the same file under another path is not another input."""
    old = (record or {}).get("source")
    if not old or old == src:
        return None
    if not Path(old).is_file() or not Path(src).exists():
        return None  # the other moved away, or this one is missing (it fails on its own, not as a clash)
    try:
        return None if Path(old).samefile(src) else str(old)
    except OSError:
        return None


def clash(src: str, item_id: str, other: str) -> PrepError:
    """The error of an input whose id already names another input's outputs."""
    return PrepError(src, f"its id {item_id!r} already names the outputs of {other}: give each input its own id (a manifest's 'id' column)")

