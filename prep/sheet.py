"""Contact sheets: thumbnails with their scores, so a person can check decisions by eye."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .images import write_png

RED, AMBER, GREEN = (40, 40, 220), (0, 170, 240), (60, 170, 60)


@dataclass
class Tile:
    image: np.ndarray  # BGR, any size
    lines: list[str]
    color: tuple[int, int, int]


def render(tiles: list[Tile], title: str, thumb: int = 160, cols: int = 6) -> np.ndarray:
    """A grid of ``thumb``-px tiles, each with a coloured frame and up to three caption lines."""
    cap = 16 * 3
    cols = max(1, min(cols, len(tiles) or 1))
    rows = max(1, (len(tiles) + cols - 1) // cols)
    head = 34
    sheet = np.full((head + rows * (thumb + cap + 8), cols * (thumb + 8), 3), 255, np.uint8)
    cv2.putText(sheet, title[:120], (6, 23), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        x, y = c * (thumb + 8) + 4, head + r * (thumb + cap + 8)
        img = t.image if t.image.ndim == 3 else cv2.cvtColor(t.image, cv2.COLOR_GRAY2BGR)
        h, w = img.shape[:2]
        f = thumb / max(h, w)
        small = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        sheet[y : y + small.shape[0], x : x + small.shape[1]] = small
        cv2.rectangle(sheet, (x - 2, y - 2), (x + thumb + 1, y + thumb + 1), t.color, 2)
        for j, line in enumerate(t.lines[:3]):
            cv2.putText(sheet, line[:26], (x, y + thumb + 14 + 15 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return sheet


def write_sheet(dest: str | Path, tiles: list[Tile], title: str) -> None:
    write_png(dest, render(tiles, title))
