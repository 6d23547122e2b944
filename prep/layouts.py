"""Where each trainer expects its files: one small registry, shared by every command.

A layout maps an item id (the source's stem) to the path of its output, relative to the
output root. Reports stay beside the file they describe.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class VideoLayout:
    name: str
    folder: str  # relative to the output root
    description: str

    def video_path(self, root: str | Path, item_id: str) -> Path:
        return Path(root) / self.folder / f"{item_id}.mp4"

    def report_path(self, root: str | Path, item_id: str) -> Path:
        return self.video_path(root, item_id).with_suffix(".json")


VIDEO_LAYOUTS: dict[str, VideoLayout] = {
    "flat": VideoLayout("flat", ".", "OUT/<id>.mp4"),
    # GeneFace++ guide: data/raw/videos/{Video_ID}.mp4
    "geneface": VideoLayout("geneface", "data/raw/videos", "OUT/data/raw/videos/<id>.mp4"),
    # Hallo README: dataset_name/videos/*.mp4
    "hallo": VideoLayout("hallo", "videos", "OUT/videos/<id>.mp4"),
}


def video_layout(name: str) -> VideoLayout:
    from .errors import PrepError

    try:
        return VIDEO_LAYOUTS[name]
    except KeyError:
        raise PrepError(None, f"unknown video layout '{name}' (choose from {', '.join(VIDEO_LAYOUTS)})") from None
