"""Model files: found in a weights folder, or downloaded once to a user cache; always sha256-checked.

Order of search: the ``weights_dir`` argument (``--weights-dir``), ``$PREP_WEIGHTS_DIR``, then
the user cache (``$PREP_CACHE_DIR``, else ``$XDG_CACHE_HOME/prep``, else ``~/.cache/prep``).
Only if none holds a good copy is the file downloaded, to a temporary name in the cache,
checked, and renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import PrepError
from ..fsutil import atomic_path


@dataclass(frozen=True)
class ModelFile:
    filename: str
    sha256: str
    url: str


YUNET_2023MAR = ModelFile(
    filename="face_detection_yunet_2023mar.onnx",
    sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
    url="https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx",
)


def cache_dir() -> Path:
    if os.environ.get("PREP_CACHE_DIR"):
        return Path(os.environ["PREP_CACHE_DIR"]) / "weights"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "prep" / "weights"


def search_dirs(weights_dir: str | Path | None = None) -> list[Path]:
    dirs = []
    if weights_dir:
        dirs.append(Path(weights_dir))
    if os.environ.get("PREP_WEIGHTS_DIR"):
        dirs.append(Path(os.environ["PREP_WEIGHTS_DIR"]))
    dirs.append(cache_dir())
    return dirs


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_local(model: ModelFile, weights_dir: str | Path | None = None) -> Path | None:
    """A verified local copy of ``model``, or None. A copy with the wrong hash in the cache
    (prep's own: damaged since) is removed, so it is downloaded again rather than trusted or
    silently replaced by another detector; one in a folder the user gave is an error, unless
    another folder holds a good copy."""
    bad = None
    for d in search_dirs(weights_dir):
        p = d / model.filename
        if p.is_file():
            if sha256_of(p) == model.sha256:
                return p
            if d == cache_dir():
                p.unlink(missing_ok=True)
            elif bad is None:
                bad = p
    if bad is not None:
        raise PrepError(bad, f"model file is corrupt or a different version (sha256 mismatch; expected {model.sha256[:12]}…)")
    return None


def download(model: ModelFile, dest_dir: Path | None = None, url: str | None = None, timeout: float = 30.0) -> Path:
    """Download ``model`` into ``dest_dir`` (the cache), verify its sha256, and return its path."""
    dest = (dest_dir or cache_dir()) / model.filename
    url = url or model.url
    try:
        with atomic_path(dest) as tmp:
            h = hashlib.sha256()
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
                for chunk in iter(lambda: resp.read(1 << 16), b""):
                    h.update(chunk)
                    out.write(chunk)
            if h.hexdigest() != model.sha256:
                raise PrepError(url, f"downloaded {model.filename} has the wrong sha256; not used")
    except PrepError:
        raise
    except OSError as exc:
        raise PrepError(url, f"download failed ({getattr(exc, 'reason', None) or exc})") from None
    return dest


def offline() -> bool:
    """``PREP_OFFLINE`` set to anything but empty, ``0``, ``false``, ``no`` or ``off``."""
    return os.environ.get("PREP_OFFLINE", "").strip().lower() not in ("", "0", "false", "no", "off")


def resolve(model: ModelFile, weights_dir: str | Path | None = None, allow_download: bool = True) -> Path:
    """Path of a verified copy of ``model``, downloading it to the cache if needed and allowed."""
    local = find_local(model, weights_dir)
    if local is not None:
        return local
    if not allow_download or offline():
        where = ", ".join(str(d) for d in search_dirs(weights_dir))
        raise PrepError(None, f"{model.filename} not found in {where} (offline; give --weights-dir or set PREP_WEIGHTS_DIR)")
    return download(model)
