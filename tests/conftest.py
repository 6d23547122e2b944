"""Shared fixtures: the real data in ../shared/data (skipped with a reason when absent) and
small clips made here with the ffmpeg binary the project uses."""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PREP_SHARED_DATA", ROOT.parent / "shared" / "data"))
WEIGHTS = SHARED / "weights"
SAMPLE_CLIP = ROOT / "sample_data" / "astronaut_vertical.mp4"

needs_shared = pytest.mark.skipif(not (SHARED / "MANIFEST.csv").is_file(), reason=f"real test data not found at {SHARED}")
needs_yunet = pytest.mark.skipif(not WEIGHTS.is_dir(), reason=f"YuNet model not found in {WEIGHTS}")
# The same cases run with the embedded detector and with YuNet: decisions must not depend on it.
BOTH_DETECTORS = pytest.mark.parametrize("detector", ["hog", pytest.param("yunet", marks=needs_yunet)])
# Cases on the project's own clips, which CI's fresh pass runs too: there (no weights) "auto" is
# the embedded HOG, here YuNet. The two passes together run them with both detectors, neither
# repeating the other (HOG's cases on the shared data are BOTH_DETECTORS, in the first pass).
EITHER_DETECTOR = pytest.mark.parametrize("detector", ["auto"])


# Under `--dist loadscope` (make test) a module is one unit of work for one worker, and the
# modules are handed out in collection order: the longest first (seconds in a 2-worker run,
# 2026-12-01: about 110, 100, 100, 70, 65, 45, 30, 20), so the short ones fill in at the end
# instead of a long one starting last and running alone. xdist's own order (by number of
# tests) is turned off for that.
LONGEST_FIRST = ("test_split.py", "test_speech.py", "test_blur.py", "test_crop.py", "test_identity.py", "test_runner.py", "test_speech_cli.py", "test_onepass.py", "test_check.py")


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config, items):
    """The longest modules first (above; the order inside a module is kept). CI runs the suite
    twice (.ci/run); its second, fresh pass (no shared data, no weights, offline) skips what
    would only repeat the first: tests marked ``same_everywhere``, and the cases that ask for
    dlib's HOG by name (embedded: they run the same with or without weights, data or network;
    the fresh pass's own HOG path is ``auto`` falling back to it)."""
    rank = {name: k for k, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))
    if os.environ.get("PREP_CI_PASS") != "fresh":
        return
    skip = pytest.mark.skip(reason="CI's fresh pass: ran in the first pass, and needs no shared data, weights or network")
    for item in items:
        named_hog = getattr(getattr(item, "callspec", None), "params", {}).get("detector") == "hog"
        if item.get_closest_marker("same_everywhere") or named_hog:
            item.add_marker(skip)


# Encodes in this process use x264's ultrafast instead of the presets' medium: what the tests
# check (geometry, timing, audio, reports, bytes of one run against another) does not depend
# on x264's speed setting, and medium is most of a short crop's time. The presets' own encode
# still runs end to end where prep runs as a program of its own (tests/test_install.py's wheel,
# the subprocess runs of tests/test_runner.py), and test_x264_preset_reaches_the_encoder
# checks that the setting reaches ffmpeg. A test that names x264_preset keeps its own.
TEST_X264_PRESET = "ultrafast"


def _fast_encodes() -> None:
    from prep.config import CropConfig

    resolve = CropConfig.resolve.__func__

    def fast(cls, preset=None, **overrides):
        if overrides.get("x264_preset") is None:
            overrides["x264_preset"] = TEST_X264_PRESET
        return resolve(cls, preset, **overrides)

    CropConfig.resolve = classmethod(fast)


_fast_encodes()


def shared_videos() -> list[Path]:
    return sorted((SHARED / "videos").glob("*.mp4")) if (SHARED / "videos").is_dir() else []


def isolate_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory) -> None:
    """Tests never touch the user's cache or the network: weights come from shared/data."""
    monkeypatch.setenv("PREP_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("PREP_OFFLINE", "1")
    if WEIGHTS.is_dir():
        monkeypatch.setenv("PREP_WEIGHTS_DIR", str(WEIGHTS))
    else:
        monkeypatch.delenv("PREP_WEIGHTS_DIR", raising=False)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory):
    isolate_env(monkeypatch, tmp_path_factory)


@contextlib.contextmanager
def isolated_env(tmp_path_factory):
    """The same environment for a module or session fixture (they run before the per-test one)."""
    with pytest.MonkeyPatch.context() as mp:
        isolate_env(mp, tmp_path_factory)
        yield


def ffmpeg(*args: str) -> None:
    from prep.ffmpeg import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Variants of the sample clip with the properties phones and old cameras give:
    a rotation tag, non-square pixels, variable frame rate, no audio, an odd size."""
    d = tmp_path_factory.mktemp("clips")
    src = str(SAMPLE_CLIP)
    out = {"sample": SAMPLE_CLIP}
    # Its first 3 s, for the tests that only need a clip that crops (half the work of the sample's 6 s).
    out["short"] = d / "short.mp4"
    ffmpeg("-i", src, "-t", "3", "-c", "copy", str(out["short"]))
    # Landscape storage + a display rotation tag: what a phone writes for a vertical video.
    landscape = d / "landscape.mp4"
    ffmpeg("-i", src, "-t", "3", "-vf", "transpose=clock", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "copy", str(landscape))
    out["rotated"] = d / "rotated.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(landscape), "-c", "copy", str(out["rotated"]))
    # Non-square pixels: squeeze to 3/4 width and tag SAR 4:3 so it displays as before.
    out["sar"] = d / "sar.mp4"
    ffmpeg("-i", src, "-t", "3", "-vf", "scale=540:1280,setsar=4/3", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "copy", str(out["sar"]))
    # Variable frame rate: drop every third frame, keep timestamps.
    out["vfr"] = d / "vfr.mp4"
    ffmpeg("-i", src, "-t", "4", "-vf", "select='not(eq(mod(n\\,3)\\,2))'", "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "copy", str(out["vfr"]))
    # No audio, odd frame size.
    out["odd_noaudio"] = d / "odd_noaudio.mp4"
    ffmpeg("-i", src, "-t", "2", "-an", "-vf", "scale=361:641", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p", str(out["odd_noaudio"]))
    return out


def face_in(frame: np.ndarray):
    """The most confident YuNet face in a frame (tests' independent judge)."""
    return [f for f in _judge().detect(frame) if f.score >= 0.75]


@functools.lru_cache(maxsize=1)
def _judge():
    """The judge's detector, built (and its model file checked) once per test process."""
    from prep.detect import create_detector

    return create_detector("yunet", str(WEIGHTS) if WEIGHTS.is_dir() else None, max_side=None)


@pytest.fixture(scope="session")
def faces_dir(clips, tmp_path_factory) -> Path:
    """Eight 128 px face crops cut from the sample clip (already face-centred squares)."""
    import cv2

    from checks import frames_at

    d = tmp_path_factory.mktemp("ffhq_like")
    for k, img in enumerate(frames_at(clips["sample"], [0.3 + 0.7 * k for k in range(8)])):
        crop = img[250 : 250 + 400, 40 : 40 + 400]
        cv2.imwrite(str(d / f"{k:03d}.png"), cv2.resize(crop, (128, 128), interpolation=cv2.INTER_AREA))
    return d
