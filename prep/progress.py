"""Progress bars on a terminal, silence in pipes and tests."""

from __future__ import annotations

import sys
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress(it: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it", enabled: bool | None = None) -> Iterator[T]:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield from it
        return
    from tqdm import tqdm

    yield from tqdm(it, total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)


class Progress:
    """A bar for a batch of records: items per second and failures so far (tqdm on a terminal,
    nothing in pipes and tests). ``update`` takes each record as it comes back."""

    def __init__(self, total: int | None = None, desc: str = "", enabled: bool | None = None, unit: str = "item") -> None:
        self.failed = 0
        self.bar = None
        if enabled is None:
            enabled = sys.stderr.isatty()
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True, smoothing=0.1)

    def update(self, record: dict) -> None:
        if record.get("status") == "error":
            self.failed += 1
            if self.bar is not None:
                self.bar.set_postfix(failed=self.failed, refresh=False)
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
