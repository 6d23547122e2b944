from fractions import Fraction

import pytest

from prep.errors import PrepError
from prep.probe import probe_video

from conftest import SHARED, needs_shared, shared_videos


def test_sample_clip(clips):
    info = probe_video(clips["sample"])
    assert (info.display_width, info.display_height) == (720, 1280)
    assert info.fps == pytest.approx(30) and not info.vfr and info.has_audio
    assert info.duration == pytest.approx(6.0, abs=0.04)


def test_rotation_tag_gives_upright_size(clips):
    info = probe_video(clips["rotated"])
    assert (info.width, info.height) == (1280, 720)
    assert info.rotation in (90, 270)
    assert (info.display_width, info.display_height) == (720, 1280)


def test_non_square_pixels(clips):
    info = probe_video(clips["sar"])
    assert info.sar == Fraction(4, 3)
    assert (info.display_width, info.display_height) == (720, 1280)


def test_variable_frame_rate(clips):
    info = probe_video(clips["vfr"])
    assert info.vfr
    assert info.fps == pytest.approx(20, abs=1)


def test_no_audio_and_odd_size(clips):
    info = probe_video(clips["odd_noaudio"])
    assert not info.has_audio
    assert (info.display_width, info.display_height) == (361, 641)


@needs_shared
def test_shared_clips_match_manifest():
    import csv

    rows = {r["local_path"]: r for r in csv.DictReader(open(SHARED / "MANIFEST.csv"))}
    for path in shared_videos():
        row = rows[f"videos/{path.name}"]
        info = probe_video(path)
        assert (info.width, info.height) == (int(row["width"]), int(row["height"]))
        assert info.frame_count == int(row["frames"])
        assert info.has_audio == row["has_audio"].startswith("yes")
        assert info.vfr == ("vfr" in path.name)
    d9 = probe_video(SHARED / "videos" / "livep_d9_512x480_sar15x16.mp4")
    assert d9.sar == Fraction(15, 16) and (d9.display_width, d9.display_height) == (480, 480)


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("this is not a video\n" * 50), "not a readable video"),
    ],
)
def test_bad_files(tmp_path, make, problem):
    p = tmp_path / "clip.mp4"
    make(p)
    with pytest.raises(PrepError, match=problem):
        probe_video(p)


def test_truncated_and_audio_only(tmp_path, clips):
    from conftest import ffmpeg

    data = clips["sample"].read_bytes()
    trunc = tmp_path / "trunc.mp4"
    trunc.write_bytes(data[: len(data) // 3])
    with pytest.raises(PrepError, match="truncated|damaged|not a readable"):
        probe_video(trunc)
    audio = tmp_path / "audio.m4a"
    ffmpeg("-i", str(clips["sample"]), "-vn", "-c:a", "copy", str(audio))
    with pytest.raises(PrepError, match="audio-only"):
        probe_video(audio)
