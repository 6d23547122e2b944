"""Face detection behind one small interface: an image in, a list of :class:`Face` out.

Detectors are registered by name in :data:`DETECTORS`; :func:`create_detector` builds one
(``auto`` picks the best available and says why).
"""

from .face import DETECTOR_CHOICES, DETECTORS, Detector, Face, main_face
from .base import cached_detector, create_detector, resolve_detector

__all__ = ["Detector", "Face", "main_face", "create_detector", "cached_detector", "resolve_detector", "DETECTORS", "DETECTOR_CHOICES"]
