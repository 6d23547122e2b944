"""``prep check``: validate a dataset before a GPU is spent on it.

:func:`check` guesses the layout when not told, runs the checks that layout needs and returns
every problem with its file and its fix. Errors fail the check; warnings do not.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import PrepError
from .images import IMAGE_EXTENSIONS
from .layouts import PAIR_LAYOUTS, VIDEO_LAYOUTS

# Video layouts: size, fps, face box / side range, minimum useful duration (s), faces per frame.
VIDEO_RULES: dict[str, dict[str, Any]] = {
    # GeneFace++: 512x512 at 25 fps (its guide); 1-5 minutes work (its authors, GeneFace++ issue #25)
    "geneface": {"size": 512, "fps": 25, "face": (0.35, 0.7), "min_s": 60, "single_face": False, "audio": True},
    # Hallo: square, face 50-70% of the image, one face (its README); 25 fps frames
    "hallo": {"size": 512, "fps": 25, "face": (0.5, 0.7), "min_s": 0, "single_face": True, "audio": True},
    # prep crop's own flat folder (the default and latentsync presets): any square size, 25 fps,
    # the face within the widest of the presets' ranges
    "flat": {"size": None, "fps": 25, "face": (0.3, 0.8), "min_s": 0, "single_face": False, "audio": True},
}
SAMPLED_FRAMES = 8
PRESET_OF = {"flat": "default"}  # the preset that writes a layout, where not named after it
# Pair layouts whose trainer reads every file of its folders, images or not
READS_EVERY_FILE = {
    "basicsr": "BasicSR's PairedImageDataset lists every file that does not start with a dot and looks for its partner",
    "gpen-native": "GPEN's train_simple.py reads every *.* file of its folders",
}


@dataclass
class Problem:
    level: str  # error | warning
    file: str
    problem: str
    fix: str


@dataclass
class CheckReport:
    path: str
    layout: str
    problems: list[Problem] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, level: str, file: str | Path, problem: str, fix: str) -> None:
        self.problems.append(Problem(level, str(file), problem, fix))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "layout": self.layout, "ok": not self.errors, "errors": len(self.errors), "warnings": len(self.warnings), "facts": self.facts, "problems": [asdict(p) for p in self.problems]}


def guess_layout(root: Path) -> str:
    if (root / VIDEO_LAYOUTS["geneface"].folder).is_dir():
        return "geneface"
    if (root / "workspace" / "data_src").is_dir() or (root / "data_src").is_dir():
        return "dfl"
    if (root / VIDEO_LAYOUTS["hallo"].folder).is_dir():
        return "hallo"
    if (root / "train" / "sharp").is_dir():
        return "basicsr" if (root / "basicsr_options.yml").is_file() else "gpen"
    if (root / "val" / "hq").is_dir() or ((root / "train").is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in (root / "train").iterdir())):
        return "gpen-native"
    if any(p.suffix == ".mp4" for p in root.iterdir()):
        return "flat"
    raise PrepError(root, "cannot tell the layout (no data/raw/videos, videos, train/sharp, val/hq or workspace/data_src, no .mp4 in it); give --layout")


def check(path: str | Path, layout: str | None = None, detector: Any = None) -> CheckReport:
    root = Path(path)
    if not root.is_dir():
        raise PrepError(root, "not a folder")
    layout = layout or guess_layout(root)
    rep = CheckReport(str(root), layout)
    if layout in VIDEO_RULES:
        check_videos(root / VIDEO_LAYOUTS[layout].folder, VIDEO_RULES[layout], rep, detector)
    elif layout in PAIR_LAYOUTS:
        check_pairs(root, layout, rep)
    elif layout == "dfl":
        ws = root / "workspace" if (root / "workspace").is_dir() else root
        sides = {side: sorted(p for p in (ws / side).glob("*") if p.suffix.lower() in IMAGE_EXTENSIONS) if (ws / side).is_dir() else [] for side in ("data_src", "data_dst")}
        for side, frames in sides.items():
            if frames:
                check_images(frames, rep, f"{side} frames")
            else:  # DeepFaceLab trains on both: neither is an error, one missing so far a warning
                flag = "--dst " if side == "data_dst" else ""
                rep.add("warning" if any(sides.values()) else "error", ws / side, "no frames", f"extract them: prep frames VIDEO -o {ws.parent if ws.name == 'workspace' else ws} --layout dfl {flag}".rstrip())
    else:
        raise PrepError(None, f"unknown layout '{layout}'")
    return rep


# ---- videos -----------------------------------------------------------------------------------


def check_videos(folder: Path, rules: dict[str, Any], rep: CheckReport, detector: Any) -> None:
    from .decode import iter_frames
    from .probe import VIDEO_EXTENSIONS, probe_video

    found = sorted(p for p in folder.glob("*") if p.suffix.lower() in VIDEO_EXTENSIONS) if folder.is_dir() else []
    only_mp4 = rep.layout in ("geneface", "hallo")  # Hallo keeps suffix == ".mp4"; GeneFace++ opens <id>.mp4
    vids = [p for p in found if p.suffix == ".mp4" or not only_mp4]
    for p in found if only_mp4 else ():
        if p.suffix != ".mp4":
            rep.add("error", p, f"{rep.layout} reads only .mp4 files: this one would be skipped without a word", f"prep crop {p.name} --preset {rep.layout} (writes .mp4)")
    rep.facts["videos"] = len(vids)
    if not vids:
        rep.add("error", folder, "no videos", f"put the clips in {folder} (prep crop --preset {PRESET_OF.get(rep.layout, rep.layout)} does)")
        return
    if detector is None:
        from .detect import create_detector

        detector = create_detector("auto")
    elif callable(detector) and not hasattr(detector, "detect"):  # built only now that a video set needs it
        detector = detector()
    size, fps = rules["size"], rules["fps"]
    for v in vids:
        try:
            info = probe_video(v)
        except PrepError as exc:
            rep.add("error", v, exc.problem, "re-encode or remove the file")
            continue
        fix_crop = f"prep crop {v.name} --preset {PRESET_OF.get(rep.layout, rep.layout)}"
        if info.display_width != info.display_height:
            rep.add("error", v, f"not square: {info.display_width}x{info.display_height}", f"{fix_crop} (never stretch it)")
        elif size is not None and info.display_width != size:
            rep.add("error", v, f"{info.display_width}x{info.display_height}, the layout needs {size}x{size}", fix_crop)
        if info.sar != 1:
            rep.add("error", v, f"non-square pixels (SAR {info.sar})", fix_crop)
        if info.vfr:
            rep.add("error", v, f"variable frame rate (average {info.fps:g} fps)", fix_crop)
        if abs(info.fps - fps) > 0.01:
            rep.add("error", v, f"{info.fps:g} fps, the layout needs {fps} fps (such clips are dropped or misaligned with their audio)", fix_crop)
        if rules["audio"] and not info.has_audio:
            rep.add("error", v, "no audio track", "use a clip with its sound; the trainer learns from audio")
        elif rules["audio"]:
            check_voice(v, info, rep)
        if info.duration < rules["min_s"]:
            rep.add("warning", v, f"only {info.duration:.0f} s long; {rep.layout} works best with at least {rules['min_s']} s (its authors: 1-5 minutes)", "use a longer clip")
        n = info.frame_count
        want = {int((k + 0.5) * n / SAMPLED_FRAMES) for k in range(SAMPLED_FRAMES)}
        counts, scales = [], []
        try:
            for i, frame in enumerate(iter_frames(info, None, max_side=640)):
                if i in want:
                    faces = [f for f in detector.detect(frame) if f.score >= 0.75]
                    counts.append((i, len(faces)))
                    if faces:
                        scales.append(max(f.size for f in faces) / max(frame.shape[:2]))
        except PrepError as exc:  # it probes but does not decode: this clip's problem, the others are checked
            rep.add("error", v, exc.problem, "re-encode it or use another clip")
            continue
        none = [i for i, c in counts if c == 0]
        many = [i for i, c in counts if c > 1]
        if none:
            rep.add("error", v, f"no face in sampled frames {none}", "cut those parts out or use another clip (a sample without a face gives NaN losses)")
        if many:
            rep.add("error" if rules["single_face"] else "warning", v, f"several faces in sampled frames {many}", "crop to one person or use another clip")
        if scales:
            lo, hi = rules["face"]
            med = float(np.median(scales))
            if not lo <= med <= hi:
                rep.add("error" if rules["single_face"] else "warning", v, f"face box is {med:.0%} of the side, the layout wants {lo:.0%}-{hi:.0%}", fix_crop)


def voiced_share(info: Any) -> float:
    """The share of a clip's frames with a voice in its audio (WebRTC's VAD on 16 kHz mono;
    audio only: no video decode, no speech model). ``info``: a probed clip with audio."""
    from .speech.audio import read_pcm
    from .speech.vad import voiced_frames

    fps = info.fps or 25.0
    n = max(1, int(info.frame_count or round(info.duration * fps)))
    return float(voiced_frames(read_pcm(info, fps, 0, n), fps, n).mean())


def check_voice(v: Path, info: Any, rep: CheckReport, min_voiced: float | None = None) -> None:
    """An audio-driven trainer learns the face from the voice: a clip without one is silent."""
    if min_voiced is None:
        from .config import CropConfig

        min_voiced = CropConfig.speech_min_voiced
    try:
        share = voiced_share(info)
    except PrepError as exc:
        rep.add("error", v, f"audio does not decode ({exc.problem})", "re-encode the clip's audio or remove the file")
        return
    rep.facts["silent_videos"] = rep.facts.get("silent_videos", 0) + (share < min_voiced)
    if share < min_voiced:
        rep.add("error", v, f"silent: a voice in {share:.0%} of the frames (at least {min_voiced:.0%} needed): silence, music or noise", "use a clip where the person speaks (prep crop --speech require keeps only those)")


# ---- images and pairs ---------------------------------------------------------------------


def _load(path: Path, rep: CheckReport) -> np.ndarray | None:
    """Decode one image and report what a trainer would trip over. Returns it as read."""
    if path.stat().st_size == 0:
        rep.add("error", path, "empty file (0 bytes)", "remove it or write it again")
        return None
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        rep.add("error", path, "does not decode", "remove it or write it again")
        return None
    if img.dtype.kind == "f":
        if not np.isfinite(img).all():
            rep.add("error", path, "NaN or infinite values", "write it again as 8-bit PNG")
        else:
            rep.add("error", path, f"floating-point image ({img.dtype})", "write it as 8-bit PNG")
        return None
    if img.dtype != np.uint8:
        rep.add("error", path, f"{img.dtype.itemsize * 8}-bit image; trainers expect 8-bit", "convert to 8-bit")
    if img.ndim == 2:
        rep.add("warning", path, "greyscale (one channel); trainers read 3-channel RGB", "convert to RGB if the trainer does not")
    elif img.shape[2] == 4:
        rep.add("error", path, "has an alpha channel (RGBA)", "drop the alpha channel")
    x = img.astype(np.float64) / (255.0 if img.dtype == np.uint8 else 65535.0)
    if not np.isfinite(x).all():
        rep.add("error", path, "NaN or infinite values after conversion to float", "write it again")
    if float(x.std()) < 1e-3:
        rep.add("error", path, "constant image (one colour)", "remove it")
    elif float(x.mean()) < 0.03:
        rep.add("error", path, f"near-black image (mean {x.mean() * 255:.1f} of 255)", "remove it")
    return img


def check_images(files: list[Path], rep: CheckReport, what: str) -> dict[str, np.ndarray]:
    rep.facts[what] = len(files)
    return {str(f): img for f in files if (img := _load(f, rep)) is not None}


def _digest(img: np.ndarray) -> str:
    return hashlib.blake2b(img.tobytes() + str(img.shape).encode(), digest_size=16).hexdigest()


def check_pairs(root: Path, layout_name: str, rep: CheckReport) -> None:
    layout = PAIR_LAYOUTS[layout_name]
    scale = _scale_of(root, rep)
    if scale is None:
        return
    digests: dict[str, dict[str, str]] = {}
    roots = _basicsr_roots(root) if layout_name == "basicsr" else {}
    for split in ("train", "val"):
        hq_dir = root / (layout.train_hq if split == "train" else layout.val_hq)
        lq_rel = layout.train_lq if split == "train" else layout.val_lq
        lq_dir = root / lq_rel if lq_rel else None
        if split in roots:  # the folders BasicSR's options name (an augmented set validates on its source's val pairs)
            hq_dir, lq_dir = roots[split]
            lq_rel = str(lq_dir)
        hq_files = sorted(p for p in hq_dir.glob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS) if hq_dir.is_dir() else []
        rep.facts[f"{split}_pairs" if lq_dir else f"{split}_images"] = len(hq_files)
        if layout_name in READS_EVERY_FILE:  # a stray file is counted as an image, and its pair is looked for
            for d in (hq_dir, lq_dir):
                for p in sorted(d.glob("*")) if d is not None and d.is_dir() else []:
                    if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in IMAGE_EXTENSIONS:
                        rep.add("error", p, f"not an image: {READS_EVERY_FILE[layout_name]}", "move it out of the folder")
        if not hq_files:
            # GPEN's own trainer validates from its first step and divides by the number of val
            # images; BasicSR's options name the val folders, and a missing one stops it
            fatal = split == "train" or layout_name in READS_EVERY_FILE
            rep.add("error" if fatal else "warning", hq_dir, f"no {split} images" + (f": {layout_name} fails without them" if fatal and split == "val" else ""),
                    "run prep pairs" if split == "train" else "keep a validation set (a larger --val-fraction, or more photos)")
            continue
        seen: dict[str, str] = {}
        for hq in hq_files:
            img = _load(hq, rep)
            if img is not None:
                seen[_digest(img)] = str(hq)
            if lq_dir is None:
                continue
            lq = lq_dir / hq.name
            if not lq.is_file():
                same_stem = [p.name for p in lq_dir.glob(hq.stem + ".*")] if lq_dir.is_dir() else []
                why = f"its partner {lq_rel}/{hq.name} is missing" + (f" (found {same_stem[0]}: extensions must match)" if same_stem else "")
                rep.add("error", hq, why, "pairs must share name and extension; run prep pairs again")
                continue
            low = _load(lq, rep)
            if img is not None and low is not None:
                h, w = img.shape[:2]
                if low.shape[:2] != (h // scale, w // scale) or h % scale or w % scale:
                    rep.add("error", lq, f"{low.shape[1]}x{low.shape[0]} does not match {w}x{h} at scale {scale}", "regenerate the pair")
        if lq_dir is not None and lq_dir.is_dir():
            orphans = sorted({p.name for p in lq_dir.glob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS} - {p.name for p in hq_files})  # .DS_Store, Thumbs.db: not pairs
            for name in orphans:
                rep.add("error", lq_dir / name, "degraded image without a sharp partner", "remove it or regenerate the pair")
        digests[split] = seen
    for d, path in digests.get("val", {}).items():
        if d in digests.get("train", {}):
            rep.add("error", path, f"the same image is in train ({Path(digests['train'][d]).name})", "remove it from one side: validation must not see training images")


def _basicsr_roots(root: Path) -> dict[str, tuple[Path, Path]]:
    """``split -> (gt folder, lq folder)`` as ``basicsr_options.yml`` names them (relative paths
    from the set's folder), for the splits it names."""
    import yaml

    try:
        sets = yaml.safe_load((root / "basicsr_options.yml").read_text())["datasets"]
        return {k: (root / sets[k]["dataroot_gt"], root / sets[k]["dataroot_lq"]) for k in ("train", "val") if k in sets}
    except (OSError, yaml.YAMLError, TypeError, KeyError):  # damaged options are reported by _scale_of
        return {}


def _scale_of(root: Path, rep: CheckReport) -> int | None:
    """The pairs' scale, from BasicSR's options, prep's degradation records or the first pair;
    ``None`` (and an error in ``rep``) when the file that states it is damaged."""
    opts = root / "basicsr_options.yml"
    if opts.is_file():
        import yaml

        try:
            doc = yaml.safe_load(opts.read_text())
            return _valid_scale(doc.get("scale", 1) if isinstance(doc, dict) else 1, opts, rep)
        except yaml.YAMLError as exc:
            rep.add("error", opts, f"not valid YAML ({str(exc).splitlines()[0]})", "write it again (prep pairs --layout basicsr does)")
            return None
    deg = root / "degradations.jsonl"
    if deg.is_file():
        import json

        with deg.open() as f:  # the first record that says (gpen-native's train records have no LQ image, no scale)
            for n, line in enumerate(f, 1):
                try:
                    rec = json.loads(line) if line.strip() else {}
                except json.JSONDecodeError as exc:
                    rep.add("error", deg, f"line {n} is not JSON ({exc.msg})", "write it again (prep pairs does)")
                    return None
                if isinstance(rec, dict) and "scale" in rec:
                    return _valid_scale(rec["scale"], deg, rep)
    return _infer_scale(root)


def _valid_scale(value: Any, where: Path, rep: CheckReport) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    rep.add("error", where, f"scale {value!r} is not a whole number of at least 1", "write it again (prep pairs does)")
    return None


def _infer_scale(root: Path) -> int:
    for hq_dir, lq_dir in (("train/sharp", "train/blurry"), ("val/hq", "val/lq"), ("val/sharp", "val/blurry")):
        for hq in sorted((root / hq_dir).glob("*.png"))[:1]:
            lq = root / lq_dir / hq.name
            a, b = cv2.imread(str(hq), cv2.IMREAD_UNCHANGED), cv2.imread(str(lq), cv2.IMREAD_UNCHANGED)
            if a is not None and b is not None and b.shape[0] and a.shape[0] % b.shape[0] == 0:
                return a.shape[0] // b.shape[0]
    return 1
