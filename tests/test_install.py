"""The newcomer's path: prep installed as a wheel (not the editable install of `make setup`)
works from any folder, with its named presets.

The wheel is built from a copy of the project's files, installed into a fresh virtual
environment without its dependencies, which it borrows from this environment through a
``.pth`` line (so the test needs no network), and run from an empty temporary folder.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLE_CLIP


def _run(cmd: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The ``bin`` folder of a fresh venv holding prep installed from its wheel."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("prep", "presets"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    dist = base / "dist"
    r = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)], base)
    assert r.returncode == 0, r.stderr
    (wheel,) = dist.glob("prep-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    r = _run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index", str(wheel)], base)
    assert r.returncode == 0, r.stderr
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], base).stdout.strip())
    (site / "_prep_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def test_wheel_lists_every_subpackage():
    """pyproject.toml names the packages one by one (presets are mapped in): none may be missing."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "prep").rglob("__init__.py")}
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"


def test_installed_prep_is_the_wheel_and_has_presets(installed, tmp_path):
    r = _run([str(installed / "python"), "-c", "import prep, prep.config as c; print(prep.__file__); print(c.bundled_preset_dir()); print(' '.join(c.available_presets()))"], tmp_path)
    assert r.returncode == 0, r.stderr
    where, presets_dir, names = r.stdout.splitlines()
    assert str(installed.parent) in where and str(ROOT) not in where
    assert Path(presets_dir) == Path(where).parent / "presets"
    shipped = {p.stem for p in (ROOT / "presets").glob("*.toml")}
    assert set(names.split()) == shipped


def test_named_presets_from_any_folder(installed, tmp_path, faces_dir, clips):
    """(The crop on the sample's 3 s phone-style excerpt with a rotation tag: long enough for
    the speech check's 2 s windows.)"""
    prep = str(installed / "prep")
    r = _run([prep, "crop", str(clips["rotated"]), "--preset", "hallo", "-o", "out_crop", "--size", "256", "--speech", "measure"], tmp_path)
    assert r.returncode == 0, r.stderr
    rec = json.loads((tmp_path / "out_crop" / "videos" / "rotated.json").read_text())
    assert rec["config"]["preset"] == "hallo" and rec["output_info"]["size"] == 256
    assert "speech" in rec  # the speech check runs from the wheel (measured, or a note saying where the model goes)
    r = _run([prep, "pairs", str(faces_dir), "-o", "out_pairs", "--degrade", "bsrgan", "--size", "128"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "out_pairs" / "train" / "blurry").glob("*.png"))) + len(list((tmp_path / "out_pairs" / "val" / "blurry").glob("*.png"))) == 8
    r = _run([prep, "blur", str(faces_dir), "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert len([json.loads(line) for line in r.stdout.splitlines()]) == 8
    r = _run([prep, "augment", str(faces_dir), "-o", "out_aug", "--preset", "dfl"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "out_aug").glob("*__aug0.png"))) == 8


def test_own_preset_file_and_unknown_name(installed, tmp_path, clips):
    """A preset file of one's own (on the sample's 2 s excerpt)."""
    prep = str(installed / "prep")
    own = tmp_path / "mine.toml"
    own.write_text((ROOT / "presets" / "default.toml").read_text().replace("size = 512", "size = 128"))
    r = _run([prep, "crop", str(clips["odd_noaudio"]), "--preset", str(own), "-o", "out"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "out" / "odd_noaudio.json").read_text())["output_info"]["size"] == 128
    r = _run([prep, "crop", str(SAMPLE_CLIP), "--preset", "nosuch", "-o", "out"], tmp_path)
    assert r.returncode != 0
    assert r.stderr.strip().startswith("prep: unknown preset 'nosuch' (available: ") and "hallo" in r.stderr
    assert "Traceback" not in r.stderr
