"""Face detection behind one small interface: an image in, a list of :class:`Face` out.

Detectors are registered by name in :data:`DETECTORS`; :func:`create_detector` builds one
(``auto`` picks the best available and says why).
"""

from .base import Detector, Face, cached_detector, create_detector, resolve_detector, main_face, DETECTORS, DETECTOR_CHOICES

__all__ = ["Detector", "Face", "main_face", "create_detector", "cached_detector", "resolve_detector", "DETECTORS", "DETECTOR_CHOICES"]
