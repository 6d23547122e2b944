"""Manifests: the inputs of a batch listed in a file, read as a stream (no folder walk on the driver).

Three forms, told apart by the file's extension:

- ``.txt`` (or anything else): one path per line; blank lines and lines starting with ``#``
  are skipped.
- ``.csv``: a header row with a ``path`` column (other columns are ignored, except an
  optional ``id`` column that names the item's outputs).
- ``.parquet``: a ``path`` column (and an optional ``id`` column), read one row group at a
  time; needs pyarrow (``pip install 'prep[ray]'``).

Relative paths are taken from the manifest's own folder, so a list can travel with its data.
Without an ``id`` the item is named by its file's stem.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterator

from .errors import PrepError

Entry = tuple[str, str]  # (path, item id)


def manifest_kind(path: str | Path) -> str:
    """``txt``, ``csv`` or ``parquet``, from the extension."""
    suffix = Path(path).suffix.lower()
    return {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(suffix, "txt")


def read_manifest(path: str | Path) -> Iterator[Entry]:
    """Yield ``(path, item id)`` for every entry of the manifest, in file order, one at a time.

    Raises :class:`PrepError` (naming the manifest) when it is missing, has no ``path``
    column, or is Parquet without pyarrow installed.
    """
    path = Path(path)
    if not path.is_file():
        raise PrepError(path, "manifest not found" if not path.exists() else "manifest is not a file")
    base = path.resolve().parent
    kind = manifest_kind(path)
    rows = _txt_rows(path) if kind == "txt" else _csv_rows(path) if kind == "csv" else _parquet_rows(path)
    for n, (p, item_id) in enumerate(rows, 1):
        q = Path(p)
        full = str(q if q.is_absolute() else base / q)
        if item_id is not None and (why := id_problem(item_id)) is not None:
            raise PrepError(path, f"entry {n} ({p}): {why}")
        yield full, item_id or q.stem


def id_problem(item_id: str) -> str | None:
    """Why ``item_id`` (a manifest's own) cannot name an item's outputs, else None: it must be a
    plain file name, or the outputs would land outside the output folder, in folders the
    trainers do not read, or hidden (``../x``, ``spk1/x``, ``.x``)."""
    if not item_id or item_id in (".", "..") or any(c in item_id for c in "/\\\0") or item_id.startswith("."):
        return f"id {item_id!r} is not a plain file name (no '/', no '\\', no leading '.')"
    if len(item_id.encode()) > 200:
        return f"id {item_id[:40]!r}... is longer than 200 bytes"
    return None


def count_manifest(path: str | Path) -> int | None:
    """Number of entries, cheaply (a byte scan for text and CSV, the footer for Parquet);
    ``None`` when it cannot be told. Only used for the progress bar's total."""
    path = Path(path)
    try:
        kind = manifest_kind(path)
        if kind == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        if kind == "csv":
            return max(0, _count_lines(path) - 1)
        n = 0
        with open(path, "rb") as f:
            for line in f:
                s = line.strip()
                n += bool(s) and not s.startswith(b"#")
        return n
    except Exception:  # noqa: BLE001 - a total is a nicety; the reader reports real problems
        return None


def _count_lines(path: Path) -> int:
    n, last = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


def _txt_rows(path: Path) -> Iterator[tuple[str, str | None]]:
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            s = line.strip()
            if s and not s.startswith("#"):
                yield s, None


def _csv_rows(path: Path) -> Iterator[tuple[str, str | None]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return
        cols = [h.strip().lower() for h in header]
        if "path" not in cols:
            raise PrepError(path, f"no 'path' column in the CSV header (columns: {', '.join(header) or 'none'})")
        ip, iid = cols.index("path"), cols.index("id") if "id" in cols else None
        for line_no, row in enumerate(reader, start=2):
            if not row or not any(c.strip() for c in row):
                continue
            if ip >= len(row) or not row[ip].strip():
                raise PrepError(path, f"line {line_no}: empty path")
            yield row[ip].strip(), (row[iid].strip() or None) if iid is not None and iid < len(row) else None


def _parquet_rows(path: Path) -> Iterator[tuple[str, str | None]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise PrepError(path, "reading a Parquet manifest needs pyarrow: pip install 'prep[ray]'") from None
    try:
        f = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow's errors are many; one line is enough
        raise PrepError(path, f"not a readable Parquet file ({' '.join(str(exc).split())[:200]})") from None
    names = f.schema_arrow.names
    if "path" not in names:
        raise PrepError(path, f"no 'path' column in the Parquet file (columns: {', '.join(names) or 'none'})")
    cols = ["path"] + (["id"] if "id" in names else [])
    for batch in f.iter_batches(batch_size=8192, columns=cols):
        paths = batch.column(0).to_pylist()
        ids = batch.column(1).to_pylist() if len(cols) == 2 else [None] * len(paths)
        for p, i in zip(paths, ids):
            if p:
                yield str(p), (str(i) if i not in (None, "") else None)


def write_text_manifest(dest: str | Path, paths: Iterator[str] | list[str]) -> Path:
    """Write a one-path-per-line manifest atomically (used by benchmarks and tests)."""
    from .fsutil import atomic_path

    with atomic_path(dest) as tmp, open(tmp, "w", encoding="utf-8") as f:
        buf = io.StringIO()
        for k, p in enumerate(paths, 1):
            buf.write(f"{p}\n")
            if k % 10000 == 0:
                f.write(buf.getvalue())
                buf = io.StringIO()
        f.write(buf.getvalue())
    return Path(dest)
