"""Head pose (yaw, pitch, roll in degrees) from a face's five landmarks.

The five points (eyes, nose tip, mouth corners) are matched to the same points of a generic
head with ``cv2.solvePnP`` under a plain pinhole camera. The generic head is in millimetres,
nose tip at the origin, x to the image's right, y down, z away from the camera: eye centres
62 mm apart and 37 mm above and 25 mm behind the nose tip, mouth corners 50 mm apart, 28 mm
below and 22 mm behind it (average adult proportions, rounded; see the README).

Conventions: yaw > 0 when the face turns towards the image's right, pitch > 0 when it looks
up, roll > 0 when the head tilts clockwise in the image. A frontal face gives about 0, 0, 0.
Faces whose landmarks were placed from the box (``Face.estimated_landmarks``, the HOG
detector) carry no pose: :func:`head_pose` returns ``None`` for them.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..detect import Face

MODEL = np.array(
    [
        [-31.0, -37.0, 25.0],  # right eye (image left)
        [31.0, -37.0, 25.0],  # left eye
        [0.0, 0.0, 0.0],  # nose tip
        [-25.0, 28.0, 22.0],  # right mouth corner
        [25.0, 28.0, 22.0],  # left mouth corner
    ],
    np.float64,
)


def head_pose(face: Face) -> tuple[float, float, float] | None:
    """``(yaw, pitch, roll)`` in degrees, or ``None`` when the landmarks are not measured."""
    if face.estimated_landmarks:
        return None
    pts = np.asarray(face.landmarks, np.float64).reshape(5, 2)
    # a camera with a normal lens (focal length about the face's distance scale) centred on the face
    f = 8.0 * face.size
    cx, cy = face.center
    cam = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1]], np.float64)
    ok, rvec, tvec = cv2.solvePnP(MODEL, pts, cam, None, flags=cv2.SOLVEPNP_EPNP)
    if not ok:
        return None
    ok, rvec, tvec = cv2.solvePnP(MODEL, pts, cam, None, rvec, tvec, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return None
    r, _ = cv2.Rodrigues(rvec)
    return euler(r)


def euler(r: np.ndarray) -> tuple[float, float, float]:
    """Yaw, pitch, roll (degrees, the conventions above) of a head rotation ``r`` (model to camera)."""
    # r = Rz(roll) @ Rx(-pitch) @ Ry(-yaw), camera axes x right, y down, z forward
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, r[2, 1]))))
    yaw = math.degrees(math.atan2(-r[2, 0], r[2, 2]))
    roll = math.degrees(math.atan2(-r[0, 1], r[1, 1]))
    return -yaw, -pitch, roll


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The rotation :func:`euler` reads back as ``(yaw, pitch, roll)`` (for tests and tools)."""
    y, p, r = (math.radians(v) for v in (-yaw, -pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def project(yaw: float, pitch: float, roll: float, size: float = 200.0, center: tuple[float, float] = (320.0, 240.0)) -> np.ndarray:
    """The generic head's five points seen at a pose, about ``size`` px wide (for tests)."""
    r = rotation(yaw, pitch, roll)
    f = 8.0 * size
    dist = f * 62.0 / (0.45 * size)  # eye distance about 0.45 of the face box
    cam = (MODEL @ r.T) + np.array([0.0, 0.0, dist])
    return np.stack([center[0] + f * cam[:, 0] / cam[:, 2], center[1] + f * cam[:, 1] / cam[:, 2]], axis=1).astype(np.float32)
