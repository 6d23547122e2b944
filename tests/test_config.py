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
