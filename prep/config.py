"""Presets are TOML data files in ``presets/``; each command's part is loaded into one typed,
validated config object. Command-line options override fields; the resolved config is saved
in every report.

The repository keeps the presets at its top level; the wheel carries them as ``prep/presets``
(see pyproject.toml), so a preset is found by name from any folder. A path to a ``.toml``
file is read as it is.
"""

from __future__ import annotations

import re

import dataclasses
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import PrepError

_HERE = Path(__file__).resolve().parent


def bundled_preset_dir() -> Path:
    """The presets shipped with prep: ``prep/presets`` in an installed wheel, the repository's
    ``presets/`` in a source checkout (an editable install)."""
    installed = _HERE / "presets"
    return installed if installed.is_dir() else _HERE.parent / "presets"


def preset_dirs() -> list[Path]:
    """Where names are looked up: ``$PREP_PRESETS`` (a folder of the user's own), then the bundled ones."""
    dirs = []
    if os.environ.get("PREP_PRESETS"):
        dirs.append(Path(os.environ["PREP_PRESETS"]))
    dirs.append(bundled_preset_dir())
    return dirs


def available_presets() -> list[str]:
    names: set[str] = set()
    for d in preset_dirs():
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.toml"))
    return sorted(names)


def load_preset(name_or_path: str) -> dict[str, Any]:
    """The parsed preset called ``name_or_path`` (a name in ``presets/`` or a ``.toml`` path)."""
    candidates = [Path(name_or_path)] if name_or_path.endswith(".toml") else [d / f"{name_or_path}.toml" for d in preset_dirs()]
    for path in candidates:
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text())
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise PrepError(path, f"preset is not valid TOML ({exc})") from None
            data.setdefault("name", path.stem)
            return data
    raise PrepError(None, f"unknown preset '{name_or_path}' (available: {', '.join(available_presets())})")


def video_presets() -> list[str]:
    """The shipped presets ``prep crop`` takes (those without a ``kind``, or of kind ``video``)."""
    out = []
    for name in available_presets():
        try:
            if load_preset(name).get("kind", "video") == "video":
                out.append(name)
        except PrepError:
            continue
    return out


X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")


def _whole(v: Any) -> bool:
    """A whole number (an int, not a bool or a float such as 512.0)."""
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True)
class CropConfig:
    """Everything ``prep crop`` needs for one clip. Units: pixels, frames per second, fractions in [0, 1]."""

    preset: str = "default"
    layout: str = "flat"
    size: int = 512
    fps: float = 25.0
    mode: str = "track"  # fixed | track
    face_fraction: float = 0.5  # face-box side / window side
    face_fraction_range: tuple[float, float] = (0.3, 0.8)  # acceptable range, checked on the output
    face_y: float = 0.5  # face centre's height in the window (0 top, 1 bottom)
    pad: str = "edge"  # black | edge | mirror
    single_face: bool = False  # fail the clip when any analysed frame shows several faces
    min_presence: float = 0.5  # fail when the subject is in fewer analysed frames than this share
    max_upscale: float = 2.0  # warn when the face is enlarged more than this
    # fixed mode, sources of 1080p and up: the clip is encoded in the analysis's own decode with
    # the window a look at key frames places; that window is kept when within this share of the
    # side of the analysed one (the distance at which a fixed window warns that the face
    # wanders), else the clip is encoded again with the analysed window (0: no shared decode)
    window_tolerance: float = 0.05
    smoothing: float = 0.2  # track mode: Gaussian sigma of the window path, seconds
    detector: str = "auto"
    weights_dir: str | None = None
    score_threshold: float = 0.6
    detect_every: int = 2  # analyse every n-th output frame (positions are interpolated between)
    analysis_side: int = 640  # longer side of the decoded analysis frames
    face_px: int = 112  # the detector sees frames shrunk so the face is about this size
    crf: int = 18
    x264_preset: str = "medium"
    audio_bitrate: str = "192k"
    tiers: tuple[int, ...] = ()  # several output sizes, one sibling folder OUT/<size> each
    # real footage ([segment] in a preset): shots, face tracks and one clip per segment
    split: bool = False
    min_seconds: float = 2.0  # a segment shorter than this is rejected
    max_seconds: float = 0.0  # longer segments are cut into parts of this length (0: no limit)
    max_yaw: float = 45.0  # degrees; frames with the head turned further are cut out
    max_pitch: float = 30.0
    max_roll: float = 30.0
    segment_presence: float = 0.8  # share of a segment's analysed frames that must show its face
    person: Any = None  # prep.identity.Reference: the subject is this person (--person)
    group_by: str | None = None  # "person" (--split): segments sorted into OUT/person_NN/ by identity
    # who is speaking ([speech] in a preset; --speech): off | measure | require
    speech: str = "off"
    speech_min_speaking: float = 0.4  # share of frames where the face is the speaker
    speech_min_voiced: float = 0.3  # share of frames with a voice in the audio
    speech_min_sync: float = 1.85  # evidence that the mouth follows this voice
    speech_max_offset: float = 6.0  # frames at 25 fps (240 ms): a larger offset is out of sync
    speech_min_confidence: float = 0.5  # offset confidence below this: out of sync
    speech_weights: str | None = None  # folder with the Light-ASD checkpoint (decided on the driver)
    speech_missing: str | None = None  # decided on the driver: why the model cannot be had

    def __post_init__(self) -> None:
        problems = []
        whole = {k: getattr(self, k) for k in ("size", "detect_every", "analysis_side", "face_px", "crf")}
        for k, v in [*whole.items(), *(("tiers", t) for t in self.tiers)]:
            if not _whole(v):
                problems.append(f"{k} must be a whole number, got {v!r}")
        if problems:  # the checks below compare numbers
            raise PrepError(None, f"preset {self.preset}: " + "; ".join(problems))
        if not 16 <= self.size <= 4096 or self.size % 2:
            problems.append(f"size must be an even number of pixels from 16 to 4096, got {self.size}")
        if not 16 <= self.face_px <= 1024:
            problems.append(f"face_px must be 16 to 1024 pixels, got {self.face_px}")
        if not 64 <= self.analysis_side <= 8192:
            problems.append(f"analysis_side must be 64 to 8192 pixels, got {self.analysis_side}")
        if not 0 <= self.crf <= 51:
            problems.append(f"crf must be 0 to 51 (x264), got {self.crf}")
        if not 1 <= self.fps <= 240:
            problems.append(f"fps must be in [1, 240], got {self.fps}")
        if self.mode not in ("fixed", "track"):
            problems.append(f"mode must be fixed or track, got {self.mode!r}")
        if not 0.05 <= self.face_fraction <= 1:
            problems.append(f"face_fraction must be in [0.05, 1], got {self.face_fraction}")
        if len(self.face_fraction_range) != 2 or not 0 < self.face_fraction_range[0] <= self.face_fraction_range[1] <= 1:
            problems.append(f"face_fraction_range must be [low, high] with 0 < low <= high <= 1, got {list(self.face_fraction_range)}")
        if not 0 <= self.face_y <= 1:
            problems.append(f"face_y must be in [0, 1], got {self.face_y}")
        if self.pad not in ("black", "edge", "mirror"):
            problems.append(f"pad must be black, edge or mirror, got {self.pad!r}")
        if any(t < 16 or t % 2 for t in self.tiers):
            problems.append(f"tiers must be even sizes of at least 16, got {self.tiers}")
        if not 0 <= self.window_tolerance <= 0.25:
            problems.append(f"window_tolerance must be in [0, 0.25] (a share of the window's side), got {self.window_tolerance}")
        if self.detect_every < 1:
            problems.append("detect_every must be at least 1")
        if not 0 <= self.min_presence <= 1:
            problems.append("min_presence must be in [0, 1]")
        if self.min_seconds <= 0 or self.max_seconds < 0 or (self.max_seconds and self.max_seconds < self.min_seconds):
            problems.append(f"segments need min_seconds > 0 and max_seconds 0 or at least min_seconds, got {self.min_seconds}, {self.max_seconds}")
        if self.split and self.tiers and self.group_by:
            problems.append("--tiers and --group-by person cannot be combined yet: group once per size")
        if self.speech not in ("off", "measure", "require"):
            problems.append(f"speech must be off, measure or require, got {self.speech!r}")
        if not (0 <= self.speech_min_speaking <= 1 and 0 <= self.speech_min_voiced <= 1 and 0 <= self.speech_min_confidence <= 1):
            problems.append("speech shares and confidence (min_speaking, min_voiced, min_confidence) must be in [0, 1]")
        if not 0 <= self.speech_max_offset <= 7:
            problems.append(f"speech max_offset must be 0-7 frames (the search reaches 8), got {self.speech_max_offset}")
        if min(self.max_yaw, self.max_pitch, self.max_roll) <= 0:
            problems.append("pose limits (max_yaw, max_pitch, max_roll) must be positive degrees")
        if self.x264_preset not in X264_PRESETS:
            problems.append(f"x264_preset must be one of {', '.join(X264_PRESETS)}, got {self.x264_preset!r}")
        if not (isinstance(self.audio_bitrate, str) and re.fullmatch(r"\d+(\.\d+)?[kKmM]?", self.audio_bitrate)):
            problems.append(f"audio_bitrate must be like 192k, got {self.audio_bitrate!r}")
        for k in ("single_face", "split"):
            if not isinstance(getattr(self, k), bool):
                problems.append(f"{k} must be true or false, got {getattr(self, k)!r}")
        if self.smoothing < 0 or self.max_upscale <= 0:
            problems.append(f"smoothing must be at least 0 and max_upscale above 0, got {self.smoothing}, {self.max_upscale}")
        if problems:
            raise PrepError(None, f"preset {self.preset}: " + "; ".join(problems))

    @classmethod
    def resolve(cls, preset: str | None = None, **overrides: Any) -> "CropConfig":
        """Load ``preset`` (default ``default``), apply non-None ``overrides``, validate."""
        data = load_preset(preset or "default")
        kind = data.get("kind", "video")
        if kind != "video":
            raise PrepError(None, f"preset {data['name']} is a{'n' if kind[:1] in 'aeiou' else ''} {kind} preset, not one for prep crop (choose from {', '.join(video_presets())})")
        stray = sorted(set(data) - {"name", "kind", "description", "layout", "crop", "segment", "speech"})
        if stray:  # a misspelt table ([Crop]) would be left out without a word
            raise PrepError(None, f"preset {data['name']}: unknown table(s) or setting(s) {', '.join(stray)} (a crop preset has [crop], [segment] and [speech])")
        values: dict[str, Any] = {"preset": data["name"], "layout": data.get("layout", "flat")}
        values.update(data.get("crop", {}))
        values.update(data.get("segment", {}))
        values.update({("speech" if k == "mode" else f"speech_{k}"): v for k, v in data.get("speech", {}).items()})
        values.update({k: v for k, v in overrides.items() if v is not None})
        return from_dict(cls, values, data["name"])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def speech_config(self) -> Any:
        """The speech check's settings (:class:`prep.speech.track.SpeechConfig`)."""
        from .speech.track import SpeechConfig

        return SpeechConfig(self.speech, self.speech_min_speaking, self.speech_min_voiced, self.speech_min_sync, self.speech_max_offset, self.speech_min_confidence, weights_dir=self.speech_weights)


def from_dict(cls: type, values: dict[str, Any], source: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise PrepError(None, f"preset {source}: unknown setting(s) {', '.join(unknown)}")
    for k, v in list(values.items()):
        if isinstance(v, list):
            values[k] = tuple(v)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise PrepError(None, f"preset {source}: {exc}") from None
