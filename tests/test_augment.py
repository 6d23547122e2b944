"""prep augment: same seed same bytes, pairs stay aligned, dfl keeps geometry, presets validated."""

from __future__ import annotations

import json

from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from prep.augment import AugmentConfig, build
from prep.cli import main
from prep.errors import PrepError

pytestmark = pytest.mark.same_everywhere  # CI's fresh pass leaves it to the first (conftest.py)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*.png"))}


def test_dfl_same_seed_same_bytes_and_names(faces_dir, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert run("augment", faces_dir, "-o", a, "--copies", "3", "--seed", "5").exit_code == 0
    assert run("augment", faces_dir, "-o", b, "--copies", "3", "--seed", "5", "--workers", "2").exit_code == 0
    run("augment", faces_dir, "-o", c, "--copies", "3", "--seed", "6")
    ta, tb = tree(a), tree(b)
    assert ta == tb and len(ta) == 24
    assert "000__aug0.png" in ta and "007__aug2.png" in ta
    assert tree(c) != ta
    # a rerun with other settings into the same folder is refused (its finished files would be
    # skipped, and the run would report a seed they were not made with); the same settings skip
    again = run("augment", faces_dir, "-o", a, "--copies", "3", "--seed", "6")
    assert again.exit_code == 1 and "holds augmentations made with other settings (preset dfl, seed 5)" in again.stderr
    assert run("augment", faces_dir, "-o", a, "--copies", "3", "--seed", "5").exit_code == 0 and tree(a) == ta
    assert run("augment", faces_dir, "-o", tmp_path / "d", "--seed", "-1").exit_code == 0  # any integer seed, as pairs takes
    (tmp_path / "d" / ".prep" / "augment.json").unlink()  # a folder an earlier prep wrote: its settings are not known
    again = run("augment", faces_dir, "-o", tmp_path / "d", "--seed", "-1")
    assert again.exit_code == 1 and "settings were not recorded" in again.stderr


def test_dfl_changes_colour_not_geometry(faces_dir, tmp_path):
    run("augment", faces_dir, "-o", tmp_path, "--copies", "4", "--seed", "1")
    src = cv2.imread(str(faces_dir / "000.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    changed = 0
    for k in range(4):
        out = cv2.imread(str(tmp_path / f"000__aug{k}.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32)
        # same structure: edges in the same places (correlation of gradients), whatever the colour
        gs, go = cv2.Sobel(src, cv2.CV_32F, 1, 0), cv2.Sobel(out, cv2.CV_32F, 1, 0)
        assert np.corrcoef(gs.ravel(), go.ravel())[0, 1] > 0.85
        changed += int(np.abs(out - src).mean() > 1.0)
    assert changed >= 2


@pytest.mark.parametrize("scale", [1, 2])
def test_pairs_stay_aligned(faces_dir, tmp_path, scale):
    src = tmp_path / "src"
    for d in ("train/sharp", "train/blurry"):
        (src / d).mkdir(parents=True)
    for p in sorted(faces_dir.glob("*.png"))[:4]:
        hq = cv2.imread(str(p))
        lq = cv2.resize(hq, (128 // scale, 128 // scale), interpolation=cv2.INTER_AREA) if scale > 1 else cv2.GaussianBlur(hq, (0, 0), 1.5)
        cv2.imwrite(str(src / "train/sharp" / p.name), hq)
        cv2.imwrite(str(src / "train/blurry" / p.name), lq)
    out = tmp_path / "out"
    res = run("augment", src, "-o", out, "--preset", "pairs", "--copies", "4", "--seed", "2")
    assert res.exit_code == 0, res.stderr
    names = sorted(p.name for p in (out / "train/sharp").glob("*.png"))
    assert names == sorted(p.name for p in (out / "train/blurry").glob("*.png")) and len(names) == 16
    for n in names:
        hq = cv2.imread(str(out / "train/sharp" / n)).astype(np.float32)
        lq = cv2.imread(str(out / "train/blurry" / n)).astype(np.float32)
        assert lq.shape[0] == 128 // scale
        ref = cv2.resize(hq, (lq.shape[1], lq.shape[0]), interpolation=cv2.INTER_AREA) if scale > 1 else cv2.GaussianBlur(hq, (0, 0), 1.5)
        a = cv2.cvtColor(ref, cv2.COLOR_BGR2GRAY)
        b = cv2.cvtColor(lq, cv2.COLOR_BGR2GRAY)
        (dx, dy), _ = cv2.phaseCorrelate(a, b)
        assert np.hypot(dx, dy) < 0.5, (n, dx, dy)
        assert np.abs(a - b)[4:-4, 4:-4].mean() < 6  # same geometry and the same colour change


def test_an_augmented_basicsr_set_trains_on_the_augmented_pairs_and_validates_on_the_source(faces_dir, tmp_path):
    """The README's BasicSR recipe (pairs --layout basicsr, then augment --preset pairs) ends
    with options BasicSR can load: train on the augmented pairs, val on the source's own."""
    import yaml

    src = tmp_path / "sr"
    assert run("pairs", faces_dir, "-o", src, "--size", "64", "--scale", "2", "--layout", "basicsr", "--val-fraction", "0.5").exit_code == 0
    out = tmp_path / "sr_aug"
    res = run("augment", src, "-o", out, "--preset", "pairs")
    assert res.exit_code == 0 and "BasicSR options" in res.output, res.output
    doc = yaml.safe_load((out / "basicsr_options.yml").read_text())
    given = yaml.safe_load((src / "basicsr_options.yml").read_text())
    train, val = doc["datasets"]["train"], doc["datasets"]["val"]
    assert (train["dataroot_gt"], train["dataroot_lq"]) == (str((out / "train/sharp").resolve()), str((out / "train/blurry").resolve()))
    assert val == given["datasets"]["val"] and Path(val["dataroot_gt"]).is_dir()
    assert doc["scale"] == 2 and train["gt_size"] == given["datasets"]["train"]["gt_size"]
    res = run("check", out, "--json")  # checked where the options point: train here, val in the source
    assert res.exit_code == 0 and json.loads(res.stdout)["facts"]["val_pairs"] == len(list((src / "val/sharp").glob("*.png"))) > 0, res.stdout


def test_each_transform_draws_on_its_own(monkeypatch):
    """Whether each transform applies is its own draw: all 16 combinations of the pairs preset's
    four transforms occur (seeding each transform alike gave 3: a flip never came without the
    affine, a colour change never without both)."""
    import collections

    from prep.augment import augment_item

    cfg = AugmentConfig.resolve("pairs", 1, 0)
    compose = build(cfg)
    fired: list[int] = []
    for t in compose.transforms:
        monkeypatch.setattr(t, "should_apply", (lambda orig: lambda force_apply=False: fired.append(int(orig(force_apply=force_apply))) or bool(fired[-1]))(t.should_apply))
    written = []
    monkeypatch.setattr("prep.augment.write_png", lambda dest, img: written.append(dest))
    monkeypatch.setattr("prep.augment.read_image", lambda path: np.full((32, 32, 3), 128, np.uint8))
    combos = collections.Counter()
    for i in range(400):  # the rarest combination, (0, 0, 1, 1), has a chance of 0.5 * 0.5 * 0.3 * 0.3
        fired.clear()
        rec = augment_item(f"/in/x{i}.png", "/nowhere", cfg, lq_src=f"/in/lq{i}.png", rel="train")
        assert rec["status"] == "ok", rec
        combos[tuple(fired)] += 1
    assert len(combos) == 16, combos


def test_presets_are_validated(tmp_path):
    for name in ("dfl", "pairs"):
        build(AugmentConfig.resolve(name))
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "augmentation"\n[[transform]]\nname = "RandomShadow"\nnum_shadows_lower = 1\n')
    with pytest.raises(PrepError, match="RandomShadow"):
        AugmentConfig.resolve(str(bad))
    bad.write_text('kind = "augmentation"\n[[transform]]\nname = "NoSuchTransform"\n')
    with pytest.raises(PrepError, match="unknown albumentations transform"):
        AugmentConfig.resolve(str(bad))
    with pytest.raises(PrepError, match="not an augmentation preset"):
        AugmentConfig.resolve("bsrgan")
    # albumentations 2's dict-valued arguments are tables in TOML: they reach it as dicts
    good = tmp_path / "tables.toml"
    good.write_text('kind = "augmentation"\n[[transform]]\nname = "Affine"\np = 1.0\ntranslate_percent = {x = [-0.2, 0.2], y = [0, 0]}\nscale = {x = [0.9, 1.1], y = [1.0, 1.0]}\n')
    cfg = AugmentConfig.resolve(str(good))
    affine = build(cfg).transforms[0]
    assert affine.translate_percent == {"x": (-0.2, 0.2), "y": (0.0, 0.0)} and affine.scale == {"x": (0.9, 1.1), "y": (1.0, 1.0)}
    import pickle

    assert pickle.loads(pickle.dumps(cfg)) == cfg and hash(cfg) == hash(pickle.loads(pickle.dumps(cfg)))


def test_files_of_the_same_name_get_outputs_of_their_own(faces_dir, tmp_path):
    """a.jpg beside a.png, and a manifest listing x/0001.png and y/0001.png with ids: each
    source gets its own outputs (they overwrote each other, and which one won depended on
    which worker finished last)."""
    faces = sorted(faces_dir.glob("*.png"))
    src = tmp_path / "src"
    (src / "x").mkdir(parents=True)
    (src / "y").mkdir()
    cv2.imwrite(str(src / "a.png"), cv2.imread(str(faces[0])))
    cv2.imwrite(str(src / "a.jpg"), cv2.imread(str(faces[1])))
    cv2.imwrite(str(src / "x" / "0001.png"), cv2.imread(str(faces[2])))
    cv2.imwrite(str(src / "y" / "0001.png"), cv2.imread(str(faces[3])))
    assert run("augment", src, "-o", tmp_path / "a", "--seed", "2").exit_code == 0
    assert sorted(str(p.relative_to(tmp_path / "a")) for p in (tmp_path / "a").rglob("*.png")) == ["a__jpg__aug0.png", "a__png__aug0.png", "x/0001__aug0.png", "y/0001__aug0.png"]
    listed = tmp_path / "list.csv"
    listed.write_text(f"path,id\n{src / 'x' / '0001.png'},x_0001\n{src / 'y' / '0001.png'},y_0001\n")
    assert run("augment", "-o", tmp_path / "b", "--from-list", listed, "--seed", "2", "--workers", "2").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "b").glob("*.png")) == ["x_0001__aug0.png", "y_0001__aug0.png"]
