"""End-to-end crops, judged independently: PyAV reads the output, YuNet finds the face again."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from prep.config import CropConfig
from prep.crop import crop_video
from prep.probe import probe_video

from checks import eye_mouth_ratio, frames_at, stream_facts
from conftest import EITHER_DETECTOR, WEIGHTS, face_in, ffmpeg, needs_shared, shared_videos

SAMPLES = 8  # output frames judged per clip


def check_output(rec: dict, cfg: CropConfig, src_info, per_frame_centre: bool) -> dict:
    """Assert everything `prep crop` promises about one output; return measurements."""
    assert rec["status"] == "ok", rec.get("message")
    out = rec["output"]
    facts = stream_facts(out)
    assert (facts["width"], facts["height"]) == (cfg.size, cfg.size)
    assert facts["sar"] == 1 and facts["codec"] == "h264" and facts["pix_fmt"] == "yuv420p"
    info = probe_video(out)
    assert info.fps == pytest.approx(cfg.fps, abs=0.01) and not info.vfr
    frame = 1.0 / cfg.fps
    # duration kept, audio present iff the source has it, and in sync with the video
    assert abs(info.duration - src_info.duration) <= frame + 1e-6, (info.duration, src_info.duration)
    assert info.has_audio == src_info.has_audio
    if info.has_audio:
        assert abs(info.audio_duration - info.duration) <= frame, (info.audio_duration, info.duration)
        assert abs(info.audio_start - info.start_time) <= frame
    # the face: one, centred, at the preset's scale, not stretched
    n = info.frame_count
    index = [int((k + 0.5) * n / SAMPLES) for k in range(SAMPLES)]
    times = [i / cfg.fps for i in index]
    offsets, scales, counts = [], [], []
    for img in frames_at(out, times):
        faces = face_in(img)
        counts.append(len(faces))
        if not faces:
            continue
        f = max(faces, key=lambda q: q.size)
        cx, cy = f.center
        offsets.append(max(abs(cx - cfg.size / 2), abs(cy - cfg.face_y * cfg.size)) / cfg.size)
        scales.append(f.size / cfg.size)
    assert counts.count(1) >= SAMPLES - 1, f"faces per sampled frame: {counts}"
    offsets = np.array(offsets)
    if per_frame_centre:
        assert np.mean(offsets <= 0.05) >= 0.85, f"centre offsets {np.round(offsets, 3)}"
        assert np.median(offsets) <= 0.05, f"centre offsets {np.round(offsets, 3)}"
    elif rec["face_drift"] <= 0.05:
        assert np.median(offsets) <= 0.05, f"centre offsets {np.round(offsets, 3)}"
    else:  # a fixed window cannot centre a face that wanders: it must say so
        assert any("--mode track" in w for w in rec["warnings"])
    lo, hi = cfg.face_fraction_range
    assert lo <= np.median(scales) <= hi
    if src_info.rotation == 0:
        change = shape_change(rec, src_info, out, index, cfg)
        assert abs(change) < 0.03, f"face shape changed by {change:+.1%}"
    return {"offsets": offsets, "scales": scales}


def shape_change(rec: dict, src_info, out: str, index: list[int], cfg: CropConfig) -> float:
    """Relative change of the eye-distance / eye-to-mouth ratio between the output and a
    reference crop made here from the source's stored frames with cv2: pixels made square by
    the SAR, the reported window cut out, scaled to the output size. YuNet's landmark ratio
    drifts with face scale and framing (10-20% on the same face), so both sides are judged
    at identical framing; what remains is any stretch prep introduced."""
    sar = float(src_info.sar)
    windows = rec["window"].get("per_frame") or [[rec["window"]["x"], rec["window"]["y"], rec["window"]["side"]]]
    times = [i / cfg.fps for i in index]
    ours, ref = [], []
    for i, src_img, out_img in zip(index, frames_at(src_info.path, times), frames_at(out, times)):
        if sar != 1:
            src_img = cv2.resize(src_img, (round(src_img.shape[1] * sar), src_img.shape[0]), interpolation=cv2.INTER_AREA)
        x, y, side = windows[min(i, len(windows) - 1)]
        s = cfg.size / side
        m = np.array([[s, 0, (0.5 - x) * s - 0.5], [0, s, (0.5 - y) * s - 0.5]])
        ref_img = cv2.warpAffine(src_img, m, (cfg.size, cfg.size), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        a, b = face_in(out_img), face_in(ref_img)
        if a and b:
            ours.append(eye_mouth_ratio(max(a, key=lambda q: q.size)))
            ref.append(eye_mouth_ratio(max(b, key=lambda q: q.size)))
    assert len(ours) >= SAMPLES // 2
    return float(np.median(np.array(ours) / np.array(ref)) - 1)


needs_yunet = pytest.mark.skipif(not WEIGHTS.is_dir(), reason="YuNet model not found in shared/data/weights")


@needs_yunet
@pytest.mark.parametrize("name", ["sample", "rotated", "sar", "vfr", "odd_noaudio"])
def test_crop_awkward_inputs(clips, tmp_path, name):
    cfg = CropConfig.resolve("default")
    rec = crop_video(clips[name], tmp_path, cfg)
    check_output(rec, cfg, probe_video(clips[name]), per_frame_centre=True)
    assert rec["source_info"]["vfr"] == (name == "vfr")
    if name == "rotated":  # the output is upright
        img = frames_at(rec["output"], [1.0])[0]
        (face,) = face_in(img)
        dx, dy = face.landmarks[1] - face.landmarks[0]  # eye to eye
        assert abs(dx) > 3 * abs(dy) and dx > 0  # eyes level, and not upside down
        assert face.landmarks[3][1] > face.landmarks[0][1]  # mouth below the eyes


def test_hog_fallback_needs_no_download(clips, tmp_path, monkeypatch):
    monkeypatch.delenv("PREP_WEIGHTS_DIR", raising=False)  # offline, no model anywhere
    cfg = CropConfig.resolve("default", detector="auto")
    rec = crop_video(clips["odd_noaudio"], tmp_path, cfg)
    assert rec["status"] == "ok", rec.get("message")
    assert rec["detector"]["name"] == "hog"
    assert "yunet unavailable" in rec["detector"]["note"]


def test_hog_keeps_the_score_threshold_as_yunet_does(clips):
    """dlib's HOG applies the threshold as YuNet does, to each search's faces: they score 0.73
    or more (its own decision margin squashed), so the default 0.6 keeps every one, and a
    threshold no face reaches leaves none."""
    from prep.detect import create_detector

    img = frames_at(clips["sample"], [2.0])[0]
    assert len(create_detector("hog", None, max_side=960).detect(img)) == 1
    assert create_detector("hog", None, max_side=960, score_threshold=0.999).detect(img) == []


@needs_yunet
def test_resume_skips_finished_clip_and_redoes_changed_settings(clips, tmp_path):
    cfg = CropConfig.resolve("default", size=128)
    first = crop_video(clips["odd_noaudio"], tmp_path, cfg)
    mtime = (tmp_path / "odd_noaudio.mp4").stat().st_mtime_ns
    again = crop_video(clips["odd_noaudio"], tmp_path, cfg)
    assert again["status"] == "skipped" and (tmp_path / "odd_noaudio.mp4").stat().st_mtime_ns == mtime
    changed = crop_video(clips["odd_noaudio"], tmp_path, CropConfig.resolve("default", size=256))
    assert changed["status"] == "ok" and first["config_key"] != changed["config_key"]


@needs_yunet
def test_x264_preset_reaches_the_encoder(clips, tmp_path):
    """The presets encode with x264's medium; the tests' ultrafast (tests/conftest.py) and any
    setting reach the encoder, as its own options string in the stream says."""
    import dataclasses

    assert {f.name: f.default for f in dataclasses.fields(CropConfig)}["x264_preset"] == "medium"
    for setting, says in (("medium", b"subme=7 "), (None, b"subme=0 ")):  # None: this suite's default
        rec = crop_video(clips["odd_noaudio"], tmp_path / str(setting), CropConfig.resolve("default", size=64, x264_preset=setting))
        assert says in Path(rec["output"]).read_bytes()[:1 << 16], setting


@needs_yunet
def test_no_temporary_files_left(clips, tmp_path):
    crop_video(clips["odd_noaudio"], tmp_path, CropConfig.resolve("default", size=128))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd_noaudio.json", "odd_noaudio.mp4"]


# ---- every real clip -------------------------------------------------------------------

REAL = [p.name for p in shared_videos()] or ["(none)"]
EXCERPT = 3.0  # s of each real clip: stream-copied, so codec, pixel aspect, rotation and timing stay the source's


@pytest.fixture(scope="module")
def excerpts(tmp_path_factory) -> dict[str, Path]:
    """The first seconds of every shared clip, cut without re-encoding (a keyframe starts each)."""
    from conftest import SHARED

    d = tmp_path_factory.mktemp("excerpts")
    out = {}
    for name in REAL:
        if (SHARED / "videos" / name).is_file():
            out[name] = d / name
            ffmpeg("-i", str(SHARED / "videos" / name), "-t", f"{EXCERPT}", "-map", "0", "-c", "copy", str(out[name]))
    return out


# every clip through the moving window (default); the fixed window (geneface: encoded in the analysis's decode) on
# the clips whose stream is unusual: non-square pixels, 30 fps HEVC, variable frame rate
FIXED_ON = ("livep_d9_512x480_sar15x16.mp4", "latentsync_demo3_1080x1920_30fps_hevc.mp4", "videoretalking_1_700x700_vfr.mp4")


@needs_shared
@needs_yunet
@pytest.mark.parametrize("name, preset", [(n, "default") for n in REAL] + [(n, "geneface") for n in REAL if n in FIXED_ON])
def test_real_clips(tmp_path, name, preset, excerpts):
    src = excerpts[name]
    cfg = CropConfig.resolve(preset, speech="off")  # geometry on every clip, speech or not (tests/test_speech.py)
    rec = crop_video(src, tmp_path, cfg)
    check_output(rec, cfg, probe_video(src), per_frame_centre=cfg.mode == "track")
    assert rec["frames_with_several_faces"] == [] and rec["frames_without_face"] == []
    if cfg.mode == "track":
        assert rec["window"]["jitter"] < 0.002  # < 1 px RMS change of velocity per frame at 512 px, real motion included


@needs_yunet
def test_tiers_one_analysis_several_sizes(clips, tmp_path):
    rec = crop_video(clips["odd_noaudio"], tmp_path, CropConfig.resolve("default", tiers=(64, 128)))
    assert rec["status"] == "ok" and len(rec["tiers"]) == 2
    for size in (64, 128):
        info = probe_video(tmp_path / str(size) / "odd_noaudio.mp4")
        assert (info.display_width, info.display_height) == (size, size)
    again = crop_video(clips["odd_noaudio"], tmp_path, CropConfig.resolve("default", tiers=(64, 128)))
    assert again["status"] == "skipped"
    # a size added later is made from one more analysis; the record lists the sizes as asked
    more = crop_video(clips["odd_noaudio"], tmp_path, CropConfig.resolve("default", tiers=(32, 64, 128)))
    assert [(Path(t["output"]).parent.name, t["status"]) for t in more["tiers"]] == [("32", "ok"), ("64", "skipped"), ("128", "skipped")]
    assert more["status"] == "ok" and more["output"] == more["tiers"][0]["output"] and "note" not in more


@EITHER_DETECTOR
def test_webcam_close_up_is_found(clips, tmp_path, detector):
    """A close-up in which the face fills most of the frame (a webcam held close): the
    analysis finds it on every analysed frame with either detector."""
    from conftest import ffmpeg
    from prep.config import CropConfig
    from prep.crop import crop_video

    close = tmp_path / "close_up.mp4"
    # the sample's face box is about 220 x 270 px around (305, 490) in its first second
    ffmpeg("-i", str(clips["sample"]), "-t", "1.2", "-vf", "crop=300:300:155:340", "-c:v", "libx264", "-preset", "ultrafast", "-an", str(close))
    rec = crop_video(close, tmp_path / "out", CropConfig.resolve("default", size=128, detector=detector))
    assert rec["status"] == "ok", rec.get("message")
    assert rec["detector"]["name"] == ("yunet" if WEIGHTS.is_dir() else "hog")
    assert not rec["frames_without_face"], rec["frames_without_face"]
    assert rec["face_scale"]["median"] > 0.3


def test_a_decode_that_breaks_off_is_an_error_not_a_frozen_tail(clips, tmp_path, monkeypatch):
    """A frame short of the rounded count is the last frame repeated; a decode that stops well
    short (a damaged stretch) fails in one line and leaves no clip, instead of a frozen tail."""
    import itertools

    from prep.crop import write
    from prep.errors import PrepError
    from prep.fsutil import atomic_path

    real = write.iter_frames
    monkeypatch.setattr(write, "iter_frames", lambda *a, count, **k: itertools.islice(real(*a, count=count, **k), count - 5))
    info = probe_video(clips["sample"])
    windows = np.tile([[0.0, 200.0, 600.0]], (50, 1))
    with pytest.raises(PrepError, match="gave 45 of the 50 frames"):
        with atomic_path(tmp_path / "x.mp4") as tmp:  # as write.encode runs it
            write.encode_track(info, CropConfig.resolve("default", size=64), windows, 50, tmp)
    assert list(tmp_path.iterdir()) == []
