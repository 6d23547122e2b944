"""Degradation models for sharp/degraded training pairs (see :mod:`prep.degrade.models`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import load_preset
from ..errors import PrepError
from .functional import to_float, to_uint8
from .models import MODELS

DEGRADATIONS = list(MODELS)


def load_params(name: str) -> dict[str, Any]:
    """The ``[degrade]`` table of the preset called ``name`` (a degradation preset)."""
    data = load_preset(name)
    p = dict(data.get("degrade", {}))
    if p.get("model") not in MODELS:
        raise PrepError(None, f"preset {name} is not a degradation preset (choose from {', '.join(DEGRADATIONS)})")
    return p


def degrade(hq: np.ndarray, rng: np.random.Generator, sf: int, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """``hq`` (``HxWx3 uint8 BGR``, H and W divisible by ``sf``) -> (target, lq, steps), both uint8."""
    if hq.shape[0] % sf or hq.shape[1] % sf:
        raise ValueError(f"image size {hq.shape[:2]} is not divisible by scale {sf}")
    target, lq, steps = MODELS[params["model"]](to_float(hq), rng, sf, params)
    return to_uint8(target), to_uint8(lq), steps
