"""Speech on the review page and in prep check: each track's speaking timeline drawn from its
per-frame facts, the speech reasons labelled with their words; silent or soundless clips of an
audio-driven layout reported one line each (no speech model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from prep.check import CheckReport, check_voice
from prep.cli import main
from prep.speech.track import RATE, TrackSpeech
from prep.video import review

from conftest import SAMPLE_CLIP, SHARED, ffmpeg, needs_shared

SQUARE = ["-vf", "crop=720:720:0:200,scale=256:256,setsar=1", "-r", "25", "-c:v", "libx264", "-preset", "ultrafast"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


# ---- prep check: audio of an audio-driven layout -----------------------------------------------


TALK = SHARED / "videos" / "latentsync_demo2_1080x1920_hevc.mp4"


@pytest.fixture(scope="module")
def audio_problems(tmp_path_factory) -> dict[str, list[str]]:
    """``prep check`` of a hallo layout: the sample clip with its voice, without audio, with a
    silent track, and (with the shared data) three seconds of a person talking; returns the
    audio problems by file name."""
    d = tmp_path_factory.mktemp("hallo_audio") / "set"
    v = d / "videos"
    v.mkdir(parents=True)
    src = str(SAMPLE_CLIP)
    ffmpeg("-i", src, "-t", "3", *SQUARE, "-c:a", "aac", str(v / "voice.mp4"))
    ffmpeg("-i", src, "-t", "3", *SQUARE, "-an", str(v / "no_audio.mp4"))
    ffmpeg("-i", src, "-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono", "-t", "3", "-map", "0:v", "-map", "1:a", *SQUARE, "-c:a", "aac", str(v / "silent.mp4"))
    if TALK.is_file():
        ffmpeg("-i", str(TALK), "-t", "3", "-vf", "crop=1080:1080:0:300,scale=256:256,setsar=1", *SQUARE[2:], "-c:a", "aac", str(v / "talk.mp4"))
    res = run("check", d, "--json", "--layout", "hallo")
    assert res.exit_code == 1
    out: dict[str, list[str]] = {}
    for p in json.loads(res.stdout)["problems"]:
        if p["problem"] == "no audio track" or p["problem"].startswith(("silent:", "audio does not decode")):
            assert p["fix"] and p["level"] == "error"
            out.setdefault(Path(p["file"]).name, []).append(p["problem"])
    return out


def test_check_reports_missing_and_silent_audio(audio_problems):
    assert audio_problems["no_audio.mp4"] == ["no audio track"]
    (silent,) = audio_problems["silent.mp4"]
    assert silent.startswith("silent: a voice in 0% of the frames (at least 30% needed)")
    assert "voice.mp4" not in audio_problems  # the sample clip with its voice is not reported


@needs_shared
def test_check_passes_real_speech(audio_problems):
    assert "talk.mp4" not in audio_problems
    assert set(audio_problems) == {"no_audio.mp4", "silent.mp4"}


def test_check_voice_needs_no_speech_model(tmp_path, monkeypatch):
    """The voice check reads audio only: no model file, no video decode."""
    import prep.decode
    import prep.speech.lightasd
    from prep.probe import probe_video

    def refuse(*a, **k):
        raise AssertionError("the voice check must not need this")

    monkeypatch.setattr(prep.speech.lightasd, "load_default", refuse)
    monkeypatch.setattr(prep.decode, "iter_frames", refuse)
    clip = tmp_path / "quiet.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=size=64x64:rate=25", "-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.1:sample_rate=16000:seed=1", "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(clip))
    rep = CheckReport(str(tmp_path), "hallo")
    check_voice(clip, probe_video(clip), rep)
    assert [(Path(p.file).name, p.level) for p in rep.problems] == [("quiet.mp4", "error")]  # noise is no voice


# ---- the review page -------------------------------------------------------------------------


def _speech(n: int = 250, t0: float = 2.0) -> TrackSpeech:
    """Synthetic facts: a voice in the first 6 s, the face speaking in the first 4 s of it."""
    voiced = np.arange(n) < 150
    scores = np.where(np.arange(n) < 100, 2.0, -2.0).astype(np.float32)
    return TrackSpeech(t0, n, True, voiced, scores, visual=np.zeros((n, 128), np.float32))


def test_speech_series_bins_the_per_frame_facts():
    ts = _speech()
    tr = review.speech_series(ts, points=50)  # 250 frames in 50 bins of 5 (0.2 s)
    rows = tr["series"]
    assert (tr["start"], tr["end"], tr["note"]) == (2.0, 12.0, None)
    assert len(rows) == 50 and all(len(r) == 4 for r in rows)
    assert [r[0] for r in rows[:3]] == [2.0, 2.2, 2.4] and rows[-1][0] == pytest.approx(2.0 + 245 / RATE)
    voiced, talk, score = (np.array([r[k] for r in rows]) for k in (1, 2, 3))
    assert voiced.tolist() == [1.0] * 30 + [0.0] * 20
    assert talk.tolist() == [1.0] * 20 + [0.0] * 30  # speaking needs the score above 0 and a voice
    assert score[1:19].min() == 2.0 and score[21:-1].max() == -2.0  # (the 5-frame smoothing fades at the ends)
    assert len(review.speech_series(_speech(n=5000), points=600)["series"]) <= 600
    json.dumps(tr)  # it goes into the source's record


def test_speech_series_without_facts_says_why():
    assert review.speech_series({"measured": False, "note": "no audio"}) == {"start": None, "end": None, "series": [], "note": "no audio"}
    short = review.speech_series(TrackSpeech(0.0, 20, True, note="too short for the speech model (under 1 s)"))
    assert short["series"] == [] and short["note"].startswith("too short")


def _segments() -> list[dict]:
    base = {"shot": 0, "track": 0}
    return [
        {**base, "segment": "s00_t00_p00", "status": "kept", "source_start": 2.0, "source_end": 6.0, "output": "x/a.mp4", "images": [],
         "speech": {"measured": True, "speaking": 0.9, "voiced": 1.0, "sync": 2.9, "offset_frames": 3, "offset_exact": 3.24, "confidence": 1.0, "corrected_ms": 129.6, "fps": 25.0}},
        {**base, "segment": "s00_t00_p01", "status": "rejected", "source_start": 6.0, "source_end": 8.0, "reason": "not_speaking", "why": "the face speaks in 0% of its frames", "speech": {"measured": True, "speaking": 0.0, "voiced": 1.0, "sync": 2.9, "offset_frames": 0, "confidence": 1.0}},
        {**base, "segment": "s00_t00_p02", "status": "rejected", "source_start": 8.0, "source_end": 11.0, "reason": "no_speech", "why": "no voice in the audio here (a second or more)"},
        {**base, "segment": "s00_t00_p03", "status": "rejected", "source_start": 11.0, "source_end": 12.0, "reason": "out_of_sync", "why": "the audio is 7 frames (280 ms) late"},
    ]


def test_page_draws_the_speaking_timeline_and_labels_speech_reasons():
    rv = {"duration": 12.0, "shots": [{"shot": 0, "start": 0.0, "end": 12.0, "image": "s.jpg"}], "segments": _segments(), "blur": [[0.0, 0.5], [12.0, 0.5]],
          "pose": {"s00_t00": [[2.0, 1.0, 2.0], [12.0, 1.0, 2.0]]}, "speech": {"s00_t00": review.speech_series(_speech())}, "limits": {"yaw": 30, "pitch": 30}}
    page = review.page([{"source": "talk.mp4", "split": True, "review": rv}])
    svg = page[page.index("s00_t00: voice in the audio"):]
    assert svg.index("<polygon") and svg.count("<polygon") == 2 and "<polyline" in svg  # voice and speaking bands, score line
    for reason, why in (("not speaking", "the face speaks in 0% of its frames"), ("no speech", "no voice in the audio here"), ("out of sync", "the audio is 7 frames (280 ms) late")):
        assert f">{reason}</text>" in svg and why in svg  # labelled on the timeline, the why on hover
    for reason in ("not_speaking", "no_speech", "out_of_sync"):
        assert f"<b>{reason}</b>: " in page  # and on the candidates' cards, with their words
    assert "speaking 90%; voice 100%; sync 2.9; audio 3.2 frames late (130 ms); confidence 1.00; corrected: audio moved 130 ms earlier" in page
    assert page.index("yaw (blue)") < page.index("s00_t00: voice in the audio")  # under the pose timeline
    old = review.page([{"source": "old.mp4", "split": True, "review": {k: v for k, v in rv.items() if k != "speech"}}])
    assert "aria-label=\"s00_t00: voice" not in old  # records from before the speech check still render
