"""albumentations, imported the way prep needs it: ``from .albu import A``.

- Without its version check: albumentations asks PyPI for a newer release on every import
  unless ``NO_ALBUMENTATIONS_UPDATE`` is set, which is a request from every worker of a run
  (prep runs offline; a setting the user made stays).
- Without its torch bridge: ``albumentations.pytorch`` imports torch (1.5 s of a worker's
  start where torch is installed, as it is beside most face models), and prep never hands
  albumentations a tensor. The bridge is kept out only while albumentations itself loads: a
  later ``import albumentations.pytorch`` works as usual.

Imported inside the functions that need it, so commands without augmentation start without
it; ``prep augment``'s pool workers get it from the fork server (``POOL_PRELOAD``).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
_blocked = "albumentations" not in sys.modules and "albumentations.pytorch" not in sys.modules
if _blocked:
    sys.modules["albumentations.pytorch"] = None  # type: ignore[assignment]  # its import fails, which albumentations allows
try:
    import albumentations as A  # noqa: E402
finally:
    if _blocked:
        sys.modules.pop("albumentations.pytorch", None)

__all__ = ["A"]
