"""`prep crop --split` on real footage: edits built here from the shared talking-head clips
(cut frames and audio tones known exactly) and PySceneDetect's own test footage."""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
import numpy as np
import pytest

from prep.config import CropConfig
from prep.crop import crop_video
from prep.probe import probe_video

from checks import TONES, frames_at, onsets, stream_facts
from conftest import SHARED, WEIGHTS, face_in, ffmpeg, isolated_env, needs_shared, needs_yunet

FPS = 25
FRAME = 1.0 / FPS
VIDEOS = SHARED / "videos"
A = VIDEOS / "latentsync_demo2_1080x1920_hevc.mp4"  # a man, upper body
B = VIDEOS / "sadtalker_WDA_KatieHill_512_mpeg4.mp4"  # a woman, close
C = VIDEOS / "videoretalking_1_700x700_vfr.mp4"  # another man, close
SQUARE = "scale=720:720:force_original_aspect_ratio=increase,crop=720:720,fps=25,setsar=1,format=yuv420p,settb=1/25"
TOP = SQUARE.replace("crop=720:720", "crop=720:720:0:0")  # A's head is in the top of its tall frame

pytestmark = [needs_shared, needs_yunet]


@pytest.fixture(scope="module")
def edits(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("edits")
    out = {}
    # A 3 s | hard cut at 3.00 s | B 3 s | 1 s crossfade 6.00-7.00 s | A again 3 s (10 s)
    out["cuts"] = d / "cuts.mp4"
    ffmpeg("-ss", "2", "-t", "3", "-i", str(A), "-ss", "1", "-t", "4", "-i", str(B), "-ss", "9", "-t", "4", "-i", str(A),
           "-f", "lavfi", "-t", "10", "-i", TONES, "-filter_complex",
           f"[0:v]{TOP}[a];[1:v]{SQUARE}[b];[2:v]{TOP}[c];[a][b]concat=n=2:v=1:a=0,settb=1/25[ab];[ab][c]xfade=transition=fade:duration=1:offset=6[v]",
           "-map", "[v]", "-map", "3:a", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(out["cuts"]))
    # two people side by side, 4 s
    out["side"] = d / "side.mp4"
    ffmpeg("-t", "4", "-i", str(B), "-t", "4", "-i", str(C), "-filter_complex",
           "[0:v]scale=512:512,fps=25,setsar=1[l];[1:v]scale=512:512,fps=25,setsar=1[r];[l][r]hstack,format=yuv420p[v]",
           "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", str(out["side"]))
    # a person leaving the frame: B's face slides out to the left from 2 s on, gone by about 3.2 s
    out["leaving"] = d / "leaving.mp4"
    ffmpeg("-t", "5", "-i", str(B), "-filter_complex",
           "[0:v]fps=25,pad=iw*3:ih:iw:0:black,crop=512:512:x='512+max(0\\,t-2)*500':y=0,format=yuv420p[v]",
           "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", str(out["leaving"]))
    return out


def run(src: Path, out: Path, preset: str = "default", **over) -> dict:
    cfg = CropConfig.resolve(preset, split=True, **({"size": 256, "speech": "off"} | over))
    rec = crop_video(src, out, cfg)
    assert rec["status"] in ("ok", "empty", "skipped"), rec.get("message")
    return rec


def kept(rec: dict) -> list[dict]:
    return [e for e in rec["segments"] if e["status"] == "kept"]


def tone_onsets(path: str | Path) -> list[float]:
    """Times (s from the clip's first video frame) where a tone starts in the clip's audio."""
    with av.open(str(path)) as c:
        v0 = float(c.streams.video[0].start_time * c.streams.video[0].time_base)
        a = c.streams.audio[0]
        chunks, t0 = [], None
        for frame in c.decode(a):
            if t0 is None:
                t0 = float(frame.pts * a.time_base)
            chunks.append(frame.to_ndarray().mean(axis=0) if frame.to_ndarray().ndim > 1 else frame.to_ndarray())
        rate = a.rate
    return [t0 - v0 + t for t in onsets(np.concatenate(chunks), rate)]


@pytest.fixture(scope="module")
def cuts_run(grouped_run) -> dict:
    """The cut edit's record from the grouped run (YuNet, 256 px, the speech check off): read
    by the shot checks and compared with HOG's."""
    return _item(grouped_run, "cuts")


def _item(grouped_run, stem: str) -> dict:
    out = grouped_run[0]
    return next(r for r in json.loads((out / "run.json").read_text())["items"] if Path(r["source"]).stem == stem)


def test_cuts_and_dissolve_give_one_clean_segment_per_shot(edits, cuts_run):
    rec = cuts_run
    source_tones = tone_onsets(edits["cuts"])
    assert len(source_tones) >= 8
    # shots: a cut at 3.00 s and a dissolve 6.00-7.00 s, found within a frame or two
    tr = rec["transitions"]
    assert [t["kind"] for t in tr] == ["cut", "dissolve"], tr
    assert abs(tr[0]["start"] - 3.0) <= 2 * FRAME
    assert tr[1]["start"] <= 6.0 + 2 * FRAME and tr[1]["end"] >= 7.0 - 2 * FRAME and tr[1]["end"] - tr[1]["start"] <= 1.6
    shots = rec["shots"]
    assert len(shots) == 3
    segs = kept(rec)
    assert {e["shot"] for e in segs} == {0, 1, 2}, rec["segments"]
    for e in segs:
        a, b = shots[e["shot"]]
        assert a - 2 * FRAME <= e["source_start"] < e["source_end"] <= b + 2 * FRAME
        assert e["source_end"] <= 6.0 + FRAME or e["source_start"] >= 7.0 - FRAME  # no blended frame
        assert re.fullmatch(r"cuts__s\d\d_t\d\d(_p\d\d)?\.mp4", Path(e["output"]).name)
        report = json.loads(Path(e["report"]).read_text())
        for k in ("source", "source_start", "source_end", "shot", "track", "window", "face_scale", "padding", "blur", "pose"):
            assert k in report
        assert report["pose"]["measured"] and abs(report["pose"]["median"]["yaw"]) < 30
        # the blur the report lists is the planner's verdict on the whole track, which cut blurred frames out
        assert report["blur"]["blurred_frames"] == [] and len(report["blur"]["scores"]) == round((e["source_end"] - e["source_start"]) * 25)
        check_clip(e["output"], 256, e["source_end"] - e["source_start"])
        # audio in sync: the edit's tones sit at the same instants in the clip
        want = [t - e["source_start"] for t in source_tones if e["source_start"] + 0.02 <= t < e["source_end"] - 0.1]
        got = tone_onsets(e["output"])
        assert len(got) == len(want), (got, want)
        assert np.max(np.abs(np.array(got) - np.array(want))) <= FRAME, (got, want)


def check_clip(path: str, size: int, duration: float) -> None:
    """Square, unstretched, one face, centred."""
    facts = stream_facts(path)
    assert (facts["width"], facts["height"], facts["sar"]) == (size, size, 1)
    info = probe_video(path)
    assert abs(info.duration - duration) <= FRAME + 1e-6
    times = [duration * k / 6 for k in (1, 3, 5)]
    for img in frames_at(path, times):
        faces = face_in(img)
        assert len(faces) == 1, f"{path}: {len(faces)} faces"
        cx, cy = faces[0].center
        assert max(abs(cx - size / 2), abs(cy - size / 2)) <= 0.08 * size, (path, cx, cy)


def test_two_people_side_by_side_give_two_segments(grouped_run):
    rec = _item(grouped_run, "side")
    segs = kept(rec)
    assert len(segs) == 2 and {e["track"] for e in segs} == {0, 1}, rec["segments"]
    for e in segs:
        check_clip(e["output"], 256, e["source_end"] - e["source_start"])


def test_hallo_one_face_rule_is_about_the_output_window(edits, tmp_path):
    """Hallo wants one face per frame: two people far apart still give two clean segments."""
    rec = run(edits["side"], tmp_path, "hallo")
    assert len(kept(rec)) == 2, rec["segments"]


def test_person_leaving_the_frame_ends_the_segment(edits, tmp_path):
    rec = run(edits["leaving"], tmp_path)
    segs = kept(rec)
    assert len(segs) == 1, rec["segments"]
    # the face is whole until about 2.3 s and gone by 3.2 s
    assert 2.0 <= segs[0]["source_end"] <= 3.3, segs[0]


def test_no_usable_face_gives_no_segment_and_says_why(tmp_path):
    rec = run(SHARED / "shots" / "testvideo.mp4", tmp_path)
    assert rec["status"] == "empty" and not kept(rec)
    assert "no face" in rec["reason"]
    assert len(rec["shots"]) >= 4  # cuts near 1.0 and 6.0 s and fades
    assert any(abs(c["start"] - 1.0) <= 2 * FRAME for c in rec["transitions"])


def test_real_film_cuts_and_two_faces(tmp_path):
    """PySceneDetect's goldeneye clip: cuts at about 3.75 and 8.76 s; the last shot (1.2 s)
    holds two real faces side by side: two tracks, neither usable (the shot is shorter than
    2 s; one man looks away)."""
    rec = run(SHARED / "shots" / "goldeneye-vfr-drop3.mp4", tmp_path)
    cuts = [t["start"] for t in rec["transitions"] if t["kind"] == "cut"]
    assert len(cuts) == 2 and abs(cuts[0] - 3.75) <= 2 * FRAME and abs(cuts[1] - 8.76) <= 2 * FRAME, rec["transitions"]
    last = [e for e in rec["segments"] if e["shot"] == 2]
    assert len({e["track"] for e in last}) == 2 and all(e["status"] == "rejected" and e["reason"] in ("too_short", "pose") for e in last), last


@pytest.fixture(scope="module")
def grouped_run(edits, tmp_path_factory):
    """One `crop --split` CLI run over the cut and side-by-side edits with the default preset
    (the speech check off: measured, it leaves the segments as they are, and tests/test_speech.py
    runs it end to end) and, with prep[identity], `--group-by person`; then the same command
    again. Returns (output folder, arguments, first result, second result, mp4 mtimes between)."""
    from click.testing import CliRunner

    from prep.cli import main
    from prep.identity import unavailable

    out = tmp_path_factory.mktemp("grouped") / "out"
    args = ["crop", str(edits["cuts"]), str(edits["side"]), "--split", "--size", "256", "--speech", "off", "-o", str(out), "--report", str(out / "run.json")]
    if unavailable() is None:
        args += ["--group-by", "person"]
    with isolated_env(tmp_path_factory):
        first = CliRunner().invoke(main, args)
        mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")}
        again = CliRunner().invoke(main, args)
    return out, args, first, again, mtimes


def test_resume_and_review_page(grouped_run):
    out, _, res, again, mtimes = grouped_run
    assert res.exit_code == 0, res.output
    run_rep = json.loads((out / "run.json").read_text())
    page = (out / "report.html").read_text()
    for item in run_rep["items"]:
        assert item["shots"] and item["segments"]
        for e in item["segments"]:
            assert f"id='{e['segment']}'" in page
            if e["status"] == "rejected":
                assert e["reason"] in page
    for src in re.findall(r"src='([^']+)'", page):
        assert (out / src).is_file(), src
    assert "<svg" in page and "http" not in page.replace("http-equiv", "")
    assert mtimes and again.exit_code == 0 and again.output.count("skip ") == 2, again.output
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")} == mtimes


def test_without_split_cuts_are_reported_and_fixed_window_fails(edits, tmp_path):
    rec = crop_video(edits["cuts"], tmp_path, CropConfig.resolve("geneface", size=256, speech="off"))
    assert rec["status"] == "error" and "--split" in rec["message"] and "3.00 s" in rec["message"], rec
    rec = crop_video(edits["cuts"], tmp_path, CropConfig.resolve("default", size=256, speech="off"))
    assert rec["status"] == "ok" and len(rec["shots"]) == 3
    assert any("--split" in w for w in rec["warnings"])


@pytest.fixture(scope="module")
def hog_tiers_run(edits, tmp_path_factory) -> tuple[Path, dict]:
    """The cut edit with the embedded HOG detector at two sizes (--tiers): what the detector
    and the tiers tests check, from one run (the sizes do not touch the segments)."""
    out = tmp_path_factory.mktemp("hog_tiers")
    with isolated_env(tmp_path_factory):  # a module fixture runs before the per-test environment
        return out, run(edits["cuts"], out, detector="hog", tiers=(64, 128))


def test_segments_do_not_depend_on_the_detector(cuts_run, hog_tiers_run):
    """The embedded HOG detector (no landmarks, so no pose) keeps the same shots' segments as YuNet."""
    y = cuts_run
    h = hog_tiers_run[1]
    assert y["detector"]["name"] == "yunet" and h["detector"]["name"] == "hog"
    assert h["shots"] == y["shots"]
    assert {e["shot"] for e in kept(h)} == {e["shot"] for e in kept(y)} == {0, 1, 2}
    for a, b in zip(sorted(kept(h), key=lambda e: e["shot"]), sorted(kept(y), key=lambda e: e["shot"])):
        assert abs(a["source_end"] - b["source_end"]) <= 0.5 and abs(a["source_start"] - b["source_start"]) <= 1.0, (a, b)


# ---- one person: --person and --group-by person on segments -----------------------------

needs_identity = pytest.mark.skipif(__import__("prep.identity", fromlist=["unavailable"]).unavailable() is not None, reason="prep[identity] not installed")


@pytest.fixture(scope="module")
def person_a(tmp_path_factory) -> Path:
    """A reference photo of A taken from a part of A's clip that no edit uses (17 s in)."""
    p = tmp_path_factory.mktemp("ref") / "a.png"
    ffmpeg("-ss", "17", "-i", str(A), "-frames:v", "1", str(p))  # seeks: decodes from the key frame before 17 s only
    return p


@needs_identity
def test_split_person_keeps_only_that_persons_segments(edits, person_a, tmp_path, monkeypatch):
    """The segments' faces are identified, and the speech model's face crops cut, from the
    analysis pass's frames: nothing is decoded a second time."""
    from prep import identity
    from prep.detect import create_detector
    from prep.identity import load_reference
    from prep.speech import track as sp

    monkeypatch.setattr(identity, "identify_tracks", lambda *a, **k: pytest.fail("decoded the footage again for identity"))
    for name in ("tracks_embeddings", "face_embeddings"):
        monkeypatch.setattr(sp, name, lambda *a, **k: pytest.fail("decoded the footage again for the speech check"))

    ref = load_reference([person_a], create_detector("yunet", str(SHARED / "weights")))
    speech = "measure" if (WEIGHTS / "light_asd_pretrain_AVA_CVPR.model").is_file() else "off"
    rec = run(edits["cuts"], tmp_path, person=ref, speech=speech)
    segs = kept(rec)
    if speech == "measure":  # (the edit's audio is tones: measured, and nobody speaks)
        assert all(e["speech"]["measured"] and e["speech"]["speaking"] < 0.4 for e in segs), [e["speech"] for e in segs]
    assert {e["shot"] for e in segs} == {0, 2}, rec["segments"]  # A's shots; B's is left out
    assert all(e["person"]["matched"] and e["person"]["similarity"] >= ref.threshold for e in segs)
    other = [e for e in rec["segments"] if e.get("reason") == "other_person"]
    assert other and {e["shot"] for e in other} == {1} and all(e["person"]["similarity"] < ref.threshold for e in other)
    report = json.loads(Path(segs[0]["report"]).read_text())
    assert report["person"]["similarity"] == segs[0]["person"]["similarity"]


@needs_identity
def test_split_group_by_person_puts_each_persons_segments_in_one_folder(grouped_run):
    out, args, res, again, _ = grouped_run
    assert "--group-by" in args and res.exit_code == 0, res.output
    assert ".prep/staging" not in res.output  # it names no place a clip only passes through
    items = {Path(r["source"]).stem: r for r in json.loads((out / "run.json").read_text())["items"]}
    group = {}
    for stem, r in items.items():
        for e in kept({**r}):
            assert Path(e["output"]).is_file() and Path(e["output"]).parent.parent == out and e["person_group"] in e["output"]
            group[(stem, e["shot"], e["track"])] = e["person_group"]
    # A is in shots 0 and 2 of the cut edit; B in shot 1 and on the left of the side-by-side edit; C on its right
    a = {group[("cuts", 0, 0)], group[("cuts", 2, 0)]}
    side = {(e["track"], e["person_group"]) for e in kept(items["side"])}
    assert len(a) == 1
    b = group[("cuts", 1, 0)]
    assert b not in a and b in {g for _, g in side}
    assert len(set(group.values())) == 3, group
    for g in set(group.values()):
        assert (out / g / "sheet.png").is_file()
    for r in items.values():  # a moved segment's report names its clip's and its own new places
        for e in kept(r):
            report = json.loads(Path(e["report"]).read_text())
            assert (report["output"], report["report"]) == (e["output"], e["report"]) and Path(report["output"]).is_file()
    assert not list((out / ".prep" / "staging").rglob("*.mp4"))
    # the second run found everything done and in place
    assert again.exit_code == 0 and again.output.count("skip ") == 2, again.output
    for (stem, shot, track), g in group.items():
        assert list((out / g).glob(f"{stem}__s{shot:02d}_t{track:02d}*.mp4"))
    # a run over fewer sources would number persons afresh beside the earlier run's folders
    # (one person_NN could then hold two people): refused up front, naming the missing source
    from click.testing import CliRunner

    from prep.cli import main

    fewer = CliRunner().invoke(main, [a for a in args if a != args[2]])  # the side-by-side edit left out
    assert fewer.exit_code != 0 and "side" in fewer.output and "earlier run" in fewer.output, fewer.output


def test_a_clip_is_placed_in_the_layout_however_out_was_named(tmp_path, monkeypatch):
    """An earlier run may have named OUT relatively and this one absolutely (or the other way):
    a clip's place in the layout is the same."""
    from prep.crop.group import relative_to_layout_root

    monkeypatch.chdir(tmp_path)
    for clip in (Path("out/.prep/staging/videos/a__s00_t00.mp4"), Path("out/person_01/videos/a__s00_t00.mp4")):
        for out in (Path("out"), tmp_path / "out"):
            for path in (clip, tmp_path / clip):
                assert relative_to_layout_root(path, out) == Path("videos/a__s00_t00.mp4")


def test_split_tiers_same_segments_at_every_size_from_one_analysis(edits, hog_tiers_run):
    """--split --tiers: each kept segment at every size (OUT/<size>/...), the same segments in
    each, from the one analysis; a rerun skips the source."""
    tmp_path, rec = hog_tiers_run
    kept = [e for e in rec["segments"] if e["status"] == "kept"]
    assert kept and all([t["size"] for t in e["tiers"]] == [64, 128] for e in kept)
    for size in (64, 128):
        names = sorted(p.name for p in (tmp_path / str(size)).glob("*.mp4"))
        assert names == sorted(Path(e["tiers"][0]["output"]).name for e in kept)
        for p in (tmp_path / str(size)).glob("*.mp4"):
            info = probe_video(p)
            assert (info.display_width, info.display_height) == (size, size)
    assert sorted(rec["outputs"]) == sorted(t["output"] for e in kept for t in e["tiers"])
    again = run(edits["cuts"], tmp_path, detector="hog", tiers=(64, 128))
    assert again["status"] == "skipped"
