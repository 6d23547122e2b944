"""``prep augment``: albumentations 2.x pipelines defined in ``presets/`` (see ``dfl``, ``pairs``).

A pipeline is built once per process from the preset; each output's random state is set
from (seed, file, copy), so the same seed gives the same bytes whatever the number of
workers. In ``pairs`` mode the sharp and the degraded image go through one call, as the
``image`` and an additional ``lq`` target, so both get the very same parameters.
"""

from __future__ import annotations

import random
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .config import load_preset
from .errors import PrepError
from .images import IMAGE_EXTENSIONS, read_image, write_png
from .layouts import PAIR_LAYOUTS
from .pairs import stable_int

# what a pool worker of `prep augment` imports: loaded once in the fork server (prep.runner)
POOL_PRELOAD = ("prep.albu",)


@dataclass(frozen=True)
class AugmentConfig:
    preset: str
    mode: str  # images | pairs
    transforms: tuple  # the preset's [[transform]] tables, frozen for pickling
    copies: int = 1
    seed: int = 0

    @classmethod
    def resolve(cls, preset: str, copies: int = 1, seed: int = 0) -> "AugmentConfig":
        data = load_preset(preset)
        if data.get("kind") != "augmentation":
            raise PrepError(None, f"preset {preset} is not an augmentation preset")
        if copies < 1:
            raise PrepError(None, "copies must be at least 1")
        cfg = cls(data["name"], data.get("mode", "images"), _freeze(data.get("transform", [])), copies, seed)
        build(cfg)  # validate now, at the edge
        return cfg


class _Table(tuple):
    """A TOML table, frozen (hashable and picklable, as the config must be), told apart from a
    list of pairs when it is thawed: albumentations 2 takes dicts too (``translate_percent =
    {x = [-0.1, 0.1], y = [0, 0]}``)."""


def _freeze(x: Any) -> Any:
    if isinstance(x, dict):
        return _Table(sorted((k, _freeze(v)) for k, v in x.items()))
    if isinstance(x, list):
        return tuple(_freeze(v) for v in x)
    return x


def _thaw(x: Any) -> Any:
    if isinstance(x, _Table):
        return {k: _thaw(v) for k, v in x}
    if isinstance(x, tuple):
        return tuple(_thaw(v) for v in x)
    return x


def _thaw_table(t: tuple) -> dict[str, Any]:
    return {k: v for k, v in t}


def _transform(spec: tuple, where: str) -> Any:
    from .albu import A

    d = _thaw_table(spec)
    name = d.pop("name", None)
    cls = getattr(A, str(name), None)
    if cls is None or not isinstance(cls, type):
        raise PrepError(None, f"{where}: unknown albumentations transform {name!r}")
    if "transforms" in d:
        d["transforms"] = [_transform(t, f"{where} > {name}") for t in d["transforms"]]
    args = {k: (v if k == "transforms" else _thaw(v)) for k, v in d.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # albumentations 2 only warns about arguments it ignores
        try:
            return cls(**args)
        except Exception as exc:  # noqa: BLE001 - pydantic validation or an ignored argument
            msg = " ".join(str(exc).split())
            raise PrepError(None, f"{where}: {name}: {msg[:300]}") from None


_built: dict[AugmentConfig, Any] = {}


def build(cfg: AugmentConfig) -> Any:
    """The albumentations Compose for ``cfg`` (cached per process)."""
    from .albu import A

    if cfg not in _built:
        ts = [_transform(t, f"preset {cfg.preset}") for t in cfg.transforms]
        extra = {"lq": "image"} if cfg.mode == "pairs" else None
        # (every output sets its own random state; the seed here only has to be one albumentations takes)
        _built[cfg] = A.Compose(ts, additional_targets=extra, seed=cfg.seed % 2**32, is_check_shapes=False)
    return _built[cfg]


def aug_name(stem: str, copy: int) -> str:
    """``photo__aug0.png``: where it came from, and which copy."""
    return f"{stem}__aug{copy}.png"


def _outputs(src: str, out: str, cfg: AugmentConfig, rel: str, name: str | None = None) -> list[tuple[int, Path, Path | None]]:
    stem = name or Path(src).stem
    outs = []
    for c in range(cfg.copies):
        file = aug_name(stem, c)
        if cfg.mode == "pairs":
            hq_dest, lq_dest = PAIR_LAYOUTS["gpen"].paths(out, rel, file)
        else:
            hq_dest, lq_dest = Path(out) / rel / file, None
        outs.append((c, hq_dest, lq_dest))
    return outs


def _skipped(src: str, outs: list[tuple[int, Path, Path | None]]) -> dict[str, Any]:
    return {"source": src, "status": "skipped", "outputs": [str(h) for _, h, _ in outs]}


def done(src: str, out: str, cfg: AugmentConfig, lq_src: str | None = None, rel: str = "", name: str | None = None) -> dict[str, Any] | None:
    """The driver's resume check (same arguments as :func:`augment_item`): the skipped record
    when every copy is written (each is written atomically, so a file that exists is whole)."""
    outs = _outputs(src, out, cfg, rel, name)
    return _skipped(src, outs) if all(h.is_file() and (lq is None or lq.is_file()) for _, h, lq in outs) else None


def augment_item(src: str, out: str, cfg: AugmentConfig, lq_src: str | None = None, rel: str = "", name: str | None = None) -> dict[str, Any]:
    """Unit of work: ``copies`` augmented versions of one image (or one pair; ``rel`` is then
    the split, and the outputs go where the ``gpen`` pair layout puts that split's pairs).
    ``name``: what the outputs are named after (and drawn for), when not the file's stem."""
    from .errors import error_record

    try:
        stem = name or Path(src).stem
        outs = _outputs(src, out, cfg, rel, name)
        if all(h.is_file() and (lq is None or lq.is_file()) for _, h, lq in outs):
            return _skipped(src, outs)
        img = read_image(src)
        lq = read_image(lq_src) if lq_src else None
        compose = build(cfg)
        written = []
        for c, hq_dest, lq_dest in outs:
            draw = stable_int("augment", cfg.seed, rel, stem, c)  # 64 bits: no two outputs share a draw by chance
            # one stream shared by the transforms, drawn in order (set_random_seed gives each
            # transform its own generator with the same seed: their p checks all came out alike)
            compose.set_random_state(np.random.default_rng(draw), random.Random(draw))
            if lq is None:
                write_png(hq_dest, compose(image=img)["image"])
            else:
                a, b = paired(compose, img, lq)
                write_png(hq_dest, a)
                write_png(lq_dest, b)
            written.append(str(hq_dest))
        return {"source": src, "status": "ok", "outputs": written}
    except Exception as exc:  # noqa: BLE001
        return error_record(src, exc)


def paired(compose: Any, hq: np.ndarray, lq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply one draw of ``compose`` to both members of a pair.

    Members of different sizes (super-resolution pairs) are brought to the same grid first:
    the LQ image is enlarged by pixel replication, transformed with the HQ image, and
    area-averaged back, which keeps it aligned to within the transform's own interpolation.
    """
    h, w = hq.shape[:2]
    f = h // lq.shape[0] if lq.shape[0] else 1
    if lq.shape[:2] != (h, w):
        if h % lq.shape[0] or w % lq.shape[1] or w // lq.shape[1] != f:
            raise PrepError(None, f"pair sizes {hq.shape[:2]} and {lq.shape[:2]} do not differ by a whole factor")
        big = cv2.resize(lq, (w, h), interpolation=cv2.INTER_NEAREST)
        r = compose(image=hq, lq=big)
        return r["image"], cv2.resize(r["lq"], (w // f, h // f), interpolation=cv2.INTER_AREA)
    r = compose(image=hq, lq=lq)
    return r["image"], r["lq"]


def plan(src: str | Path, cfg: AugmentConfig) -> list[tuple[str, str | None, str, str | None]]:
    """Items as (image, partner or None, relative output folder, name or None for the stem):
    files of one folder that differ only in their extension (``a.jpg``, ``a.png``) are named
    ``a__jpg``, ``a__png``, so that neither overwrites the other."""
    root = Path(src)
    if cfg.mode == "pairs":
        layout = PAIR_LAYOUTS["gpen"]
        sharp = root / layout.train_hq
        if not sharp.is_dir():
            raise PrepError(root, f"no {layout.train_hq} folder (the pairs preset augments a prep pairs set)")
        items = []
        for p in sorted(q for q in sharp.iterdir() if q.suffix.lower() in IMAGE_EXTENSIONS):
            _, partner = layout.paths(root, "train", p.name)
            items.append((str(p), str(partner), "train", None))
        return items
    files = [root] if root.is_file() else sorted(q for q in root.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS)
    rels = ["" if root.is_file() else str(f.parent.relative_to(root)) for f in files]
    taken = Counter((rel, f.stem) for rel, f in zip(rels, files))
    return [(str(f), None, rel, f"{f.stem}__{f.suffix.lstrip('.').lower()}" if taken[(rel, f.stem)] > 1 else None) for f, rel in zip(files, rels)]


def carry_basicsr_options(src: str | Path, out: str | Path) -> Path | None:
    """An augmented pairs set of a ``--layout basicsr`` set gets its own ``basicsr_options.yml``:
    the source's, with the training folders pointing at the augmented pairs and validation left
    on the source's own (unaugmented) val pairs. ``None`` when the source has no options file."""
    import yaml

    from .fsutil import atomic_path

    given = Path(src) / "basicsr_options.yml"
    if not given.is_file():
        return None
    try:
        doc = yaml.safe_load(given.read_text())
        train = doc["datasets"]["train"]
    except (yaml.YAMLError, TypeError, KeyError) as exc:
        raise PrepError(given, f"cannot read the BasicSR options ({type(exc).__name__}: {exc})") from None
    layout = PAIR_LAYOUTS["gpen"]
    root = Path(out).resolve()
    train["dataroot_gt"], train["dataroot_lq"] = str(root / layout.train_hq), str(root / str(layout.train_lq))
    dest = root / "basicsr_options.yml"
    with atomic_path(dest) as tmp:
        tmp.write_text(f"# Written by prep augment from {given.resolve()}: training on the augmented pairs, validation on the source's val pairs.\n" + yaml.safe_dump(doc, sort_keys=False))
    return dest


SETTINGS = ".prep/augment.json"  # in OUT: what its augmentations were made with


def settings_of(cfg: AugmentConfig) -> dict[str, Any]:
    """What shapes an augmented file's bytes (the number of copies only adds or leaves out files)."""
    import json

    return json.loads(json.dumps({"preset": cfg.preset, "mode": cfg.mode, "transforms": _thaw(cfg.transforms), "seed": cfg.seed}, default=str))


def claim_output(out: str | Path, cfg: AugmentConfig) -> None:
    """Record in ``OUT`` the settings its augmentations are made with; refuse an ``OUT`` whose
    augmentations were made with others (a finished file is skipped on a rerun, so it would stay
    as it was while the run reported the new settings)."""
    import json

    from .fsutil import write_json

    path = Path(out) / SETTINGS
    mine = settings_of(cfg)
    try:
        theirs = json.loads(path.read_text())
    except (OSError, ValueError):
        theirs = None
    if theirs is not None and theirs != mine:
        raise PrepError(out, f"holds augmentations made with other settings (preset {theirs.get('preset')}, seed {theirs.get('seed')}): give another -o, or remove them first")
    if theirs is None and any(Path(out).rglob("*__aug[0-9]*.png")):  # made before the settings were recorded
        raise PrepError(out, "holds augmentations whose settings were not recorded (made by an earlier prep): give another -o, or remove them first")
    if theirs is None:
        write_json(path, mine)

