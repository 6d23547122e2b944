import re

import pytest

from prep.config import CropConfig, available_presets, load_preset
from prep.errors import PrepError


def test_presets_exist_and_load():
    names = available_presets()
    for name in ("default", "geneface", "hallo"):
        assert name in names
        cfg = CropConfig.resolve(name)
        assert cfg.size == 512 and cfg.fps == 25


def test_trainer_presets():
    gene = CropConfig.resolve("geneface")
    assert (gene.mode, gene.layout) == ("fixed", "geneface")
    hallo = CropConfig.resolve("hallo")
    assert hallo.single_face and hallo.layout == "hallo"
    assert hallo.face_fraction_range == (0.5, 0.7)
    assert 0.5 <= hallo.face_fraction <= 0.7


def test_options_override_preset():
    cfg = CropConfig.resolve("geneface", size=256, mode="track", fps=None)
    assert (cfg.size, cfg.mode, cfg.fps) == (256, "track", 25)


@pytest.mark.parametrize("bad", [{"size": 513}, {"mode": "wobble"}, {"face_fraction": 0}, {"pad": "glitter"}, {"fps": 0}])
def test_invalid_values_are_refused_with_a_reason(bad):
    with pytest.raises(PrepError) as e:
        CropConfig.resolve("default", **bad)
    assert "preset default" in str(e.value)


def test_unknown_preset_and_unknown_setting(tmp_path):
    with pytest.raises(PrepError, match="unknown preset 'nope'"):
        load_preset("nope")
    p = tmp_path / "mine.toml"
    p.write_text('[crop]\nsize = 256\nsharpness = 3\n')
    with pytest.raises(PrepError, match="unknown setting"):
        CropConfig.resolve(str(p))
    p.write_text('[crop]\nsize = 256\n')
    assert CropConfig.resolve(str(p)).size == 256
    p.write_text('[Crop]\nsize = 256\n')  # a misspelt table was left out without a word: 512 px clips
    with pytest.raises(PrepError, match=r"unknown table\(s\) or setting\(s\) Crop"):
        CropConfig.resolve(str(p))
    for other in ("bsrgan", "dfl", "blur"):  # another command's preset gave the built-in defaults
        with pytest.raises(PrepError, match=f"preset {other} is an? [a-z]+ preset, not one for prep crop"):
            CropConfig.resolve(other)


@pytest.mark.parametrize("setting, value, said", [
    ("size", 512.0, "size must be a whole number"),
    ("tiers", (256.0,), "tiers must be a whole number"),
    ("detect_every", 1.5, "detect_every must be a whole number"),
    ("face_px", 0, "face_px must be 16 to 1024"),
    ("analysis_side", -5, "analysis_side must be 64 to 8192"),
    ("crf", 99, "crf must be 0 to 51"),
    ("face_fraction_range", (0.3,), "face_fraction_range must be [low, high]"),
    ("x264_preset", "nope", "x264_preset must be one of"),  # was each clip's ffmpeg error, after its analysis
    ("audio_bitrate", "abc", "audio_bitrate must be like 192k"),
    ("single_face", "no", "single_face must be true or false"),  # a non-empty string passed for true
    ("smoothing", -1.0, "smoothing must be at least 0"),
])
def test_a_setting_that_would_break_later_is_refused_up_front(setting, value, said):
    """Values that passed and then failed deep inside OpenCV or an unpacking (a float size,
    a face_px of 0, a one-number range) are refused when the settings are read, in one line."""
    with pytest.raises(PrepError, match=re.escape(said)):
        CropConfig.resolve(**{setting: value})
