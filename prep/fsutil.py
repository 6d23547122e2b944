"""Atomic writes: nothing is ever half-written.

Every output is written to a temporary name in the destination folder and renamed into
place when complete, so an interrupted run leaves either the old state or the new file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator


_UMASK = os.umask(0)  # read once (the only way to read it), put back at once
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(dest: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it onto ``dest`` on success.

    The temporary name keeps ``dest``'s extension (tools such as ffmpeg pick the
    format from it). On any exception the temporary file is removed.
    """
    tmp_path = partial_path(dest, suffix)
    try:
        yield tmp_path
        commit(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def partial_path(dest: str | Path, suffix: str | None = None) -> Path:
    """A new temporary file beside ``dest`` (its folder made), named so that
    :func:`sweep_partials` knows it; the caller renames it with :func:`commit` or removes it."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=f".part{dest.suffix if suffix is None else suffix}", dir=dest.parent)
    os.close(fd)
    return Path(tmp)


def commit(tmp: Path, dest: str | Path) -> None:
    """Rename the finished temporary ``tmp`` onto ``dest``."""
    if tmp.exists():  # mkstemp makes it private (0600): give it the mode a new file gets
        os.chmod(tmp, 0o666 & ~_UMASK)
    os.replace(tmp, dest)


# what atomic_path names its temporaries: ".<stem>.<8 random chars>.part<suffix>"
_PARTIAL = re.compile(r"^\..*\.[a-z0-9_]{8}\.part(\.[^./]*)?$")


def sweep_partials(root: str | Path) -> int:
    """Remove the temporaries :func:`atomic_path` left under ``root`` (a worker stopped
    between creating one and removing it); returns how many. Called once a run has been
    interrupted and its workers have stopped, and before a run starts (what a run killed
    outright left: SIGKILL, the kernel's out-of-memory killer, a lost node), so nothing but
    finished outputs is left."""
    import shutil

    n = 0
    root = Path(root)
    if not root.is_dir():
        return 0
    try:
        found = [p for p in root.rglob(".*.part*") if _PARTIAL.match(p.name)]
    except OSError:  # a folder that cannot be listed: nothing of ours can be in it
        return 0
    for p in found:
        with contextlib.suppress(OSError):  # gone already, or not ours to remove: left as it is
            if p.is_dir():  # a sorting folder (write_sorted_lines)
                shutil.rmtree(p)
            else:
                p.unlink()
            n += 1
    return n


def copy_atomic(src: str | Path, dest: str | Path) -> None:
    """Copy a file under a temporary name and rename it into place."""
    import shutil

    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)


def write_json(dest: str | Path, data: Any) -> None:
    """Write ``data`` as pretty JSON, atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def check_writable_dir(path: str | Path) -> Path:
    """Create ``path`` if needed and check that files can be created in it."""
    from .errors import PrepError

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise PrepError(path, f"output folder cannot be written ({exc.strerror or exc})") from None
    return path


def write_sorted_lines(dest: str | Path, keyed: Iterable[tuple[str, str]], spill: int = 50_000) -> int:
    """Write the lines of ``keyed`` (``(sort key, line)``, lines without newlines) to ``dest``
    sorted by key (ties in arrival order), atomically, in memory that does not grow with the
    number of lines: past ``spill`` lines, sorted runs go to temporary files and are merged.
    Returns the number of lines."""
    import heapq

    dest = Path(dest)
    runs: list[Path] = []
    buf: list[tuple[str, int, str]] = []
    n = 0
    with tempfile.TemporaryDirectory(prefix=".sort.", suffix=".part", dir=dest.parent if dest.parent.exists() else None) as work:

        def flush() -> None:
            buf.sort()
            run = Path(work) / f"run{len(runs)}"
            with open(run, "w", encoding="utf-8") as f:
                for k, _, line in buf:
                    f.write(json.dumps(k) + "\t" + line + "\n")
            runs.append(run)
            buf.clear()

        for key, line in keyed:
            buf.append((key, n, line))
            n += 1
            if len(buf) >= spill:
                flush()
        with atomic_path(dest) as tmp, open(tmp, "w", encoding="utf-8") as out:
            if not runs:
                buf.sort()
                out.writelines(line + "\n" for _, _, line in buf)
            else:
                flush()
                files = [open(r, encoding="utf-8") for r in runs]
                try:
                    streams = [((json.loads(k), i, line) for i, (k, line) in enumerate(raw.rstrip("\n").split("\t", 1) for raw in f)) for f in files]
                    out.writelines(line + "\n" for _, _, line in heapq.merge(*streams))
                finally:
                    for f in files:
                        f.close()
    return n
