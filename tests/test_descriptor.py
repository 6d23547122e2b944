"""dlib's face descriptor network run in numpy (prep.descriptor) against dlib's own run of the
same file: the identity vectors, thresholds and clusters of prep[identity] rest on it."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SAMPLE_CLIP
from prep import identity

pytestmark = [
    pytest.mark.skipif(identity.unavailable() is not None, reason="prep[identity] not installed"),
    pytest.mark.same_everywhere,
]


def _chips() -> np.ndarray:
    """150 px RGB chips: the sample clip's face at three moments, its whole frame, noise, and
    the extremes (black, white)."""
    import cv2

    from prep.decode import iter_frames
    from prep.probe import probe_video

    frames = [f for i, f in enumerate(iter_frames(probe_video(str(SAMPLE_CLIP)))) if i in (0, 40, 80)]
    out = []
    for f in frames:
        h, w = f.shape[:2]
        face = f[int(0.2 * h) : int(0.2 * h) + w // 2, w // 4 : w // 4 + w // 2]  # about where the astronaut's face sits
        out.append(cv2.resize(face, (150, 150), interpolation=cv2.INTER_AREA)[:, :, ::-1])
    out.append(cv2.resize(frames[0], (150, 150), interpolation=cv2.INTER_AREA)[:, :, ::-1])
    out.append(np.random.default_rng(0).integers(0, 256, (150, 150, 3), dtype=np.uint8))
    out += [np.zeros((150, 150, 3), np.uint8), np.full((150, 150, 3), 255, np.uint8)]
    return np.ascontiguousarray(np.stack(out))


def test_numpy_network_gives_dlibs_descriptors():
    import dlib

    from prep.descriptor import DescriptorNet

    _, path = identity.model_paths()
    ours = DescriptorNet.load(path)
    theirs = dlib.face_recognition_model_v1(str(path))
    for chip in _chips():
        want = np.asarray(theirs.compute_face_descriptor(np.ascontiguousarray(chip)), np.float32)
        got = ours(chip[None])[0]
        assert np.abs(got - want).max() <= 1e-5, np.abs(got - want).max()  # float32 rounding: the vectors' norm is about 1.3
    # a batch gives each chip's own descriptor
    batch = _chips()[:3]
    np.testing.assert_allclose(ours(batch), np.concatenate([ours(c[None]) for c in batch]), atol=1e-6)


def test_a_file_that_is_not_the_network_is_refused_in_one_line(tmp_path):
    from prep.descriptor import DescriptorNet
    from prep.errors import PrepError

    shape_model, path = identity.model_paths()
    cut = tmp_path / "cut.dat"
    cut.write_bytes(path.read_bytes()[:-1000])
    for bad in (cut, shape_model):
        with pytest.raises(PrepError) as exc:
            DescriptorNet.load(bad)
        assert exc.value.path == str(bad) and "not dlib's face descriptor network" in str(exc.value)
        assert "\n" not in str(exc.value)
    with pytest.raises(ValueError, match="150, 150, 3"):
        DescriptorNet.load(path)(np.zeros((1, 112, 112, 3), np.uint8))
