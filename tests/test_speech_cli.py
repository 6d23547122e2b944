"""`prep speech`: scoring clips that already exist, through click and through the library.

Edits of the shared clip latentsync_demo2 (8 s each, shrunk to 360x640 once) where the truth is
known: the clip itself (in sync), a voice-over (its video with latentsync_demo3's audio), no
audio at all, and the audio delayed by 4 frames (160 ms) for --fix-offset, whose output's audio
is compared with the original's. One --json run over the first three (and a file that is no
video) feeds most checks; the model is loaded once per process.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SHARED, WEIGHTS, ffmpeg, isolated_env, needs_shared
from prep.cli import main

VIDEOS = SHARED / "videos"
A = VIDEOS / "latentsync_demo2_1080x1920_hevc.mp4"  # a man talking, 20 s, 25 fps
B = VIDEOS / "latentsync_demo3_1080x1920_30fps_hevc.mp4"  # another man talking
SMALL = "scale=360:640,setsar=1,format=yuv420p"
SECONDS = "8"  # long enough for an offset within a frame, short enough for the time budget
FRAME_MS = 40.0
needs_speech_model = pytest.mark.skipif(not (WEIGHTS / "light_asd_pretrain_AVA_CVPR.model").is_file(), reason=f"Light-ASD checkpoint not found in {WEIGHTS}")


def real(fn):
    """Needs the shared clips and the Light-ASD checkpoint."""
    return needs_shared(needs_speech_model(fn))


def run(*args) -> object:
    return CliRunner().invoke(main, ["speech", *[str(a) for a in args]], catch_exceptions=False)


@pytest.fixture(scope="module")
def edits(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("speech_cli")
    out = {k: d / f"{k}.mp4" for k in ("synced", "voiceover", "noaudio", "late4")}
    # the 1080p HEVC shrunk once (decoding is not what is tested here; tests/test_crop.py decodes it)
    a = d / "a.mp4"
    ffmpeg("-i", str(A), "-t", SECONDS, "-vf", SMALL, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(a))
    ffmpeg("-i", str(a), "-c", "copy", str(out["synced"]))
    ffmpeg("-i", str(a), "-i", str(B), "-t", SECONDS, "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(out["voiceover"]))
    ffmpeg("-i", str(a), "-t", "3", "-an", "-c:v", "copy", str(out["noaudio"]))
    ffmpeg("-i", str(a), "-af", "adelay=160:all=1", "-c:v", "copy", "-c:a", "aac", str(out["late4"]))
    out["broken"] = d / "broken.mp4"
    out["broken"].write_bytes(b"this is not a video\n" * 50)
    return out


@pytest.fixture(scope="module")
def json_run(edits, tmp_path_factory):
    """One `prep speech --json` over the synced clip, the voice-over, the clip without audio
    and the broken file: (result, {file name: its JSON lines})."""
    with isolated_env(tmp_path_factory):  # module scope: the autouse fixture's environment is set per test
        res = run("--json", *(edits[k] for k in ("synced", "voiceover", "noaudio", "broken")))
    by_file: dict[str, list[dict]] = {}
    for line in res.stdout.splitlines():
        rec = json.loads(line)
        by_file.setdefault(Path(rec["path"]).name, []).append(rec)
    return res, by_file


@real
def test_json_lines_parse_and_carry_the_fields(json_run):
    res, by_file = json_run
    lines = res.stdout.splitlines()
    assert lines and all(isinstance(json.loads(ln), dict) for ln in lines)  # stdout is pure JSON lines
    for recs in by_file.values():
        for rec in recs:
            assert {"path", "face", "speaking", "score", "offset_frames", "confidence", "verdict", "why"} <= set(rec)
    assert sorted(by_file) == ["noaudio.mp4", "synced.mp4", "voiceover.mp4"]


@real
def test_synced_clip_is_ok_with_offset_near_zero(json_run):
    _, by_file = json_run
    (face,) = by_file["synced.mp4"]
    assert face["face"] == 0 and face["verdict"] == "ok" and face["why"] is None
    assert abs(face["offset_frames"]) <= 1, face
    assert face["speaking"] >= 0.4 and face["confidence"] >= 0.5


@real
def test_voice_over_is_not_speaking(json_run):
    _, by_file = json_run
    (face,) = by_file["voiceover.mp4"]
    assert face["verdict"] == "not_speaking", face
    assert "does not follow the voice" in face["why"]


@real
def test_clip_without_audio_is_no_speech(json_run):
    res, by_file = json_run
    (face,) = by_file["noaudio.mp4"]
    assert face["verdict"] == "no_speech" and face["why"] == "the clip has no audio stream"
    assert "Traceback" not in res.stdout + res.stderr


@real
def test_bad_file_is_one_error_line_and_the_rest_goes_on(json_run, edits):
    res, by_file = json_run
    assert res.exit_code == 1
    assert res.stderr == f"prep: {edits['broken']}: not a readable video (Invalid data found when processing input)\n"
    assert len(by_file) == 3  # the other files all printed


def test_library_never_raises_for_bad_input(tmp_path):
    from prep.config import CropConfig
    from prep.speechscan import score_clip

    cfg = CropConfig.resolve("hallo", speech="require")
    bad = tmp_path / "bad.mp4"
    bad.write_text("nope")
    for path, problem in ((bad, "not a readable video"), (tmp_path / "missing.mp4", "file not found")):
        rec = score_clip(path, cfg)
        assert rec["status"] == "error" and problem in rec["message"] and "traceback" not in rec


@needs_shared
def test_library_clip_without_audio(edits, tmp_path):
    from prep.config import CropConfig
    from prep.speechscan import score_clip

    rec = score_clip(edits["noaudio"], CropConfig.resolve("hallo", speech="off"), tmp_path)  # judged under require all the same
    assert rec["status"] == "ok"
    (face,) = rec["faces"]
    assert (face["verdict"], face["why"]) == ("no_speech", "the clip has no audio stream")
    assert rec["fix"] == "not possible (the clip has no audio stream)" and "fixed" not in rec


@needs_speech_model
def test_clip_without_a_face_is_ok_with_a_reason(tmp_path):
    clip = tmp_path / "pattern.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2", "-f", "lavfi", "-i", "sine=frequency=300:duration=2", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(clip))
    res = run("--json", clip)
    assert res.exit_code == 0, res.stderr
    (line,) = res.stdout.splitlines()
    rec = json.loads(line)
    assert (rec["path"], rec["face"], rec["verdict"]) == (str(clip), None, "no_face")
    assert re.fullmatch(r"no face found in any of \d+ analysed frames", rec["why"])


def test_missing_model_is_one_line(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PREP_WEIGHTS_DIR", str(empty))
    monkeypatch.setenv("PREP_CACHE_DIR", str(tmp_path / "cache"))
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    res = run(clip)
    assert res.exit_code == 1 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("prep: speech check: light_asd_pretrain_AVA_CVPR.model not found")
    assert "put it in --weights-dir or $PREP_WEIGHTS_DIR" in res.stderr


def test_fix_offset_needs_an_output_folder(tmp_path):
    res = run("--fix-offset", tmp_path)
    assert res.exit_code == 2 and "--fix-offset needs -o/--out" in res.stderr
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "clip.mp4").write_bytes(b"x")
    # the fixed clip would replace its source, or be read as a source on the next run
    for src, out, said in ((clips, clips, "is the folder of"), (clips / "clip.mp4", clips, "is the folder of"), (clips, clips / "fixed", "is inside the folder of")):
        res = run(src, "--fix-offset", "-o", out)
        assert res.exit_code == 2 and said in res.stderr and (clips / "clip.mp4").read_bytes() == b"x", res.stderr
    res = run(clips / "clip.mp4", "--fix-offset", "-o", clips / "fixed")  # a file is not walked again: a subfolder is fine
    assert "folder of" not in res.stderr


# --- --fix-offset ------------------------------------------------------------------------


def _pcm(path: Path) -> np.ndarray:
    """The first audio stream as 16 kHz mono float samples."""
    from prep.ffmpeg import ffmpeg_exe

    raw = subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", "16000", "-f", "s16le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.int16).astype(np.float64)


def _lag_ms(ref: np.ndarray, other: np.ndarray, max_ms: float = 400.0) -> float:
    """Milliseconds by which ``other`` comes after ``ref`` (negative: before): the peak of
    their cross-correlation, searched within ``max_ms``."""
    n = min(len(ref), len(other))
    a, b = ref[:n] - ref[:n].mean(), other[:n] - other[:n].mean()
    size = 1 << int(np.ceil(np.log2(2 * n)))
    xc = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)
    m = int(max_ms * 16)
    lags = np.concatenate([np.arange(0, m + 1), np.arange(-m, 0)])
    vals = np.concatenate([xc[: m + 1], xc[-m:]])
    return float(lags[np.argmax(vals)]) / 16.0


@real
def test_fix_offset_moves_the_audio_back_onto_the_lips_and_resumes(edits, tmp_path, monkeypatch):
    """(The face's crops come from the analysis pass: the clip is not decoded a second time
    for them.)"""
    from prep.probe import probe_video
    from prep.speech import track

    def second_decode(*a, **k):
        raise AssertionError("prep speech decoded the face a second time")

    monkeypatch.setattr(track, "face_embeddings", second_decode)
    monkeypatch.setattr(track, "tracks_embeddings", second_decode)

    out = tmp_path / "fixed"
    src = edits["late4"]
    assert _lag_ms(_pcm(edits["synced"]), _pcm(src)) == pytest.approx(160.0, abs=2.0)  # the edit itself
    res = run("--fix-offset", "-o", out, src, edits["noaudio"])
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    assert re.fullmatch(rf"ok   {re.escape(str(src))} \[face 0\]: speaking \d+%, sync \d\.\d, offset \+[345] frames \(confidence [01]\.\d\d\)", lines[0]), res.stdout
    fixed = out / "late4.mp4"
    assert lines[1].startswith(f"     fixed -> {fixed} (audio moved ") and lines[1].endswith(" ms earlier)")
    assert lines[2] == f"rej  {edits['noaudio']}: no_speech: the clip has no audio stream"
    assert lines[3] == "     fix: not possible (the clip has no audio stream)"
    assert sorted(p.name for p in out.iterdir()) == ["late4.json", "late4.mp4"]  # only fixed clips are written

    # the video is the source's stream as it was; the audio is back where the original has it
    before, after = probe_video(src), probe_video(fixed)
    assert (after.codec, after.frame_count, after.width, after.height) == (before.codec, before.frame_count, before.width, before.height)
    assert after.duration == pytest.approx(before.duration, abs=1e-3)
    assert after.audio_codec == "aac" and after.audio_duration == pytest.approx(max(before.duration, before.audio_duration), abs=0.05)
    assert abs(_lag_ms(_pcm(edits["synced"]), _pcm(fixed))) <= FRAME_MS
    side = json.loads((out / "late4.json").read_text())
    assert side["fixed"] == str(fixed) and side["faces"][0]["offset_frames"] in (3, 4, 5)

    # run again: the fixed clip is found and nothing is measured or written
    stamp = fixed.stat().st_mtime_ns
    again = run("--fix-offset", "-o", out, src)
    assert again.exit_code == 0, again.stderr
    assert again.stdout.splitlines()[1] == f"     skip: fixed in an earlier run -> {fixed}"
    assert fixed.stat().st_mtime_ns == stamp
