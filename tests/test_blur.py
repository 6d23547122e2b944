"""The blur score and its decisions: invariances, real pairs, the blink trap, bad images, the CLI."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from prep.align import face_scale
from prep.blur import blur_score
from prep.blurdecide import BlurConfig, blurred_frames, segments
from prep.cli import main
from prep.detect import create_detector, main_face
from prep.errors import PrepError
from prep.images import read_image
from prep.kernels import apply_kernel, disk_kernel, motion_kernel

from checks import frames_at
from conftest import BOTH_DETECTORS, EITHER_DETECTOR, SHARED, WEIGHTS, needs_shared, needs_yunet


@pytest.fixture(scope="module")
def face_photo(clips):
    """A sharp frame of the sample clip and its face."""
    img = frames_at(clips["sample"], [2.0])[0]
    det = create_detector("auto", str(WEIGHTS) if WEIGHTS.is_dir() else None)
    return img, main_face(det.detect(img))


def test_kernels_are_normalised_and_long_enough():
    k = motion_kernel(9, 0.0)
    assert k.sum() == pytest.approx(1.0, abs=1e-5)
    assert (k.sum(axis=0) > 1e-3).sum() in (9, 10, 11)  # about 9 px wide along x
    assert motion_kernel(0.5, 1.0).shape == (1, 1)
    assert disk_kernel(3).sum() == pytest.approx(1.0, abs=1e-5)


def test_motion_blur_and_defocus_lower_the_score(face_photo):
    img, face = face_photo
    sharp = blur_score(img, face)
    assert sharp.on_face and sharp.score > BlurConfig.resolve().photo_threshold
    for length in (5, 9, 15, 25):
        blurred = blur_score(apply_kernel(img, motion_kernel(length, np.radians(30))), face)
        assert blurred.score < sharp.score - 0.1 * min(length, 9) / 5
    assert blur_score(apply_kernel(img, motion_kernel(15, np.radians(30))), face).score < BlurConfig.resolve().photo_threshold
    assert blur_score(apply_kernel(img, disk_kernel(4)), face).score < BlurConfig.resolve().photo_threshold


@pytest.mark.parametrize("angle", [0, 45, 90, 135])
def test_direction_of_the_motion_is_found(face_photo, angle):
    img, face = face_photo
    s = blur_score(apply_kernel(img, motion_kernel(15, np.radians(angle))), face)
    diff = abs((s.direction - angle + 90) % 180 - 90)
    assert diff < 20, (s.direction, angle)


def test_dim_frame_and_low_contrast_barely_move_the_score(face_photo):
    img, face = face_photo
    ref = blur_score(img, face).score
    dim = (img.astype(np.float32) * 0.3).astype(np.uint8)
    flat = (img.astype(np.float32) * 0.5 + 60).astype(np.uint8)
    assert abs(blur_score(dim, face).score - ref) < 0.06
    assert abs(blur_score(flat, face).score - ref) < 0.06


def test_clip_relative_decisions():
    cfg = BlurConfig(video_drop=0.25, window_s=2.0)
    soft = np.full(100, -0.2) + np.random.default_rng(0).normal(0, 0.03, 100)  # soft but steady
    assert not blurred_frames(soft, 25, cfg).any()
    dip = soft.copy()
    dip[40:44] -= 0.5
    dip[70] = np.nan  # no face: never called blurred
    flags = blurred_frames(dip, 25, cfg)
    assert segments(flags) == [[40, 43]]


def test_variable_frame_rate_windows_span_seconds_not_frames():
    """A VFR clip's running median and spread reach as far in time either way, however many
    frames that is (counted at the mean rate, 30 s of a stretch at 60 fps beside one at 5 fps
    were ~10 s of one and ~60 of the other); a constant rate gives the same windows as before."""
    from prep.blurdecide import judge_video, running_median, window_bounds

    rng = np.random.default_rng(1)
    t = np.concatenate([np.arange(300) / 60.0, 5.0 + np.arange(60) / 5.0])  # 5 s at 60 fps, 12 s at 5 fps
    s = rng.normal(0, 0.1, len(t))
    fps = len(t) / 17.0
    cfg = BlurConfig(window_s=5.0)
    lo, hi = window_bounds(len(t), cfg.window_s, fps, t)
    half = max(3, round(5.0 * fps)) // 2 / fps
    for i in range(len(t)):
        inside = np.flatnonzero(np.abs(t - t[i]) <= half + 1e-6)
        assert (lo[i], hi[i]) == (inside[0], inside[-1] + 1)
    ref = running_median(s, (lo, hi))
    assert all(ref[i] == np.median(s[lo[i] : hi[i]]) for i in range(len(t)))
    assert not np.array_equal(ref, judge_video(s, fps, cfg).reference)  # frames at the mean rate differ
    cfr = np.arange(250) / 25.0
    x = rng.normal(0, 0.1, 250)
    a, b = judge_video(x, 25.0, cfg), judge_video(x, 25.0, cfg, cfr)
    assert np.array_equal(a.reference, b.reference) and np.array_equal(a.needed, b.needed)


@needs_shared
@BOTH_DETECTORS
def test_real_pairs_order_and_the_blink_trap(detector):
    det = create_detector(detector, str(WEIGHTS))
    cfg = BlurConfig.resolve()
    groups: dict[str, dict[str, np.ndarray]] = {}
    for p in sorted((SHARED / "blur" / "pairs").glob("*")) + sorted((SHARED / "blur" / "video_frames").glob("*")):
        groups.setdefault(p.stem.split("__")[0], {})["blur" if "blur" in p.stem.split("__")[-1] else "sharp"] = read_image(p)
    for name, g in groups.items():
        faces = {k: main_face([f for f in det.detect(v) if f.score >= 0.8]) for k, v in g.items()}
        on_face = all(faces.values())
        s = {k: blur_score(v, faces[k] if on_face else None).score for k, v in g.items()}
        assert s["blur"] < s["sharp"], name
        if name == "videoretalking_4":  # a blink, not blur: kept by both rules
            assert s["sharp"] - s["blur"] < cfg.video_drop
            assert s["blur"] >= cfg.photo_threshold
        elif name in ("latentsync_demo2", "lp_d9"):  # real motion blur: caught against its clip
            assert s["sharp"] - s["blur"] > cfg.video_drop


@needs_shared
@needs_yunet
def test_photo_threshold_on_real_photos():
    """The absolute photo rule on real photos, through the whole path (detect, align, score):
    faces the photo holds at about 512 px are kept, and motion blur of 9-25 px at 512 px face
    size (made at the photo's own scale) is rejected."""
    det = create_detector("yunet", str(WEIGHTS))
    cfg = BlurConfig.resolve()
    kept, caught = [], []
    for p in sorted((SHARED / "images").glob("*")):
        try:
            img = read_image(p)
        except PrepError:
            continue
        for face in det.detect(img):
            upscale = face_scale(face, 512)
            if face.score < 0.9 or upscale > 1.6 or "cropped_faces__0143" in p.name:  # 0143: degraded on purpose
                continue
            kept.append(blur_score(img, face).score >= cfg.photo_threshold)
            for length, angle in ((9, 0), (12, 45), (16, 90), (20, 135), (25, 30)):
                blurred = apply_kernel(img, motion_kernel(length / upscale, np.radians(angle)))
                caught.append(blur_score(blurred, face).score < cfg.photo_threshold)
    assert len(kept) >= 8
    assert all(kept)
    assert np.mean(caught) >= 0.9, np.mean(caught)


@needs_shared
@needs_yunet
def test_real_defocus_photos_are_rejected():
    det = create_detector("yunet", str(WEIGHTS))
    cfg = BlurConfig.resolve()
    for p in sorted((SHARED / "blur" / "defocus").glob("*")):
        img = read_image(p)
        assert blur_score(img, main_face(det.detect(img))).score < cfg.photo_threshold, p.name


# ---- images that are awkward or broken ------------------------------------------------


def _exif_orientation_jpeg(img: np.ndarray, orientation: int) -> bytes:
    """A JPEG with an EXIF APP1 segment holding only the Orientation tag."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    tiff = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    app1 = b"Exif\x00\x00" + tiff
    data = buf.tobytes()
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]


def test_read_image_variants(tmp_path):
    img = np.zeros((40, 60, 3), np.uint8)
    img[:, :30] = 255
    cv2.imwrite(str(tmp_path / "grey.png"), img[:, :, 0])
    cv2.imwrite(str(tmp_path / "deep.png"), img.astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / "rgba.png"), np.dstack([img, np.full((40, 60), 128, np.uint8)]))
    (tmp_path / "rotated.jpg").write_bytes(_exif_orientation_jpeg(img, 6))  # 90 degrees clockwise
    for name in ("grey.png", "deep.png", "rgba.png"):
        out = read_image(tmp_path / name)
        assert out.shape == (40, 60, 3) and out.dtype == np.uint8 and out[0, 0, 0] == 255 and out[0, 59, 0] == 0
    rot = read_image(tmp_path / "rotated.jpg")
    assert rot.shape == (60, 40, 3)  # upright: EXIF applied
    assert rot[0, 20, 0] > 200 and rot[59, 20, 0] < 50


@pytest.mark.parametrize(
    "content, problem",
    [(b"", "empty file"), (b"hello, not an image", "not a readable image"), (None, "truncated JPEG")],
)
def test_bad_images(tmp_path, content, problem):
    p = tmp_path / "x.jpg"
    if content is None:
        ok, buf = cv2.imencode(".jpg", np.full((64, 64, 3), 90, np.uint8))
        content = buf.tobytes()[: len(buf) // 2]
    p.write_bytes(content)
    with pytest.raises(PrepError, match=problem):
        read_image(p)


def test_a_motion_photo_reads_as_its_picture(tmp_path):
    """Phones append a video to the JPEG of a "motion photo": its picture is read, the same
    pixels as without the video. A JPEG cut short is refused wherever it is cut, even when an
    EXIF thumbnail (a JPEG of its own, with its own end marker) comes before the cut."""
    img = np.tile(np.linspace(0, 255, 96, dtype=np.uint8)[None, :, None], (64, 1, 3))
    thumb = cv2.imencode(".jpg", img[::4, ::4])[1].tobytes()
    app1 = b"Exif\x00\x00" + thumb  # not a valid EXIF block, but a segment that holds a whole JPEG
    plain = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    with_thumb = plain[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + plain[2:]
    (tmp_path / "plain.jpg").write_bytes(with_thumb)
    (tmp_path / "motion.jpg").write_bytes(with_thumb + b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64)
    assert np.array_equal(read_image(tmp_path / "motion.jpg"), read_image(tmp_path / "plain.jpg"))
    for cut in (len(plain) // 2, len(with_thumb) - 2):
        (tmp_path / "cut.jpg").write_bytes(with_thumb[:cut])
        with pytest.raises(PrepError, match="truncated JPEG"):
            read_image(tmp_path / "cut.jpg")


def test_what_decoders_read_is_not_called_truncated(tmp_path):
    """A PNG with bytes after its end chunk (however many) and a JPEG with stray bytes before a
    marker (libjpeg skips them) decode, so they are read; an image over OpenCV's pixel limit is
    one line, not an internal error."""
    img = np.tile(np.linspace(0, 255, 90, dtype=np.uint8)[None, :, None], (60, 1, 3))
    png = cv2.imencode(".png", img)[1].tobytes()
    (tmp_path / "trail.png").write_bytes(png + b"\x00" * 500)
    assert np.array_equal(read_image(tmp_path / "trail.png"), img)
    jpg = cv2.imencode(".jpg", img)[1].tobytes()
    (tmp_path / "pad.jpg").write_bytes(jpg[:20] + b"\x00\x00" + jpg[20:])  # inside the header segments
    assert read_image(tmp_path / "pad.jpg").shape == img.shape
    ihdr = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))  # noqa: E731
    (tmp_path / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    with pytest.raises(PrepError, match="over OpenCV's limit"):
        read_image(tmp_path / "huge.png")


# ---- prep blur and prep frames --------------------------------------------------------


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def photo_folder(tmp_path, face_photo):
    img, _ = face_photo
    d = tmp_path / "photos"
    d.mkdir()
    cv2.imwrite(str(d / "a_sharp.png"), img)
    cv2.imwrite(str(d / "b_blurred.png"), apply_kernel(img, motion_kernel(15, 0.3)))
    cv2.imwrite(str(d / "c_noface.png"), np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8))
    (d / "d_broken.jpg").write_bytes(b"\xff\xd8 not really")
    return d


def test_blur_cli_json_move_and_sheet(photo_folder, tmp_path):
    rej, sheet = tmp_path / "rejected", tmp_path / "sheet.png"
    res = run("blur", photo_folder, "--json", "--move-rejected", rej, "--sheet", sheet)
    assert res.exit_code == 1  # the broken file
    assert res.stderr.startswith(f"prep: {photo_folder / 'd_broken.jpg'}: ") and "Traceback" not in res.stderr
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    by = {x["path"].split("/")[-1]: x for x in lines}
    assert not by["a_sharp.png"]["blurry"] and by["b_blurred.png"]["blurry"]
    assert by["b_blurred.png"]["score"] < by["a_sharp.png"]["score"]
    assert by["c_noface.png"]["on_face"] is False
    assert by["b_blurred.png"]["reason"]["kind"] == "motion" and by["a_sharp.png"]["reason"] is None
    # moved, not deleted, into a folder named for the reason, with the reason logged
    assert not (photo_folder / "b_blurred.png").exists() and (rej / "motion" / "b_blurred.png").is_file()
    log = [json.loads(x) for x in (rej / "rejected.jsonl").read_text().splitlines()]
    assert log[0]["file"] == "motion/b_blurred.png" and log[0]["reason"]["kind"] == "motion" and "motion blur" in log[0]["why"]
    assert cv2.imread(str(sheet)) is not None
    # again with the rejected folder inside the photos' folder: what was set aside is not moved again
    inside = photo_folder / "rejected"
    shutil.copy(rej / "motion" / "b_blurred.png", photo_folder / "b_blurred.png")
    for _ in range(2):
        res = run("blur", photo_folder, "--json", "--move-rejected", inside)
    assert sorted(str(p.relative_to(inside)) for p in inside.rglob("*.png")) == ["motion/b_blurred.png"]
    assert len((inside / "rejected.jsonl").read_text().splitlines()) == 1
    # a contact sheet that cannot be written: one line, not a traceback
    (tmp_path / "afile").write_text("")
    res = run("blur", photo_folder, "--sheet", tmp_path / "afile" / "check.png")
    assert res.exit_code == 1 and "Traceback" not in res.stderr and "afile" in res.stderr.splitlines()[-1], res.stderr


def test_a_move_that_fails_is_one_line_and_the_batch_goes_on(photo_folder, tmp_path, monkeypatch):
    """--move-rejected into a folder it cannot move to (read-only, across file systems where
    the original cannot be removed): the photo is named in one line and the others are scored."""
    import errno
    import shutil

    def refuse(src, dst):
        raise OSError(errno.EROFS, "Read-only file system", src)

    monkeypatch.setattr(shutil, "move", refuse)
    res = run("blur", photo_folder, "--json", "--move-rejected", tmp_path / "rejected")
    assert res.exit_code == 1 and "Traceback" not in res.stderr
    assert f"prep: {photo_folder / 'b_blurred.png'}: blurred, but could not be moved to {tmp_path / 'rejected'}: Read-only file system" in res.stderr.splitlines()
    assert (photo_folder / "b_blurred.png").is_file() and "a_sharp.png" in res.stdout


def test_the_contact_sheet_keeps_what_it_shows_and_counts_the_rest():
    """A long run's sheet holds at most SHEET_TILES faces (its title counts them all), and only
    those are kept while the run goes on: a video's record keeps its picked frames, no more."""
    from prep.cli import SHEET_TILES, _keep_for_sheet

    kept, counts = [], {"rejected": 0, "borderline": 0, "shown": 0}
    video = {"kind": "video", "status": "ok", "path": "v.mp4", "frames": [{"frame": i, "blurry": i % 3 == 0, "borderline": i % 3 == 1} for i in range(900)]}
    _keep_for_sheet(video, kept, counts)
    for k in range(400):
        _keep_for_sheet({"kind": "photo", "status": "ok", "path": f"{k}.jpg", "blurry": k % 2 == 0, "borderline": k % 2 == 1}, kept, counts)
    assert counts == {"rejected": 300 + 200, "borderline": 300 + 200, "shown": SHEET_TILES}
    assert len(kept[0]["frames"]) == 60 and all(f["blurry"] or f["borderline"] for f in kept[0]["frames"])
    assert 60 + len(kept) - 1 == SHEET_TILES


def test_blur_threshold_option(photo_folder):
    res = run("blur", photo_folder / "a_sharp.png", "--threshold", "5", "--json")
    assert json.loads(res.stdout)["blurry"] is True


@pytest.fixture(scope="module")
def clip_with_blur(clips, tmp_path_factory):
    """The sample clip with frames 30-34 smeared horizontally (a real-looking motion blur)."""
    from conftest import ffmpeg

    out = tmp_path_factory.mktemp("blurclip") / "smeared.mp4"
    ffmpeg("-i", str(clips["sample"]), "-t", "3", "-vf", "avgblur=sizeX=9:sizeY=0:enable='between(n,30,34)'", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-an", str(out))
    return out


@EITHER_DETECTOR
def test_frames_sets_blurred_frames_aside(clip_with_blur, tmp_path, detector):
    out = tmp_path / "frames"
    res = run("frames", clip_with_blur, "-o", out, "--reject-blur", "--detector", detector)
    assert res.exit_code == 0, res.stderr
    kept = sorted(p.name for p in out.glob("*.png"))
    rejected = sorted(p.name for p in (out / "rejected").glob("*.png"))
    assert kept[0] == "00001.png" and len(kept) + len(rejected) == 90
    assert set(rejected) >= {f"{i + 1:05d}.png" for i in range(31, 34)}
    assert len(rejected) <= 7
    rep = json.loads((out / "frames.json").read_text())
    assert rep["blurred_segments"] and len(rep["scores"]) == 90
    again = run("frames", clip_with_blur, "-o", out, "--reject-blur", "--detector", detector)
    assert "skip" in again.output


@EITHER_DETECTOR
def test_crop_report_lists_blurred_frames(clip_with_blur, tmp_path, detector):
    from prep.config import CropConfig
    from prep.crop import crop_video

    rec = crop_video(clip_with_blur, tmp_path, CropConfig.resolve("default", size=128, detector=detector))
    # source frames 30-34 at 30 fps are output frames 25-28 at 25 fps
    flagged = set(rec["blur"]["blurred_frames"])
    assert flagged & {25, 26, 27, 28} and len(flagged) <= 6
    assert len(rec["blur"]["scores"]) == rec["output_info"]["frames"]


@pytest.fixture(scope="module")
def small_clip_with_blur(clip_with_blur, tmp_path_factory):
    """The same at 360x640: for the layout checks, which write every frame."""
    from conftest import ffmpeg

    out = tmp_path_factory.mktemp("blurclip_small") / "smeared.mp4"
    ffmpeg("-i", str(clip_with_blur), "-vf", "scale=360:640", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-an", str(out))
    return out


def test_frames_dfl_workspace(small_clip_with_blur, tmp_path):
    clip_with_blur = small_clip_with_blur
    res = run("frames", clip_with_blur, "-o", tmp_path, "--layout", "dfl", "--reject-blur")
    assert res.exit_code == 0, res.stderr
    ws = tmp_path / "workspace"
    assert (ws / "data_src.mp4").read_bytes() == clip_with_blur.read_bytes()
    assert (ws / "data_src" / "00001.png").is_file() and (ws / "data_src" / "rejected").is_dir()
    check = run("check", tmp_path)
    assert "layout dfl" in check.output and check.exit_code == 0 and "no frames" in check.output  # data_dst: a warning so far
    (ws / "data_src.mp4").unlink()  # as if the run had stopped after its frames, before the copy
    again = run("frames", clip_with_blur, "-o", tmp_path, "--layout", "dfl", "--reject-blur")
    assert "skip" in again.output and (ws / "data_src.mp4").read_bytes() == clip_with_blur.read_bytes()
    for bad, why in ((("--fps", "0"), "0<x<=240"), (("--tiers", "0,128"), "sizes are 16 to 8192 pixels, got 0"), (("--dst",), "use it with --layout dfl")):
        res = run("frames", clip_with_blur, "-o", tmp_path / "bad", *bad)  # the option is at fault, not the video
        assert res.exit_code == 2 and why in res.stderr and str(clip_with_blur) not in res.stderr, res.stderr
    refused = run("frames", clip_with_blur, "-o", tmp_path, "--layout", "dfl", "--dst", "--reject-blur", "--fps", "5")
    assert refused.exit_code == 1 and "--fps, --reject-blur would drop or resample frames" in refused.stderr  # DFL merges every dst frame back
    assert run("frames", clip_with_blur, "-o", tmp_path, "--layout", "dfl", "--dst").exit_code == 0
    assert (ws / "data_dst.mp4").is_file() and (ws / "data_dst" / "00090.png").is_file()
    check = run("check", tmp_path)
    assert check.exit_code == 0 and "no frames" not in check.output
    (tmp_path / "empty" / "workspace" / "data_src").mkdir(parents=True)  # a workspace with nothing to train on
    check = run("check", tmp_path / "empty", "--layout", "dfl")
    assert check.exit_code == 1 and "no frames" in check.output


def test_frames_again_with_other_settings_leave_no_earlier_frame(clip_with_blur, tmp_path):
    """Extracted again at another rate into the same folder, the frames of the earlier rate go
    (what a trainer reads from the folder is one extraction), and DeepFaceLab's own files stay."""
    assert run("frames", clip_with_blur, "-o", tmp_path, "--fps", "10").exit_code == 0
    (tmp_path / "aligned").mkdir()
    (tmp_path / "aligned" / "00001_0.jpg").write_bytes(b"DeepFaceLab's")
    assert run("frames", clip_with_blur, "-o", tmp_path, "--fps", "5").exit_code == 0
    rep = json.loads((tmp_path / "frames.json").read_text())
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [f"{i:05d}.png" for i in range(1, rep["frames"] + 1)]
    assert (tmp_path / "aligned" / "00001_0.jpg").is_file()


def test_a_variable_rate_videos_frames_have_their_own_times(tmp_path):
    """prep blur on a variable-frame-rate video (every third frame dropped, as phones do when
    the light falls) without --fps: each frame's time is its own, not index / average rate."""
    import av

    from conftest import ffmpeg
    from prep.blurscan import DetectSettings, score_video

    vfr = tmp_path / "vfr.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=30:duration=2", "-vf", "select='not(eq(mod(n\\,3)\\,2))'", "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast", str(vfr))
    with av.open(str(vfr)) as c:
        shown = [float(f.pts * c.streams.video[0].time_base) for f in c.decode(video=0)]
    rec = score_video(str(vfr), DetectSettings("auto", str(WEIGHTS) if WEIGHTS.is_dir() else None), BlurConfig.resolve())
    assert rec["status"] == "ok" and len(rec["frames"]) == len(shown) == 40
    assert [f["time"] for f in rec["frames"]] == pytest.approx([t - shown[0] for t in shown], abs=1e-4)


def test_frames_tiers(clip_with_blur, tmp_path):
    res = run("frames", clip_with_blur, "-o", tmp_path, "--tiers", "64,128", "--reject-blur", "--fps", "10")
    assert res.exit_code == 0, res.stderr
    for size in (64, 128):
        kept = sorted((tmp_path / str(size)).glob("*.png"))
        assert kept and max(cv2.imread(str(kept[0])).shape[:2]) == size
    assert sorted(p.name for p in (tmp_path / "64" / "rejected").glob("*")) == sorted(p.name for p in (tmp_path / "128" / "rejected").glob("*"))


@pytest.fixture(scope="module")
def demo2_second_half(tmp_path_factory) -> Path:
    """LatentSync's demo clip from its keyframe at 10 s (frame 250) for 9 s (to 1.5 s past its
    motion blur), the stream copied."""
    from conftest import ffmpeg

    out = tmp_path_factory.mktemp("blur_clip") / "demo2_from_10s.mp4"
    ffmpeg("-ss", "10", "-i", str(SHARED / "videos" / "latentsync_demo2_1080x1920_hevc.mp4"), "-t", "9", "-c", "copy", str(out))
    return out


@needs_shared
@BOTH_DETECTORS
def test_real_motion_blur_in_a_clip_is_caught_by_either_detector(detector, demo2_second_half):
    """LatentSync's demo clip has real motion blur at frames 432-436 (182-186 of its 9 s from
    10 s on, what is scored here): both detectors' faces find exactly that stretch among the few
    frames they reject."""
    from prep.blurscan import DetectSettings, score_video

    rec = score_video(str(demo2_second_half), DetectSettings(detector, str(WEIGHTS)), BlurConfig.resolve())
    assert 225 <= len(rec["frames"]) <= 227
    blurred = {f["frame"] for f in rec["frames"] if f["blurry"]}
    assert set(range(182, 187)) <= blurred
    assert len(blurred - set(range(182, 187))) <= 2, sorted(blurred)


# ---- why a photo's face is soft -------------------------------------------------------


@pytest.fixture(scope="module")
def big_face():
    """A large, sharp real face (Hallo's reference portrait), or the sample's face."""
    path = SHARED / "images" / "hallo__reference_images__6.jpg"
    img = read_image(path) if path.is_file() else None
    if img is None:
        from conftest import SAMPLE_CLIP

        img = frames_at(SAMPLE_CLIP, [2.0])[0]
    det = create_detector("auto", str(WEIGHTS) if WEIGHTS.is_dir() else None, max_side=2048)
    return img, main_face(det.detect(img))


@pytest.mark.parametrize("fraction,angle", [(0.04, 0), (0.06, 45), (0.1, 120)])
def test_motion_blur_is_named_with_direction_and_length(big_face, fraction, angle):
    """Motion of 4-10% of the face's size: named motion, its direction within 20 degrees and
    its length within a factor of 2 (about 30% on sharp large faces; the sample clip's face,
    enlarged from a small photo, reads long)."""
    from prep.blur import measure_face
    from prep.blurdecide import judge_photo

    img, face = big_face
    length = max(5.0, round(fraction * face.size))
    m = measure_face(apply_kernel(img, motion_kernel(length, np.radians(angle))), face)
    reason = judge_photo(m, BlurConfig.resolve())
    assert reason is not None and reason["kind"] == "motion", reason
    diff = abs((reason["direction"] - angle + 90) % 180 - 90)
    assert diff < 20, reason
    assert 0.5 * length <= reason["length_px"] <= 2.0 * length, (length, reason)


@pytest.mark.parametrize("roll", [-25, 25])
def test_the_motion_direction_is_in_the_photos_axes(big_face, roll):
    """The face is measured turned upright: the direction it gives is turned back into the
    photo's axes (horizontal motion on a face rolled 25 degrees read as 17 or 163 degrees)."""
    from prep.blur import measure_face

    img, _ = big_face
    h, w = img.shape[:2]
    turned = cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), roll, 1.0), (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    det = create_detector("auto", str(WEIGHTS) if WEIGHTS.is_dir() else None, max_side=2048)
    face = main_face(det.detect(turned))
    m = measure_face(apply_kernel(turned, motion_kernel(max(5.0, round(0.06 * face.size)), 0.0)), face)
    assert abs((m.direction + 90) % 180 - 90) < 8, m


def test_defocus_and_low_resolution_are_told_apart(big_face):
    from prep.blur import measure_face
    from prep.blurdecide import judge_photo

    img, face = big_face
    cfg = BlurConfig.resolve()
    assert judge_photo(measure_face(img, face), cfg) is None
    soft = judge_photo(measure_face(apply_kernel(img, disk_kernel(6)), face), cfg)
    assert soft is not None and soft["kind"] == "defocus", soft
    # the same sharp face, shrunk so it must be enlarged 3x: low resolution, not blur
    f = 256 / 3 / (face.size * 2.2)
    small = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    m = measure_face(small, face.scaled(f))
    low = judge_photo(m, cfg)
    assert low is not None and low["kind"] == "low_resolution" and low["enlargement"] > cfg.low_res_enlargement, (low, m)
    assert m.measured_px < 256
    import dataclasses

    assert judge_photo(m, dataclasses.replace(cfg, keep_low_res=True))["kind"] == "low_resolution"  # the reason stays


def test_keep_low_res_option(tmp_path, big_face):
    img, face = big_face
    f = 256 / 3 / (face.size * 2.2)
    cv2.imwrite(str(tmp_path / "small.png"), cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA))
    res = run("blur", tmp_path / "small.png", "--json")
    rec = json.loads(res.stdout)
    assert rec["blurry"] and rec["reason"]["kind"] == "low_resolution"
    rec = json.loads(run("blur", tmp_path / "small.png", "--json", "--keep-low-res").stdout)
    assert not rec["blurry"] and rec["reason"]["kind"] == "low_resolution"


# ---- faces of every size ----------------------------------------------------------------


def _tight(img, face, fraction):
    """A square crop in which ``face`` fills ``fraction`` of the side (None if it leaves the photo)."""
    side = face.size / fraction
    cx, cy = face.center
    x0, y0, s = int(round(cx - side / 2)), int(round(cy - side / 2)), int(round(side))
    if x0 < 0 or y0 < 0 or x0 + s > img.shape[1] or y0 + s > img.shape[0]:
        return None
    return img[y0 : y0 + s, x0 : x0 + s]


@pytest.fixture(scope="module")
def shared_photos() -> list[tuple[str, np.ndarray, list]]:
    """Every shared photo, read once, with YuNet's faces (score 0.8 or more) at the photo side
    `prep blur` uses (found once for the three tests that use them; None without YuNet)."""
    from prep.blurscan import PHOTO_SIDE

    ref = create_detector("yunet", str(WEIGHTS), max_side=PHOTO_SIDE) if WEIGHTS.is_dir() else None  # HOG's cases need no YuNet
    out = []
    for p in sorted((SHARED / "images").glob("*")):
        img = read_image(p)
        out.append((p.name, img, [f for f in ref.detect(img) if f.score >= 0.8] if ref else None))
    return out


@needs_shared
@BOTH_DETECTORS
def test_every_shared_photo_with_a_person_has_its_face_found(detector, shared_photos):
    from prep.blurscan import PHOTO_SIDE

    det = create_detector(detector, str(WEIGHTS), max_side=PHOTO_SIDE)
    missing = []
    for name, img, yunet_faces in shared_photos:
        faces = yunet_faces if detector == "yunet" else [f for f in det.detect(img) if f.score >= 0.8]
        if "dogs" in name:
            assert not faces, "a dog is no person"
        elif not faces:
            missing.append(name)
    assert len(shared_photos) >= 30 and not missing


@needs_shared
@needs_yunet
@pytest.mark.parametrize("detector", ["hog", "yunet"])
def test_close_ups_and_tight_crops_are_found(detector, shared_photos):
    """Crops of the shared photos in which the face fills 60-95% of the frame, and a close-up
    enlarged to 3511 px (a Hallo-style reference portrait), are found by either detector."""
    from prep.blurscan import PHOTO_SIDE

    det = create_detector(detector, str(WEIGHTS), max_side=PHOTO_SIDE)
    tried, missed = 0, []
    for name, img, ref_faces in shared_photos:
        if "dogs" in name:
            continue
        face = main_face(ref_faces)
        for fraction in (0.6, 0.75, 0.95):
            crop = _tight(img, face, fraction)
            # dlib's HOG needs faces of 40 px and more; an enlarged thumbnail is too soft for it
            if crop is None or (detector == "hog" and crop.shape[0] < 64):
                continue
            tried += 1
            if not [f for f in det.detect(crop) if f.score >= 0.8]:
                missed.append((name, fraction))
    big = cv2.resize(read_image(SHARED / "images" / "hallo__reference_images__3.jpg"), (3511, 3511), interpolation=cv2.INTER_CUBIC)
    found = [f for f in det.detect(big) if f.score >= 0.8]
    assert found and found[0].size > 0.4 * 3511
    assert tried >= 60 and not missed, missed
