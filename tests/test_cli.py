"""The command line, driven through click: exit codes, exact one-line errors, files left behind."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from prep.cli import main

from conftest import ROOT, ffmpeg


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def files_in(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file()) if d.exists() else []


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, clips) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    (d / "text.mp4").write_text("not a video at all\n" * 100)
    (d / "empty.mp4").write_bytes(b"")
    data = clips["sample"].read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 3])
    ffmpeg("-i", str(clips["sample"]), "-vn", "-c:a", "copy", str(d / "audio_only.m4a"))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "1", "-pix_fmt", "yuv420p", str(d / "no_face.mp4"))
    return {p.stem: p for p in d.iterdir()} | {"missing": d / "missing.mp4"}


@pytest.mark.parametrize(
    "name, problem",
    [
        ("missing", "file not found"),
        ("text", "not a readable video"),
        ("empty", "empty file (0 bytes)"),
        ("truncated", "truncated"),
        ("audio_only", "audio-only file"),
        ("no_face", "no face found"),
    ],
)
def test_bad_input_one_line_nonzero_no_output(bad_inputs, tmp_path, name, problem):
    src = bad_inputs[name]
    out = tmp_path / "out"
    res = run("crop", src, "-o", out, "--size", "128")
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"prep: {src}: ") and problem in lines[0]
    assert "Traceback" not in res.output + res.stderr
    assert files_in(out) == []  # no partial file, no report


def test_unwritable_output_folder(clips, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = run("crop", clips["odd_noaudio"], "-o", blocker / "sub")
    assert res.exit_code == 1
    assert re.fullmatch(rf"prep: {re.escape(str(blocker / 'sub'))}: output folder cannot be written \(.+\)\n", res.stderr)


def test_batch_goes_on_past_a_bad_file_and_reports(bad_inputs, clips, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_bad.mp4").write_bytes(bad_inputs["text"].read_bytes())
    (folder / "b_good.mp4").write_bytes(clips["odd_noaudio"].read_bytes())
    (folder / "notes.txt").write_text("ignored: not a video")
    out, report = tmp_path / "out", tmp_path / "run.json"
    res = run("crop", folder, "-o", out, "--size", "128", "--report", report)
    assert res.exit_code == 1  # something failed
    assert res.stderr.count("\n") == 1 and "a_bad.mp4: not a readable video" in res.stderr
    assert files_in(out) == ["b_good.json", "b_good.mp4"]
    assert "1 error, 1 ok" in res.output
    rep = json.loads(report.read_text())
    assert rep["counts"] == {"error": 1, "ok": 1}
    assert [i["status"] for i in rep["items"]] == ["error", "ok"]
    # started again: the finished clip is skipped, the bad one is reported again
    again = run("crop", folder, "-o", out, "--size", "128")
    assert "skip" in again.output and again.exit_code == 1


def test_default_output_says_where_it_wrote(clips, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = run("crop", clips["odd_noaudio"], "--size", "128")
    assert res.exit_code == 0, res.stderr
    assert "-> prep_crop/odd_noaudio.mp4 (128x128, 25 fps" in res.output
    assert (tmp_path / "prep_crop" / "odd_noaudio.mp4").is_file()


@pytest.mark.parametrize("preset, where", [("geneface", "data/raw/videos"), ("hallo", "videos")])
def test_trainer_layouts(clips, tmp_path, preset, where):
    res = run("crop", clips["sample"], "-o", tmp_path, "--preset", preset, "--size", "128", "--speech", "off")
    assert res.exit_code == 0, res.stderr
    assert files_in(tmp_path) == [f"{where}/astronaut_vertical.json", f"{where}/astronaut_vertical.mp4"]


def test_unknown_preset_is_one_line():
    res = run("crop", "x.mp4", "--preset", "nope")
    assert res.exit_code == 1
    assert res.stderr.startswith("prep: unknown preset 'nope' (available: ") and res.stderr.count("\n") == 1


def test_every_command_has_help_and_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name, cmd in main.commands.items():
        assert cmd.help and len(cmd.help) > 40, name
        assert f"prep {name}" in readme, f"README does not document 'prep {name}'"
        res = run(name, "--help")
        assert res.exit_code == 0
        for param in cmd.params:
            for opt in param.opts:
                if opt.startswith("--"):
                    assert opt in readme, f"README does not mention {opt} of prep {name}"


def test_a_full_disk_is_one_line_not_a_bug_report():
    """A write that fails for the file system's reasons (a full disk, no permission) is said in
    one line naming the file; only what nobody foresaw asks for a bug report."""
    from prep.errors import error_record

    rec = error_record("/in/a.mp4", OSError(28, "No space left on device", "/out/a.mp4"))
    assert rec["message"] == "/in/a.mp4: /out/a.mp4: No space left on device" and "traceback" not in rec
    assert "please report this" in error_record("/in/a.mp4", ValueError("a bug"))["message"]


def test_every_input_gets_its_own_output_name(tmp_path):
    """Outputs are named by the source's stem, with the folders between it and the folder
    given in front; by two folders and the stem where names still collide, and by as much of
    the path as it takes where even that collides (they overwrote each other). A file added in
    another folder later renames nothing done before (camera names repeat: a second
    IMG_0001.jpg renamed the first, whose outputs stayed beside the renamed ones)."""
    from prep.batch import found_in, item_ids

    assert item_ids([Path("/d/a.jpg"), Path("/d/b.jpg")]) == ["a", "b"]
    assert item_ids([Path("/d/x/a.jpg"), Path("/d/y/a.jpg")]) == ["d__x__a", "d__y__a"]
    photos = tmp_path / "photos"
    for rel in ("IMG_0001.jpg", "shoot1/IMG_0001.jpg", "shoot1/IMG_0002.jpg"):
        (photos / rel).parent.mkdir(parents=True, exist_ok=True)
        (photos / rel).write_bytes(b"x")

    def named() -> dict[str, str]:
        found = found_in([photos], {".jpg"})
        return dict(zip((str(p.relative_to(photos)) for p, _ in found), item_ids([p for p, _ in found], [r for _, r in found])))

    before = named()
    assert before == {"IMG_0001.jpg": "IMG_0001", "shoot1/IMG_0001.jpg": "shoot1__IMG_0001", "shoot1/IMG_0002.jpg": "shoot1__IMG_0002"}
    (photos / "shoot2").mkdir()
    (photos / "shoot2" / "IMG_0002.jpg").write_bytes(b"x")
    after = named()
    assert {k: after[k] for k in before} == before and after["shoot2/IMG_0002.jpg"] == "shoot2__IMG_0002"
    # a hidden folder is not walked; a deep tree's name stays short (the stem and a digest)
    deep = photos / ".thumbs" / "IMG_0001.jpg", photos.joinpath(*["a_long_folder_name_of_a_photo_archive"] * 5) / "IMG_0003.jpg"
    for f in deep:
        f.parent.mkdir(parents=True)
        f.write_bytes(b"x")
    last = named()
    assert len(last) == len(after) + 1 and all(not k.startswith(".") for k in last)
    (long,) = [v for k, v in last.items() if k.endswith("IMG_0003.jpg")]
    assert long.startswith("IMG_0003__") and len(long) < 40
    for paths in ([Path("/x/p/q/img.jpg"), Path("/y/p/q/img.jpg")], [Path("/d/p/a.jpg"), Path("/d/p/a.png")]):
        ids = item_ids(paths)
        assert len(set(ids)) == 2, ids
