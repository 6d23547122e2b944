"""One exception type for bad input: it carries the file and a one-line problem.

The CLI prints ``prep: <path>: <problem>`` and exits non-zero, with no traceback; batch
runners record it as the item's error and go on (failures are values at the item level).
"""

from __future__ import annotations

from pathlib import Path


class PrepError(Exception):
    """A problem with one input or output that the user can act on."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = " ".join(str(problem).split())  # always one line
        super().__init__(self.line())

    def line(self) -> str:
        return f"{self.path}: {self.problem}" if self.path else self.problem


def error_record(src: str, exc: Exception) -> dict:
    """The record of a failed item: one line for people, the traceback kept for bug reports."""
    if isinstance(exc, PrepError):
        line = exc.line() if exc.path else f"{src}: {exc.problem}"
        return {"source": src, "status": "error", "error": exc.problem, "message": line}
    if isinstance(exc, OSError) and exc.strerror:  # the disk or the file system, not a bug: a full disk, no permission
        problem = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
        return {"source": src, "status": "error", "error": problem, "message": f"{src}: {problem}"}
    import traceback

    problem = f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())} (please report this)"
    return {"source": src, "status": "error", "error": problem, "message": f"{src}: {problem}", "traceback": traceback.format_exc()}
