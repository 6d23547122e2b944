"""Shot detection and head pose, on frames and landmarks made here (no shared data needed)."""

from __future__ import annotations

import numpy as np
import pytest

from prep.detect import Face
from prep.video.pose import head_pose, project
from prep.video.shots import find_shots


def scene(seed: int, n: int, w: int = 160, h: int = 90) -> list[np.ndarray]:
    """A textured picture drifting slowly (camera motion), ``n`` frames."""
    rng = np.random.default_rng(seed)
    import cv2

    coarse = (rng.random((8, 12, 3)) * 255).astype(np.uint8)  # large shapes and colours
    fine = (rng.random((h * 2, w * 2, 3)) * 40).astype(np.uint8)  # and some texture
    big = cv2.add(cv2.resize(coarse, (w * 2, h * 2), interpolation=cv2.INTER_CUBIC), fine)
    return [np.ascontiguousarray(big[10 + k // 3 : 10 + k // 3 + h, 10 + k // 2 : 10 + k // 2 + w]) for k in range(n)]


def test_hard_cut_and_dissolve_are_found():
    a, b, c = scene(1, 60), scene(2, 80), scene(3, 60)
    blend = [((1 - t) * b[50 + k].astype(np.float32) + t * c[k].astype(np.float32)).astype(np.uint8) for k, t in enumerate(np.linspace(0, 1, 25))]
    frames = a[:50] + b[:50] + blend + c[25:60]
    shots = find_shots(frames, 25.0)
    kinds = [(t.kind, t.start, t.end) for t in shots.transitions]
    assert kinds[0][0] == "cut" and abs(kinds[0][1] - 50) <= 1, kinds
    assert kinds[1][0] == "dissolve" and kinds[1][1] <= 100 + 2 and kinds[1][2] >= 125 - 2, kinds
    assert len(shots.ranges) == 3
    # no shot holds a blended frame
    for s, e in shots.ranges:
        assert e <= 101 or s >= 124


def test_settled_shots_are_the_final_ones():
    """What :meth:`ShotDetector.settled` gives while frames are still coming (the --split
    speech crops link tracks on it) is final for the frames it calls settled: each frame's
    shot, or none inside a transition, is the one the whole video's detection gives."""
    from prep.video.shots import ShotDetector

    a, b, c = scene(1, 60), scene(2, 80), scene(3, 60)
    blend = [((1 - t) * b[50 + k].astype(np.float32) + t * c[k].astype(np.float32)).astype(np.uint8) for k, t in enumerate(np.linspace(0, 1, 25))]
    frames = a[:50] + b[:50] + blend + c[25:60]

    def shot_of(shots, i):
        return next((s for s, e in shots.ranges if s <= i < e), None)

    det = ShotDetector(25.0)
    seen = {}
    for i, frame in enumerate(frames):
        det.feed(i, frame)
        upto, shots = det.settled(i + 1)
        for j in range(upto):
            seen.setdefault(j, shot_of(shots, j))
        assert upto >= i + 1 - det.delay
    final = det.finish(len(frames))
    assert len(final.transitions) == 2
    assert all(seen[j] == shot_of(final, j) for j in seen) and len(seen) == len(frames) - det.delay


def test_steady_footage_has_no_transition():
    shots = find_shots(scene(4, 150), 25.0)
    assert shots.transitions == [] and shots.ranges == [(0, 150)]


@pytest.mark.parametrize("pose", [(0, 0, 0), (25, 0, 0), (-40, 0, 0), (0, 20, 0), (0, -15, 0), (0, 0, 20), (30, 10, -15)])
def test_pose_is_read_back_from_five_points(pose):
    lm = project(*pose)
    got = head_pose(Face((220, 140, 200, 200), lm, 0.9))
    assert np.allclose(got, pose, atol=1.0), got


def test_no_pose_from_estimated_landmarks():
    assert head_pose(Face((0, 0, 100, 100), project(0, 0, 0), 0.9, estimated_landmarks=True)) is None


def test_mirrored_real_face_mirrors_yaw_and_roll():
    """A real frame and its mirror image: yaw and roll change sign, pitch stays (within the
    detector's landmark noise: pitch rests on the nose tip's height alone)."""
    from conftest import SAMPLE_CLIP, WEIGHTS
    from checks import frames_at
    from prep.detect import create_detector

    if not WEIGHTS.is_dir():
        pytest.skip("YuNet model not found")
    det = create_detector("yunet", str(WEIGHTS))
    img = frames_at(SAMPLE_CLIP, [1.0])[0]
    import cv2

    (f,) = [x for x in det.detect(img) if x.score > 0.8][:1]
    (g,) = [x for x in det.detect(cv2.flip(img, 1)) if x.score > 0.8][:1]
    p, q = head_pose(f), head_pose(g)
    assert abs(p[0] + q[0]) <= 4 and abs(p[2] + q[2]) <= 4 and abs(p[1] - q[1]) <= 10, (p, q)


@pytest.mark.parametrize("name", ["sample", "vfr", "sar", "rotated"])
def test_a_stretch_decoded_by_seeking_is_the_same_frames(clips, name):
    """Encoding a segment decodes only its stretch: frames read from a seek are the frames a
    whole decode gives at the same indices (VFR, SAR and rotated sources included)."""
    from prep.probe import probe_video

    _stretches_are_the_whole_decodes_frames(probe_video(clips[name]))


def _stretches_are_the_whole_decodes_frames(info) -> None:
    """Frames read from a seek (near the start, in the middle, near the end) are the frames a
    whole decode gives at the same indices."""
    from prep.decode import iter_frames

    whole = [f.copy() for f in iter_frames(info, 25.0, 160)]
    for start in (1, 30, len(whole) - 8):
        part = list(iter_frames(info, 25.0, 160, start=start, count=5))
        assert len(part) == 5
        for k, f in enumerate(part):
            diffs = [float(np.abs(f.astype(int) - whole[j].astype(int)).mean()) for j in range(start + k - 1, start + k + 2)]
            assert diffs[1] <= min(diffs) + 0.5, (start, k, diffs)  # the same frame, not a neighbour


def test_a_decoder_killed_mid_video_is_an_error_not_the_end(clips):
    """A decode that breaks off (ffmpeg killed: out of memory, a signal) raises instead of
    passing for the video's end, where `prep frames` and `prep blur` would have finished a
    short video as done and skipped it on every rerun."""
    import os
    import signal

    from prep.decode import iter_frames
    from prep.errors import PrepError
    from prep.probe import probe_video

    def ffmpeg_children():  # from /proc: this process's ffmpeg children
        for d in filter(str.isdigit, os.listdir("/proc")):
            try:
                name, rest = open(f"/proc/{d}/stat").read().rsplit(")", 1)
            except OSError:
                continue
            if int(rest.split()[1]) == os.getpid() and "ffmpeg" in name:
                yield int(d)

    frames = iter_frames(probe_video(clips["sample"]), 25.0, 160)
    next(frames)
    killed = list(ffmpeg_children())
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    assert killed
    with pytest.raises(PrepError, match="ffmpeg stopped after"):
        for _ in frames:
            pass


def test_a_transport_stream_is_read_on_ffmpegs_clock(clips, tmp_path):
    """MPEG-TS (.ts, .mts, .m2ts) and MPEG-PS (.mpg) timestamps run on from wherever the
    camera's or broadcaster's clock stood (1.4 s from ffmpeg's TS muxer): ffmpeg counts every
    timestamp, and -ss, from the container's start, and so does the probe. The same picture and
    tones remuxed from MP4 to TS give the tones at the same instants on the output timeline,
    from the start and from a seek (as the clips' audio and the speech check read them), and a
    stretch decoded by seeking is the same frames (as a segment's encode reads them)."""
    from checks import TONES, onsets
    from conftest import ffmpeg
    from prep.probe import probe_video
    from prep.speech.audio import read_pcm

    mp4, ts = tmp_path / "tones.mp4", tmp_path / "tones.ts"
    # a key frame every second, as cameras write them: a seek has one to land before
    ffmpeg("-i", str(clips["sample"]), "-f", "lavfi", "-i", TONES, "-t", "3", "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", str(mp4))
    ffmpeg("-i", str(mp4), "-c", "copy", str(ts))
    a, b = probe_video(mp4), probe_video(ts)
    assert a.container_start == 0.0 and b.container_start > 1.0
    assert abs(b.start_time - a.start_time) < 0.1 and abs(b.audio_start - a.audio_start) < 0.1
    for start in (0, 30):  # from the first frame, and from a seek to 1.2 s
        want = onsets(read_pcm(a, 25.0, start, 45), 16000)
        assert len(want) == 1 and onsets(read_pcm(b, 25.0, start, 45), 16000) == pytest.approx(want, abs=0.006)
    _stretches_are_the_whole_decodes_frames(b)


def test_clips_cut_between_key_frames_start_at_their_first_shown_frame(tmp_path):
    """Two common cuts hold frames before the first one a player shows: an MP4 stream-copied
    from between key frames (``ffmpeg -ss 2.25 -c copy``: the GOP's start stays in the file
    for decoding, hidden by its edit list) and an MPEG-TS recording cut mid-GOP (frames before
    its first key frame do not decode). The probe counts only the frames shown, from the
    first, so the audio read on the output timeline is where it was (the tone half a second
    into every second of the source: 0.25 s into the MP4 cut; they came 2.25 s late) and the
    frame count is what the decoder gives."""
    import av

    from checks import onsets
    from conftest import ffmpeg
    from prep.decode import iter_frames
    from prep.probe import frame_times, probe_video
    from prep.speech.audio import read_pcm

    src = tmp_path / "src.mp4"
    tone = "sine=frequency=1000:sample_rate=44100,volume=enable='gte(mod(t+0.5\\,1)\\,0.1)':volume=0"  # on over [k + 0.5, k + 0.6)
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x96:rate=25", "-f", "lavfi", "-i", tone, "-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-c:a", "aac", "-b:a", "96k", str(src))
    cut, ts, ts_cut = tmp_path / "cut.mp4", tmp_path / "src.ts", tmp_path / "cut.ts"
    ffmpeg("-ss", "2.25", "-i", str(src), "-t", "3", "-c", "copy", str(cut))
    ffmpeg("-i", str(src), "-c", "copy", str(ts))
    data = ts.read_bytes()
    ts_cut.write_bytes(data[(len(data) // 188 // 3) * 188 :])  # a recording that begins a third of the way in: mid-GOP
    for path, first_tone in ((cut, 0.25), (ts_cut, 0.5)):
        info = probe_video(path)
        with av.open(str(path)) as c:
            shown = sum(1 for _ in c.decode(video=0))
        assert info.frame_count == shown == len(frame_times(info)) == sum(1 for _ in iter_frames(info, None, 96)), path.name
        assert abs(info.start_time) < 0.05 or path.suffix == ".ts", info.start_time
        heard = onsets(read_pcm(info, 25.0, 0, 50), 16000)
        assert heard and heard[0] == pytest.approx(first_tone, abs=0.03), (path.name, heard)


def test_a_head_moving_over_a_still_background_is_no_transition(clips):
    """The sample clip pans and zooms a face over a still background (vertical frame): no cut,
    no dissolve, so a fixed-window preset does not refuse it."""
    from prep.decode import iter_frames
    from prep.probe import probe_video

    shots = find_shots(iter_frames(probe_video(clips["sample"]), 25.0, 640), 25.0)
    assert shots.transitions == [], shots.transitions


def test_review_page_pictures_of_a_source_named_with_a_hash():
    """A source named take#1.mp4: its pictures' paths are quoted, or the browser would read
    '#1/shot00.jpg' as a fragment and show nothing."""
    from prep.video.review import _url

    assert _url("report_files/take#1/shot00.jpg") == "report_files/take%231/shot00.jpg"
    assert _url("report_files/a b?&'/s.jpg") == "report_files/a%20b%3F%26%27/s.jpg"
    assert _url("report_files/clip_01/shot00.jpg") == "report_files/clip_01/shot00.jpg"


def test_review_page_counts_a_shot_too_short_for_a_picture(tmp_path):
    """A 7-frame shot between a cut and a dissolve falls between two thumbnails: the page still
    counts it and draws its cut (it said 2 shots and left the cut at 1.6 s out)."""
    from types import SimpleNamespace

    from prep.config import CropConfig
    from prep.video.review import collect, keep_thumb, thumbs_dir

    cfg = CropConfig.resolve("hallo")
    pictures = thumbs_dir(tmp_path, "clip")
    for i in range(100):
        keep_thumb(pictures, i, np.full((64, 64, 3), 90, np.uint8), cfg.fps)
    an = SimpleNamespace(shots=SimpleNamespace(ranges=[(0, 40), (40, 47), (47, 100)]), n_frames=100, blur=np.full(100, np.nan))
    info = SimpleNamespace(display_width=64, display_height=64)
    rv = collect(info, an, cfg, {"segments": []}, {}, tmp_path, "clip")
    assert [(s["shot"], s["start"], s["image"] is None) for s in rv["shots"]] == [(0, 0.0, False), (1, 1.6, True), (2, 1.88, False)]


def test_in_a_dialogue_each_face_keeps_its_own_turns():
    """Two faces in a shot, one voice: a face is "not the speaker" only where the other face
    speaks in that same stretch. Face A talks 0-10 s, B answers 10-20 s; B's whole-track sync
    is higher, but A's turn is A's (it was rejected: the whole tracks' sync alone was compared)."""
    import dataclasses

    from prep.config import CropConfig
    from prep.crop.plan import other_speaker, speech_report
    from prep.speech.track import TrackSpeech
    from prep.video.segments import Segment
    from prep.video.tracks import Track, TrackFacts

    cfg = dataclasses.replace(CropConfig(), speech="require", fps=25.0)
    n = 500
    idx = np.arange(n)

    def heard(speaks: np.ndarray, sync: float) -> TrackSpeech:
        ts = TrackSpeech(t0=0.0, n=n, has_audio=True, voiced=np.ones(n, bool), scores=np.where(speaks, 3.0, -3.0).astype(np.float32), visual=np.zeros((n, 128), np.float32))
        ts.whole = {"measured": True, "sync": sync, "offset_frames": 0, "offset_exact": 0.0, "confidence": 1.0}
        return ts

    facts = {(0, 0): TrackFacts(Track(), {}, np.zeros(n), np.zeros(n, bool), 0, n, heard(idx < 250, 2.5)),
             (0, 1): TrackFacts(Track(), {}, np.zeros(n), np.zeros(n, bool), 0, n, heard(idx >= 250, 2.8))}
    turn_a, turn_b = Segment(0, 0, 0, 250, part=0), Segment(0, 1, 250, 500, part=0)
    assert other_speaker(facts, turn_a, cfg, speech_report(facts[(0, 0)].speech, cfg, 0, 250)) is None
    assert other_speaker(facts, turn_b, cfg, speech_report(facts[(0, 1)].speech, cfg, 250, 500)) is None
    listener = Segment(0, 0, 250, 500, part=1)  # A on screen while B speaks, and B's mouth follows the voice more
    why = other_speaker(facts, listener, cfg, speech_report(facts[(0, 0)].speech, cfg, 250, 500))
    assert why is not None and why[0] == "not_speaking" and "another face" in why[1]


@pytest.mark.parametrize("pad", ["edge", "mirror", "black"])
def test_a_fixed_window_past_an_odd_width_frame_keeps_the_last_column(tmp_path, pad):
    """A PAL DV frame (720x576, pixels 12:11) is 785 square pixels wide: cropped and padded in
    4:2:0, the picture's last column turned black (the chroma grid rounds an odd width down) and
    an edge border smeared that black across the padding. A flat grey picture stays grey up to
    the border, and an edge or mirror border is grey too."""
    import av

    from conftest import ffmpeg
    from prep.config import CropConfig
    from prep.encode import encode_fixed
    from prep.probe import probe_video

    src, out = tmp_path / "pal.mp4", tmp_path / "out.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=0xc8c8c8:size=720x576:rate=25", "-t", "0.2", "-vf", "setsar=12/11", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(src))
    info = probe_video(src)
    assert info.display_width == 785
    encode_fixed(info, (586, 200, 300), pad, CropConfig(size=300, fps=25.0, mode="fixed", pad=pad, x264_preset="ultrafast", crf=10), 3, out)
    with av.open(str(out)) as c:
        row = next(c.decode(video=0)).to_ndarray(format="gray")[150].astype(int)
    inside = 785 - 586  # picture columns in the window
    assert np.abs(row[: inside - 2] - row[0]).max() <= 3 and abs(row[inside - 1] - row[0]) <= 6, row[inside - 6 : inside + 4]
    if pad != "black":
        assert np.abs(row[inside + 2 :] - row[0]).max() <= 6, row[inside - 4 : inside + 8]


def test_the_reported_window_in_stored_pixels_of_an_upside_down_frame():
    """A source stored upside down (rotation 180) with non-square pixels: the window in stored
    pixels is counted from the stored frame's own corner (it was given as if upright)."""
    from fractions import Fraction
    from types import SimpleNamespace

    from prep.crop.write import window_report

    upright = SimpleNamespace(sar=Fraction(4, 3), rotation=0, display_width=960, display_height=540)
    flipped = SimpleNamespace(sar=Fraction(4, 3), rotation=180, display_width=960, display_height=540)
    win = np.array([[100.0, 40.0, 300.0]])
    assert window_report(upright, win, "fixed")["stored_px"] == {"x": 75.0, "y": 40.0, "w": 225.0, "h": 300.0}
    assert window_report(flipped, win, "fixed")["stored_px"] == {"x": (960 - 100 - 300) * 0.75, "y": 540 - 40 - 300, "w": 225.0, "h": 300.0}


def test_a_tracks_blur_is_kept_over_its_span_only():
    """A track's blur series covers its own frames (about 0.7 MB a track for an hour of video
    before, for every track): the values over the span are the clip's where this face was the
    one scored, and a score past the shot's end (the next shot's face) is not the track's."""
    from types import SimpleNamespace

    from prep.crop.plan import track_blur
    from prep.detect import Face
    from prep.video.tracks import Track

    n = 100_000
    blur = np.arange(n, dtype=np.float64)
    faces = {i: [Face((10.0, 10.0, 50.0, 50.0), np.zeros((5, 2), np.float32), 0.9)] for i in range(200, 300, 2)}
    an = SimpleNamespace(n_frames=n, blur=blur, detections=faces)
    tr = Track(sorted(faces), [faces[i][0] for i in sorted(faces)])
    span = track_blur(an, tr, 2, 200, 297)  # the shot ends at 297: frames 297-299 are the next shot's
    assert span.shape == (97,) and np.array_equal(span, blur[200:297])


def test_settled_shots_are_cheap_and_the_same():
    """The analysis asks for the shots so far on every frame: the cuts outside dissolves are
    worked out again only when the cuts or dissolves change (with a thousand cuts, an hour of
    television, this took 2.5 ms a frame), and the shots are the ones a plain computation gives
    over random histories of cuts and dissolves."""
    import random

    from prep.video.shots import ShotDetector, Shots, Transition

    def plain(det: ShotDetector, n: int) -> Shots:
        dissolves = [(a, min(b, n)) for a, b in det._dissolve.finish()]
        cuts = [c for c in sorted(set(det._cuts)) if 0 < c < n and not any(a - 1 <= c <= b + 1 for a, b in dissolves)]
        trans = [Transition(c, c, "cut") for c in cuts] + [Transition(a, b, "dissolve") for a, b in dissolves]
        return Shots(n, det.fps, sorted(trans, key=lambda t: t.start))

    rng = random.Random(1)
    for _ in range(100):
        det, n = ShotDetector(25.0), 0
        runs = det._dissolve._runs
        for _ in range(60):
            n += rng.randint(1, 40)
            if rng.random() < 0.5:
                det._cuts.append(rng.randint(0, n + 5))
            if rng.random() < 0.2:  # a dissolve's centre frames, as the detector records them
                c = n - rng.randint(0, 10)
                if runs and runs[-1][1] <= c <= runs[-1][1] + 1:
                    runs[-1][1] = c
                elif not runs or c > runs[-1][1] + 1:
                    runs.append([c, c])
            m = n - rng.randint(0, 3)
            got, want = det._shots(m), plain(det, m)
            assert got.transitions == want.transitions and got.ranges == want.ranges
