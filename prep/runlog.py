"""The run report, streamed: each record is appended to a JSON-lines file as it comes back, and
the ``--report`` JSON summary is written from that file at the end, so the driver holds counts,
never the records.

``run.json`` (the summary) gets its records from ``run.jsonl`` beside it. The JSON-lines file
is the log of this run (started afresh each run; a resumed run lists its skipped items too);
the summary is written atomically when the run ends, or is interrupted (then marked `"interrupted": true`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Iterator

from .fsutil import _json_default, atomic_path

DROP = ("config",)  # per-item copies of the run's config stay in the per-item reports


def records_path(report: str | Path) -> Path:
    """``run.json`` -> ``run.jsonl`` (``run.jsonl`` -> ``run.records.jsonl``)."""
    report = Path(report)
    return report.with_suffix(".jsonl") if report.suffix != ".jsonl" else report.with_suffix(".records.jsonl")


class RunLog:
    """Counts of a run's records and, with ``report``, their JSON-lines log and summary."""

    _open: "RunLog | None" = None  # the run in progress (what an interruption has to finish)

    def __init__(self, report: str | Path | None, command: str) -> None:
        self.command = command
        self.counts: dict[str, int] = {}
        self.n = 0
        self.report = Path(report) if report else None
        self.lines = None
        if self.report is not None:
            path = records_path(self.report)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.lines = open(path, "w", encoding="utf-8", buffering=1)  # a whole line per write
            RunLog._open = self

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        self.n += 1
        self.counts[record["status"]] = self.counts.get(record["status"], 0) + 1
        if self.lines is not None:
            self.lines.write(json.dumps({k: v for k, v in record.items() if k not in DROP}, default=_json_default) + "\n")
        return record

    def stream(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Pass records through, logging each."""
        for r in records:
            yield self.add(r)

    @classmethod
    def interrupted(cls) -> None:
        """Write the summary of the run in progress, if any, marked ``"interrupted": true``:
        the records that came back are listed; a rerun of the same command resumes."""
        if cls._open is not None:
            cls._open.finish({"interrupted": True})

    def finish(self, extra: dict[str, Any] | None = None) -> None:
        """Close the log and write the summary (counts, ``extra``, every record from the log)."""
        if RunLog._open is self:
            RunLog._open = None
        if self.lines is None or self.report is None:
            return
        self.lines.close()
        self.lines = None
        log = records_path(self.report)
        head = json.dumps({"command": self.command, "counts": dict(sorted(self.counts.items())), **(extra or {}), "records": str(log)}, indent=2, default=_json_default)
        with atomic_path(self.report) as tmp, open(tmp, "w", encoding="utf-8") as out, open(log, encoding="utf-8") as f:
            out.write(head[: head.rstrip().rfind("}")].rstrip() + ',\n  "items": [')
            first = True
            for line in f:
                if line.strip():
                    out.write(("\n    " if first else ",\n    ") + line.rstrip("\n"))
                    first = False
            out.write("\n  ]\n}\n")

    def close(self) -> None:
        if self.lines is not None:
            self.lines.close()
            self.lines = None
