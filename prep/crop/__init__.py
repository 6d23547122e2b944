"""``prep crop``: videos in, face-centred square clips and their reports out.

The unit of work is :func:`crop_video`, a plain, picklable function of (source, output root,
resolved config) that returns a record and never raises for bad input, so a local process
pool, a Ray cluster or a plain loop can map it over a batch; :func:`done` is the driver's
resume check.

The modules follow the data, each importing only those before it::

    outputs    where clips go, the settings' fingerprint, what an earlier run finished
    analysis   the one analysis decode and its per-frame consumers -> Analysis (plain facts)
    look       a fixed window from a few key frames, before the analysis (1080p and up: the
               analysis's decode then encodes the clip too)
    plan       facts -> windows, verdicts, reasons (no decoding, no writing)
    write      the encode pass and the reports (temporary name, then rename; report last)
    clip       one clip:        probe -> analyse -> speech -> plan -> write, per size
    split      --split:         probe -> analyse -> tracks -> segments -> verdicts -> write
    group      --group-by person, on the driver after every source
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import CropConfig
from ..errors import error_record
from .analysis import Analysis, analyse, max_gap
from .clip import crop_clip
from .group import group_segments
from .outputs import config_key, done, output_paths, split_marker, taken
from .split import split_source

__all__ = ["Analysis", "analyse", "config_key", "crop_video", "done", "error_record", "group_segments", "max_gap", "output_paths", "split_marker"]


def crop_video(src: str | Path, out_root: str | Path, cfg: CropConfig, item_id: str | None = None, show_progress: bool | None = None) -> dict[str, Any]:
    """Crop one source (with ``cfg.split``: every kept segment of it). Returns a record:
    ``status`` is ``ok``, ``skipped`` (done before), ``rejected`` (the speech check),
    ``empty`` (--split: no segment kept) or ``error``."""
    src = str(src)
    try:
        other = taken(src, out_root, cfg, item_id)
        if other is not None:  # two inputs with one id: neither overwritten
            from ..batch import clash

            raise clash(src, item_id or Path(src).stem, other)
        if cfg.split:
            return split_source(src, out_root, cfg, item_id or Path(src).stem, show_progress)
        return crop_clip(src, out_root, cfg, item_id, show_progress)
    except Exception as exc:  # bad input in one line; a bug or an input nobody foresaw with its traceback; the batch goes on
        return error_record(src, exc)
