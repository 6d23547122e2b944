"""Memory the analysis has freed, handed back to the system before the encode starts.

glibc's allocator keeps freed memory in its arenas (the analysis's second thread has its own)
instead of returning it, so after the analysis pass a process can hold some 40-70 MB it no
longer uses while the encoders (an ffmpeg decoder and x264, each 100-200 MB at 1080p) run
beside it: the peak of the whole run. ``malloc_trim`` returns it.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim`` from the symbols this process already has, or ``None``."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


def trim() -> None:
    """Return freed heap memory to the system (glibc's ``malloc_trim``; elsewhere nothing)."""
    fn = _malloc_trim()
    if fn is not None:
        fn(0)
