"""The ffmpeg binary: the one the ``imageio-ffmpeg`` wheel ships, driven by ffmpeg-python."""

from __future__ import annotations

import functools
import os


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary (``PREP_FFMPEG`` overrides the wheel's binary)."""
    override = os.environ.get("PREP_FFMPEG")
    if override:
        return override
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()
