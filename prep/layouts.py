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


@dataclass(frozen=True)
class PairLayout:
    """Where a sharp/degraded pair goes. ``lq`` is None where the trainer makes its own
    degraded images (GPEN's own trainer degrades its training faces on the fly)."""

    name: str
    train_hq: str
    train_lq: str | None
    val_hq: str
    val_lq: str
    description: str

    def paths(self, root: str | Path, split: str, name: str) -> tuple[Path, Path | None]:
        hq, lq = (self.train_hq, self.train_lq) if split == "train" else (self.val_hq, self.val_lq)
        return Path(root) / hq / name, (Path(root) / lq / name if lq else None)


PAIR_LAYOUTS: dict[str, PairLayout] = {
    # GPEN training guides: train/{sharp,blurry}, val/{sharp,blurry}, pairs share file names
    "gpen": PairLayout("gpen", "train/sharp", "train/blurry", "val/sharp", "val/blurry", "OUT/{train,val}/{sharp,blurry}/<name>.png"),
    # the same folders, plus basicsr_options.yml for BasicSR's PairedImageDataset
    "basicsr": PairLayout("basicsr", "train/sharp", "train/blurry", "val/sharp", "val/blurry", "as gpen, plus OUT/basicsr_options.yml"),
    # GPEN's own train_simple.py: one flat folder of sharp faces (--path), val/hq + val/lq
    "gpen-native": PairLayout("gpen-native", "train", None, "val/hq", "val/lq", "OUT/train/<name>.png, OUT/val/{hq,lq}/<name>.png"),
}


def pair_layout(name: str) -> PairLayout:
    from .errors import PrepError

    try:
        return PAIR_LAYOUTS[name]
    except KeyError:
        raise PrepError(None, f"unknown pair layout '{name}' (choose from {', '.join(PAIR_LAYOUTS)})") from None


def dfl_workspace(root: str | Path, src: str | Path, side: str = "data_src") -> tuple[Path, Path]:
    """DeepFaceLab's workspace: ``workspace/data_src.<ext>`` (the video) and
    ``workspace/data_src/`` (its frames, ``%05d.png``), or the same with ``data_dst``."""
    ws = Path(root) / "workspace"
    return ws / f"{side}{Path(src).suffix.lower()}", ws / side
