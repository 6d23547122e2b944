"""prep pairs end to end: layouts, names, sizes, determinism across workers, resume, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from prep.cli import main

from conftest import SHARED, WEIGHTS, needs_shared


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file() and ".prep" not in p.parts}


def test_gpen_layout_names_sizes_and_params(faces_dir, tmp_path):
    out = tmp_path / "out"
    res = run("pairs", faces_dir, "-o", out, "--size", "128", "--scale", "4", "--val-fraction", "0.25", "--seed", "3")
    assert res.exit_code == 0, res.stderr
    for split in ("train", "val"):
        sharp = sorted(p.name for p in (out / split / "sharp").glob("*.png"))
        blurry = sorted(p.name for p in (out / split / "blurry").glob("*.png"))
        assert sharp == blurry  # a pair shares its name and extension
        for name in sharp:
            assert cv2.imread(str(out / split / "sharp" / name)).shape == (128, 128, 3)
            assert cv2.imread(str(out / split / "blurry" / name)).shape == (32, 32, 3)
    n_train = len(list((out / "train" / "sharp").glob("*.png")))
    n_val = len(list((out / "val" / "sharp").glob("*.png")))
    assert n_train + n_val == 8 and n_val >= 1
    lines = [json.loads(x) for x in (out / "degradations.jsonl").read_text().splitlines()]
    assert len(lines) == 8 and all(x["degradation"] == "bsrgan" and x["steps"] for x in lines)
    assert "8 " not in res.stderr


def test_same_seed_same_bytes_whatever_the_workers(faces_dir, tmp_path):
    args = ["pairs", faces_dir, "--size", "128", "--copies", "2", "--seed", "7", "--degrade", "realesrgan"]
    run(*args, "-o", tmp_path / "one", "--workers", "1")
    run(*args, "-o", tmp_path / "two", "--workers", "2")
    a, b = tree(tmp_path / "one"), tree(tmp_path / "two")
    assert a.keys() == b.keys() and len(a) == 8 * 2 * 2 + 1
    assert all(a[k] == b[k] for k in a)
    other = tree(tmp_path / "one")
    run(*args[:-2], "--seed", "8", "-o", tmp_path / "three")
    assert tree(tmp_path / "three")["train/blurry/000_0.png"] != other["train/blurry/000_0.png"]


def test_resume_skips_finished_photos(faces_dir, tmp_path):
    out = tmp_path / "out"
    run("pairs", faces_dir, "-o", out, "--size", "128")
    first = tree(out)
    marker = next((out / ".prep" / "pairs").glob("003.json"))
    marker.unlink()  # as if the run had been cut before this photo finished
    res = run("pairs", faces_dir, "-o", out, "--size", "128")
    assert "7 photos done before" in res.output
    assert tree(out) == first


def test_basicsr_options_load_and_point_at_pairs(faces_dir, tmp_path):
    out = tmp_path / "out"
    run("pairs", faces_dir, "-o", out, "--size", "128", "--scale", "2", "--layout", "basicsr", "--val-fraction", "0.3")
    opts = yaml.safe_load((out / "basicsr_options.yml").read_text())
    assert opts["scale"] == 2
    for split in ("train", "val"):
        ds = opts["datasets"][split]
        assert ds["type"] == "PairedImageDataset" and ds["io_backend"] == {"type": "disk"}
        gt, lq = Path(ds["dataroot_gt"]), Path(ds["dataroot_lq"])
        # BasicSR pairs by name: every GT file has an LQ file of the same name
        assert sorted(p.name for p in gt.iterdir()) == sorted(p.name for p in lq.iterdir())
    assert opts["datasets"]["train"]["gt_size"] <= 128


def test_gpen_native_layout(faces_dir, tmp_path):
    out = tmp_path / "out"
    run("pairs", faces_dir, "-o", out, "--size", "128", "--scale", "2", "--layout", "gpen-native", "--val-fraction", "0.3", "--copies", "3")
    train = sorted(p.name for p in (out / "train").glob("*.png"))
    hq = sorted(p.name for p in (out / "val" / "hq").glob("*.png"))
    lq = sorted(p.name for p in (out / "val" / "lq").glob("*.png"))
    assert train and hq == lq and len(hq) % 3 == 0
    assert not (out / "train" / "sharp").exists()  # GPEN degrades its training faces itself
    assert all(n.endswith("_0.png") for n in train)  # one sharp copy per face, not three
    checked = run("check", out)  # the scale is read from a record that has one (train's have no LQ)
    assert checked.exit_code == 0, checked.output


def test_what_a_killed_run_left_is_gone_when_the_next_starts(faces_dir, tmp_path):
    """A run killed outright (SIGKILL, the out-of-memory killer) cannot remove its temporaries;
    the next run into the same folder does, before it starts, and ends as an unbroken run."""
    out = tmp_path / "out"
    assert run("pairs", faces_dir, "-o", out, "--size", "64", "--seed", "3").exit_code == 0
    before = tree(out)
    (out / "train" / "sharp" / ".000.abcd1234.part.png").write_bytes(b"half a png")
    (out / ".sort.abcd1234.part").mkdir()
    (out / ".sort.abcd1234.part" / "run0").write_text("a sorted run\n")
    assert run("pairs", faces_dir, "-o", out, "--size", "64", "--seed", "3").exit_code == 0
    assert tree(out) == before and not list(out.rglob("*.part*"))


def test_other_settings_into_the_same_folder_leave_no_earlier_pair(faces_dir, tmp_path):
    """Run again into the same folder with other settings, a photo is done again and what the
    earlier settings wrote for it goes: no stray copy, and no photo in both train and val."""
    out = tmp_path / "out"
    assert run("pairs", faces_dir, "-o", out, "--size", "64", "--copies", "2", "--seed", "1", "--val-fraction", "0.5").exit_code == 0
    assert run("pairs", faces_dir, "-o", out, "--size", "64", "--seed", "2", "--val-fraction", "0.5").exit_code == 0
    names = {side: {p.name for p in (out / side / "sharp").glob("*.png")} for side in ("train", "val")}
    stems = {side: {n.split("_")[0] for n in names[side]} for side in names}
    assert not stems["train"] & stems["val"] and all("_" not in n for side in names for n in names[side]), names
    assert sum(len(v) for v in names.values()) == len(list(faces_dir.glob("*.png")))


def test_bad_files_are_reported_and_the_rest_goes_on(faces_dir, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for p in list(faces_dir.glob("*.png"))[:3]:
        (src / p.name).write_bytes(p.read_bytes())
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 nothing")
    (src / "notes.png").write_text("not an image")
    res = run("pairs", src, "-o", tmp_path / "out", "--size", "128")
    assert res.exit_code == 1
    assert sorted(l.split(":")[1].strip().split("/")[-1] for l in res.stderr.splitlines()) == ["broken.jpg", "notes.png"]
    assert "Traceback" not in res.stderr
    assert len(list((tmp_path / "out").rglob("sharp/*.png"))) == 3


@needs_shared
@pytest.mark.skipif(not WEIGHTS.is_dir(), reason="YuNet model not found")
def test_align_in_the_wild_photos(tmp_path):
    from prep.align import template
    from prep.detect import create_detector

    out = tmp_path / "out"
    res = run("pairs", SHARED / "images", "-o", out, "--align", "--size", "256", "--val-fraction", "0")
    assert res.exit_code == 0, res.stderr
    assert "face(s), all too small" in res.output and "no face found" in res.output  # reported, not failed
    names = sorted(p.name for p in (out / "train" / "sharp").glob("*.png"))
    assert len(names) >= 15
    assert "facerec__test__obama_and_biden_00.png" in names and "facerec__test__obama_and_biden_01.png" in names
    # a face the photo's edge cuts through is not mirrored into a training target (two half faces)
    assert not any(n.startswith("facerec__test_images__obama_partial_face") for n in names)
    edge = json.loads((out / ".prep" / "pairs" / "facerec__test_images__obama_partial_face.json").read_text())
    assert edge["status"] == "empty" and "face at the photo's edge" in edge["skipped_faces"][0]["reason"]
    assert "1 faces at the photo's edge" in res.output
    kept = [json.loads(m.read_text()) for m in (out / ".prep" / "pairs").glob("*.json")]
    assert max(p["outside"] for m in kept for p in m["pairs"]) > 0.1  # a background corner mirrored is kept, and said
    det = create_detector("yunet", str(WEIGHTS))
    errs = []
    for n in names[:10]:
        faces = det.detect(cv2.imread(str(out / "train" / "sharp" / n)))
        if faces:
            f = max(faces, key=lambda q: q.size)
            errs.append(np.abs(f.landmarks[:2] - template(256)[:2]).max())
    assert np.median(errs) < 6  # eyes land on the FFHQ template
    assert len(list((out / "train" / "blurry").glob("*.png"))) == len(names)


def test_tiers_write_sibling_sets(faces_dir, tmp_path):
    bad = run("pairs", faces_dir, "-o", tmp_path / "bad", "--tiers", "64,66", "--scale", "4")  # every size checked first
    assert bad.exit_code == 1 and "divisible by the scale 4, got 66" in bad.stderr and not (tmp_path / "bad").exists()
    out = tmp_path / "out"
    res = run("pairs", faces_dir, "-o", out, "--tiers", "64,128", "--scale", "2", "--val-fraction", "0.3", "--report", tmp_path / "run.json")
    assert res.exit_code == 0, res.stderr
    for size in (64, 128):  # each size's run has its report (one file for both kept only the last)
        rep = json.loads((tmp_path / f"run.{size}.json").read_text())
        assert rep["out"] == str(out / str(size)) and rep["summary"]["pairs"]["train"] > 0
    for size in (64, 128):
        names = sorted(p.name for p in (out / str(size) / "train" / "sharp").glob("*.png"))
        assert names and cv2.imread(str(out / str(size) / "train" / "sharp" / names[0])).shape[0] == size
        assert cv2.imread(str(out / str(size) / "train" / "blurry" / names[0])).shape[0] == size // 2
    # the same photos on the same side of the split at every size
    assert sorted(p.name for p in (out / "64/val/sharp").glob("*")) == sorted(p.name for p in (out / "128/val/sharp").glob("*"))
