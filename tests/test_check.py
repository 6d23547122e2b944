"""prep check: a set written by prep passes; every planted defect is caught."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from prep.cli import main
from prep.layouts import PAIR_LAYOUTS

from conftest import WEIGHTS, ffmpeg


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def problems(path: Path, *extra: str) -> tuple[int, list[dict]]:
    res = run("check", path, "--json", *extra)
    return res.exit_code, json.loads(res.stdout)["problems"]


@pytest.fixture(scope="module")
def pair_set(faces_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pairset") / "set"
    res = run("pairs", faces_dir, "-o", out, "--size", "128", "--scale", "2", "--val-fraction", "0.3", "--seed", "1")
    assert res.exit_code == 0
    return out


def test_prep_pair_set_passes(pair_set, tmp_path):
    code, probs = problems(pair_set)
    assert code == 0 and [p for p in probs if p["level"] == "error"] == []
    s = tmp_path / "set"  # what a file browser leaves in a folder is no orphan image
    shutil.copytree(pair_set, s)
    for name in (".DS_Store", "Thumbs.db"):
        (s / "train" / "blurry" / name).write_bytes(b"\x00" * 64)
    code, probs = problems(s)
    assert code == 0 and [p for p in probs if p["level"] == "error"] == []


def _first(d: Path) -> Path:
    return sorted(d.glob("*.png"))[0]


def _plant_16bit(s: Path) -> Path:
    f = _first(s / "train/sharp")
    cv2.imwrite(str(f), cv2.imread(str(f)).astype(np.uint16) * 257)
    return f


def _plant_rgba(s: Path) -> Path:
    f = _first(s / "train/sharp")
    img = cv2.imread(str(f))
    cv2.imwrite(str(f), np.dstack([img, np.full(img.shape[:2], 255, np.uint8)]))
    return f


def _plant_missing(s: Path) -> Path:
    f = _first(s / "train/sharp")
    (s / "train/blurry" / f.name).unlink()
    return f


def _plant_ext(s: Path) -> Path:
    f = _first(s / "train/sharp")
    lq = s / "train/blurry" / f.name
    lq.rename(lq.with_suffix(".jpg"))
    return f


def _plant_scale(s: Path) -> Path:
    f = _first(s / "train/blurry")
    cv2.imwrite(str(f), cv2.resize(cv2.imread(str(f)), (50, 50)))
    return f


def _plant_garbage(s: Path) -> Path:
    f = _first(s / "train/sharp")
    f.write_bytes(b"garbage" * 10)
    return f


def _plant_empty(s: Path) -> Path:
    f = _first(s / "train/sharp")
    f.write_bytes(b"")
    return f


def _plant_constant(s: Path) -> Path:
    f = _first(s / "train/sharp")
    cv2.imwrite(str(f), np.full((128, 128, 3), 128, np.uint8))
    return f


def _plant_black(s: Path) -> Path:
    f = _first(s / "train/sharp")
    cv2.imwrite(str(f), np.random.default_rng(0).integers(0, 6, (128, 128, 3), dtype=np.uint8))
    return f


def _plant_nan(s: Path) -> Path:
    img = np.random.default_rng(0).random((128, 128, 3)).astype(np.float32)
    img[5, 5, 0] = np.nan
    f = s / "train/sharp/zz_nan.tiff"
    cv2.imwrite(str(f), img)
    cv2.imwrite(str(s / "train/blurry/zz_nan.tiff"), np.zeros((64, 64, 3), np.uint8) + 100)
    return f


def _plant_leak(s: Path) -> Path:
    f = _first(s / "train/sharp")
    shutil.copy(f, s / "val/sharp" / ("copy_" + f.name))
    shutil.copy(s / "train/blurry" / f.name, s / "val/blurry" / ("copy_" + f.name))
    return s / "val/sharp" / ("copy_" + f.name)


@pytest.mark.parametrize(
    "plant, expect",
    [
        (_plant_garbage, "does not decode"),
        (_plant_empty, "empty file"),
        (_plant_16bit, "16-bit"),
        (_plant_rgba, "alpha channel"),
        (_plant_missing, "partner"),
        (_plant_ext, "extensions must match"),
        (_plant_scale, "does not match"),
        (_plant_constant, "constant image"),
        (_plant_black, "near-black"),
        (_plant_nan, "NaN"),
        (_plant_leak, "the same image is in train"),
    ],
)
def test_planted_pair_defects(pair_set, tmp_path, plant, expect):
    s = tmp_path / "set"
    shutil.copytree(pair_set, s)
    f = plant(s)
    code, probs = problems(s)
    assert code == 1
    hits = [p for p in probs if expect in p["problem"] and p["level"] == "error"]
    assert hits, probs
    assert any(Path(p["file"]).name in (f.name, f.with_suffix(".jpg").name) or Path(p["file"]) == f for p in hits) or expect == "extensions must match"
    assert all(p["fix"] for p in probs)


def test_planted_grey_image_is_a_warning(pair_set, tmp_path):
    """Greyscale is not 8-bit RGB, but trainers that read with colour conversion cope: warn, pass."""
    s = tmp_path / "set"
    shutil.copytree(pair_set, s)
    f = _first(s / "train/sharp")
    cv2.imwrite(str(f), cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2GRAY))
    code, probs = problems(s)
    assert code == 0
    assert [p for p in probs if p["level"] == "warning" and "greyscale" in p["problem"] and Path(p["file"]) == f], probs


def test_an_image_set_needs_no_detector(pair_set, tmp_path, monkeypatch):
    """--detector yunet without its model: an image set is still checked (it uses none)."""
    monkeypatch.setenv("PREP_WEIGHTS_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("PREP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PREP_OFFLINE", "1")
    res = run("check", pair_set, "--detector", "yunet")
    assert res.exit_code == 0 and "0 errors" in res.output, res.output
    videos = tmp_path / "hallo" / "videos"  # a video set does need it: one line, not an error per clip
    videos.mkdir(parents=True)
    for name in ("a.mp4", "b.mp4"):
        (videos / name).write_bytes(b"x")
    res = CliRunner().invoke(main, ["check", str(videos.parent), "--detector", "yunet"])
    assert res.exit_code == 1 and res.stderr.startswith("prep: detector 'yunet' unavailable") and "a.mp4" not in res.stdout, (res.stdout, res.stderr)


def test_table_output_and_guess(pair_set):
    res = run("check", pair_set)
    assert res.exit_code == 0 and "layout gpen" in res.output and res.output.strip().endswith("0 errors, 0 warnings")


@pytest.mark.parametrize("layout", ["basicsr", "gpen-native"])
def test_what_breaks_the_trainers_own_readers_is_an_error(faces_dir, tmp_path, layout):
    """BasicSR and GPEN's own trainer read every file of their folders and need a val set:
    a stray Thumbs.db (counted as an image) or an empty val set (GPEN divides by its size from
    the first step; BasicSR's options name its folders) fails the check, not only warns."""
    out = tmp_path / layout
    res = run("pairs", faces_dir, "-o", out, "--size", "64", "--layout", layout, "--val-fraction", "0")
    assert res.exit_code == 0 and "warning: no val pairs" in res.stderr
    code, probs = problems(out)
    assert code == 1 and any(p["level"] == "error" and "no val images" in p["problem"] for p in probs), probs
    train = out / PAIR_LAYOUTS[layout].train_hq
    (train / "Thumbs.db").write_bytes(b"\x00" * 64)
    code, probs = problems(out)
    assert any(p["level"] == "error" and "not an image" in p["problem"] and p["file"] == str(train / "Thumbs.db") for p in probs), probs


@pytest.mark.parametrize("damage, expect", [
    ("degradations.jsonl", "line 1 is not JSON"),
    ("scale: [4]", "scale [4] is not a whole number"),
    ("scale: 0", "scale 0 is not a whole number"),
])
def test_a_damaged_scale_record_is_one_error(pair_set, tmp_path, damage, expect):
    s = tmp_path / "set"
    shutil.copytree(pair_set, s)
    if damage == "degradations.jsonl":
        (s / damage).write_text("{not json\n")
    else:
        (s / "basicsr_options.yml").write_text(damage + "\n")
    code, probs = problems(s)
    assert code == 1 and any(p["level"] == "error" and expect in p["problem"] for p in probs), probs


# ---- video sets ----------------------------------------------------------------------------

needs_yunet = pytest.mark.skipif(not WEIGHTS.is_dir(), reason="YuNet model not found in shared/data/weights")


@pytest.fixture(scope="module")
def hallo_set(clips, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hallo") / "set"
    res = run("crop", clips["short"], "-o", out, "--preset", "hallo", "--speech", "off")  # the sample speaks no words
    assert res.exit_code == 0, res.stderr
    return out


def _video_plants(good: Path, d: Path) -> dict[str, tuple[Path, str]]:
    g = str(good)
    made = {
        "non_square": (["-vf", "scale=512:400,setsar=1"], "not square"),
        "wrong_size": (["-vf", "scale=256:256,setsar=1"], "the layout needs 512x512"),
        "fps30": (["-r", "30"], "30 fps"),
        "sar": (["-vf", "setsar=4/3"], "non-square pixels"),
        "vfr": (["-vf", "select='not(eq(mod(n\\,3)\\,2))'", "-fps_mode", "vfr"], "variable frame rate"),
        "no_audio": (["-an"], "no audio track"),
        "two_faces": (["-filter_complex", "[0:v]split[a][b];[b]scale=200:200[s];[a][s]overlay=0:0"], "several faces"),
        "small_face": (["-vf", "scale=200:200,pad=512:512:156:156,setsar=1"], "face box is"),
    }
    out = {}
    for name, (args, expect) in made.items():
        p = d / f"{name}.mp4"
        ffmpeg("-i", g, "-t", "2", *args, "-c:v", "libx264", "-preset", "ultrafast", *([] if "-an" in args else ["-c:a", "aac"]), str(p))
        out[name] = (p, expect)
    p = d / "no_face.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=512x512:rate=25", "-i", g, "-t", "2", "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(p))
    out["no_face"] = (p, "no face")
    return out


@needs_yunet
def test_prep_video_set_passes_and_planted_defects_are_caught(hallo_set, tmp_path):
    code, probs = problems(hallo_set)
    assert code == 0 and not [p for p in probs if p["level"] == "error"], probs
    good = next((hallo_set / "videos").glob("*.mp4"))
    plants = _video_plants(good, tmp_path)
    for name, (clip, expect) in plants.items():
        s = tmp_path / f"set_{name}" / "videos"
        s.mkdir(parents=True)
        shutil.copy(clip, s / clip.name)
        code, probs = problems(s.parent, "--layout", "hallo")
        assert code == 1, (name, probs)
        assert any(expect in p["problem"] and p["level"] == "error" for p in probs), (name, probs)
    s = tmp_path / "set_suffix" / "videos"  # Hallo keeps only suffix == ".mp4": the others would be skipped silently
    s.mkdir(parents=True)
    for name in ("good.mp4", "upper.MP4", "other.mov"):
        shutil.copy(good, s / name)
    code, probs = problems(s.parent, "--layout", "hallo")
    wrong = {Path(p["file"]).name for p in probs if p["level"] == "error" and "reads only .mp4" in p["problem"]}
    assert code == 1 and wrong == {"upper.MP4", "other.mov"}, probs


@needs_yunet
def test_a_flat_folder_of_clips_passes_as_flat(hallo_set, tmp_path):
    """The default and latentsync presets write a flat folder of clips (OUT/<name>.mp4, any
    square size): its check is guessed and passes (it could not be checked at all: no layout
    for it). The hallo set's clip folder is such a folder."""
    flat = hallo_set / "videos"
    code, probs = problems(flat)
    assert code == 0 and not [p for p in probs if p["level"] == "error"], probs
    assert "layout flat" in run("check", flat).output


@needs_yunet
def test_geneface_short_clip_is_only_a_warning(clips, tmp_path):
    out = tmp_path / "g"
    assert run("crop", clips["short"], "-o", out, "--preset", "geneface", "--speech", "off").exit_code == 0
    code, probs = problems(out)
    assert code == 0
    assert any(p["level"] == "warning" and "at least 60 s" in p["problem"] for p in probs)
