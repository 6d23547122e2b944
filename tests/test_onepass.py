"""A fixed window encoded in the analysis's own decode (prep/crop/look.py, encode_fixed_reading):
the same bytes as the separate encode, the same frames as the separate analysis decode, and a
key-frame window that is kept only within the tolerance, else encoded again."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from prep.config import CropConfig
from prep.crop import crop_video
from prep.crop.look import close_enough, provisional_window
from prep.decode import frame_count_at, iter_frames
from prep.detect import cached_detector
from prep.encode import encode_fixed, encode_fixed_reading
from prep.probe import probe_video

from conftest import ffmpeg, needs_shared, needs_yunet


@pytest.mark.parametrize("name, window", [("rotated", (-40, 300, 420)), ("sar", (100, 200, 380))])
def test_one_decode_gives_the_separate_encode_and_the_analysis_frames(clips, tmp_path, name, window):
    """Rotation tag and non-square pixels, a window partly outside the frame (padding), two sizes."""
    info = probe_video(clips[name])
    cfg = CropConfig.resolve("geneface", size=96, speech="off")
    big = dataclasses.replace(cfg, size=128)
    n = frame_count_at(info, cfg.fps)
    encode_fixed(info, window, cfg.pad, cfg, n, tmp_path / "alone.mp4")
    encode_fixed(info, window, cfg.pad, big, n, tmp_path / "alone_128.mp4")
    frames = [f.copy() for f in encode_fixed_reading(info, window, cfg.pad, [(cfg, tmp_path / "one.mp4"), (big, tmp_path / "one_128.mp4")], n, cfg.analysis_side)]
    assert (tmp_path / "one.mp4").read_bytes() == (tmp_path / "alone.mp4").read_bytes()
    assert (tmp_path / "one_128.mp4").read_bytes() == (tmp_path / "alone_128.mp4").read_bytes()
    plain = list(iter_frames(info, cfg.fps, cfg.analysis_side))
    assert len(frames) == len(plain) == n
    assert all(np.array_equal(a, b) for a, b in zip(frames, plain))


def test_stopping_the_analysis_stops_the_encode(clips, tmp_path):
    info = probe_video(clips["sample"])
    cfg = CropConfig.resolve("geneface", size=64, speech="off")
    it = encode_fixed_reading(info, (0, 200, 400), cfg.pad, [(cfg, tmp_path / "x.mp4")], frame_count_at(info, cfg.fps), cfg.analysis_side)
    next(it)
    it.close()  # the analysis failed: ffmpeg is stopped, not waited for
    assert not (tmp_path / "x.mp4").exists() or (tmp_path / "x.mp4").stat().st_size < 10_000


@pytest.fixture
def any_size(monkeypatch):
    """The shared decode for the small test clips too (it is kept for 1080p and up)."""
    from prep.crop import look

    monkeypatch.setattr(look, "SHARED_DECODE_PIXELS", 0)


@needs_yunet
def test_key_frame_window_kept_within_tolerance_else_encoded_again(clips, tmp_path, any_size):
    """The sample's face drifts: its key frames place the window off the analysed one. Within
    a wide tolerance the key frames' window is kept and the clip is not encoded again; outside
    the default one the clip is encoded again with the analysed window; with none it is
    analysed, then encoded. Every time the output is the bytes a separate encode of the window
    in the report gives, at every size."""
    src = clips["rotated"]
    info = probe_video(src)
    wide = crop_video(src, tmp_path / "wide", CropConfig.resolve("geneface", speech="off", tiers=(64, 96), window_tolerance=0.25))
    again = crop_video(src, tmp_path / "again", CropConfig.resolve("geneface", speech="off", tiers=(64, 96)))
    exact = crop_video(src, tmp_path / "exact", CropConfig.resolve("geneface", speech="off", tiers=(64, 96), window_tolerance=0.0))
    import json

    def reports(rec):
        return [json.loads(open(t["report"]).read()) for t in rec["tiers"]]

    wide, again, exact = reports(wide), reports(again), reports(exact)
    for rec in wide + again + exact:  # GeneFace++'s layout, one window, and the drift said
        assert rec["output"].endswith(f"/{rec['config']['size']}/data/raw/videos/rotated.mp4") and rec["report"].endswith("/data/raw/videos/rotated.json")
        assert "per_frame" not in rec["window"] and any("--mode track" in w for w in rec["warnings"])
    for rec in wide:
        assert rec["window"]["placed_by"] == "key frames" and rec["timings"]["encode"] < 0.05
        kept, analysed = [int(rec["window"][k]) for k in ("x", "y", "side")], rec["window"]["analysed"]
        assert kept != analysed and close_enough(tuple(kept), tuple(analysed), 0.25) and not close_enough(tuple(kept), tuple(analysed), 0.05)
    for rec in again:  # off by more than 5% of the side: encoded again after the shared decode
        assert "analysed" not in rec["window"] and [int(rec["window"][k]) for k in ("x", "y", "side")] == analysed and "analyse_encode" in rec["timings"]
    for rec in exact:
        assert "analysed" not in rec["window"] and [int(rec["window"][k]) for k in ("x", "y", "side")] == analysed and "analyse" in rec["timings"]
    assert [open(r["output"], "rb").read() for r in again] == [open(r["output"], "rb").read() for r in exact]
    for rec in wide + exact:
        cfg = CropConfig.resolve("geneface", speech="off", size=rec["config"]["size"])
        again = tmp_path / f"again_{len(list(tmp_path.iterdir()))}.mp4"
        encode_fixed(info, tuple(int(rec["window"][k]) for k in ("x", "y", "side")), cfg.pad, cfg, rec["output_info"]["frames"], again)
        assert again.read_bytes() == open(rec["output"], "rb").read()
    assert not list(tmp_path.rglob(".*.part*"))


@needs_yunet
def test_small_sources_are_analysed_then_encoded(clips, tmp_path):
    """Below 1080p the decode is cheap: no look, no shared decode (nothing to gain)."""
    rec = crop_video(clips["sar"], tmp_path, CropConfig.resolve("geneface", speech="off", size=64))
    assert rec["status"] == "ok" and "analysed" not in rec["window"] and "analyse" in rec["timings"]


@needs_shared
@needs_yunet
@pytest.mark.parametrize("name", ["latentsync_demo2_1080x1920_hevc.mp4", "sadtalker_WDA_KatieHill_512_mpeg4.mp4"])
def test_key_frames_place_the_window_the_whole_analysis_places(name, tmp_path):
    """On real talking heads (1080p HEVC with one key frame in 10 s; an all-intra MPEG-4) the
    key frames' window lies within the default tolerance of the analysed one."""
    from conftest import SHARED
    from prep.crop.analysis import analyse
    from prep.crop.plan import clip_geometry

    src = SHARED / "videos" / name
    if "hevc" in name:  # its first 10 s, copied: still one key frame
        src = tmp_path / name
        ffmpeg("-i", str(SHARED / "videos" / name), "-t", "10", "-map", "0", "-c", "copy", str(src))
    info = probe_video(src)
    cfg = CropConfig.resolve("geneface", speech="off", weights_dir=str(SHARED / "weights"))
    det = cached_detector(cfg.detector, cfg.weights_dir, max_side=None, score_threshold=cfg.score_threshold)
    look = provisional_window(info, cfg, det)
    analysed = tuple(int(v) for v in clip_geometry(info, cfg, analyse(info, cfg, det))["windows"][0])
    assert look is not None and close_enough(look, analysed, cfg.window_tolerance), (look, analysed)


@needs_shared
@needs_yunet
def test_speech_correction_moves_the_audio_of_the_kept_encode(tmp_path, any_size):
    """GeneFace++'s preset requires speech in sync: a clip whose audio is 160 ms late is kept
    with the key frames' window, its picture copied and its audio moved back onto the lips."""
    from conftest import SHARED, WEIGHTS
    from prep.speech.audio import read_pcm

    if not (WEIGHTS / "light_asd_pretrain_AVA_CVPR.model").is_file():
        pytest.skip(f"Light-ASD checkpoint not found in {WEIGHTS}")
    own, late = tmp_path / "own.mp4", tmp_path / "late.mp4"
    ffmpeg("-i", str(SHARED / "videos" / "latentsync_demo2_1080x1920_hevc.mp4"), "-t", "8", "-vf", "scale=360:640,fps=25,setsar=1", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(own))
    ffmpeg("-i", str(own), "-c:v", "copy", "-af", "adelay=160:all=1", "-c:a", "aac", str(late))
    cfg = CropConfig.resolve("geneface", size=128, window_tolerance=0.25, weights_dir=str(WEIGHTS))
    rec = crop_video(late, tmp_path / "out", cfg)
    assert rec["status"] == "ok", rec.get("message")
    assert rec["window"]["placed_by"] == "key frames" and rec["speech"]["corrected_ms"] > 100
    assert probe_video(rec["output"]).frame_count == rec["output_info"]["frames"]

    def loudness(path):  # 16 kHz mono on the output timeline, in 10 ms steps
        pcm = read_pcm(probe_video(path), 25.0, 0, 200).astype(np.float64)
        return np.log(np.mean(pcm[: len(pcm) // 160 * 160].reshape(-1, 160) ** 2, axis=1) + 1.0)

    a, b = loudness(own), loudness(rec["output"])
    a, b = a - a.mean(), b - b.mean()
    lags = list(range(-25, 26))
    lag = 10 * lags[int(np.argmax([np.dot(a[max(0, -k) : len(a) - max(0, k)], b[max(0, k) : len(b) - max(0, -k)]) for k in lags]))]
    assert abs(lag) <= 40, lag  # within a frame of the original (it was 160 ms late)
