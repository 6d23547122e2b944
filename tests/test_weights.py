"""Model files: found offline, downloaded once to the cache, always checked by sha256.

The download path is exercised against a server on 127.0.0.1 that this test starts."""

from __future__ import annotations

import hashlib
import http.server
import threading
from functools import partial

import pytest

from prep.detect import create_detector
from prep.detect.weights import ModelFile, cache_dir, download, find_local, resolve
from prep.errors import PrepError

PAYLOAD = b"not really a model, but bytes with a known hash\n" * 100


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    (root / "model.onnx").write_bytes(PAYLOAD)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def model(url: str, sha: str | None = None) -> ModelFile:
    return ModelFile("model.onnx", sha or hashlib.sha256(PAYLOAD).hexdigest(), f"{url}/model.onnx")


def test_download_to_cache_and_find_it_again(server, tmp_path, monkeypatch):
    monkeypatch.delenv("PREP_OFFLINE", raising=False)
    monkeypatch.delenv("PREP_WEIGHTS_DIR", raising=False)
    m = model(server)
    path = resolve(m)
    assert path == cache_dir() / "model.onnx" and path.read_bytes() == PAYLOAD
    assert find_local(m) == path  # second use: no download


@pytest.mark.parametrize("value", ["0", "false", "No", ""])
def test_offline_set_to_no_still_downloads(server, tmp_path, monkeypatch, value):
    """``PREP_OFFLINE=0`` (or false, no, empty) means online, as a reader of the variable expects."""
    monkeypatch.setenv("PREP_OFFLINE", value)
    monkeypatch.delenv("PREP_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("PREP_CACHE_DIR", str(tmp_path / "cache"))
    assert resolve(model(server)).read_bytes() == PAYLOAD
    monkeypatch.setenv("PREP_OFFLINE", "1")
    with pytest.raises(PrepError, match="offline"):
        resolve(ModelFile("other.onnx", "0" * 64, f"{server}/model.onnx"))


def test_wrong_hash_is_refused_and_nothing_is_left(server, tmp_path):
    m = model(server, sha="0" * 64)
    with pytest.raises(PrepError, match="wrong sha256"):
        download(m, tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*"))


def test_corrupt_local_copy_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PREP_CACHE_DIR", str(tmp_path / "cache"))  # no good copy elsewhere
    (tmp_path / "model.onnx").write_bytes(b"truncated")
    with pytest.raises(PrepError, match="sha256 mismatch"):
        find_local(model("http://127.0.0.1:9"), tmp_path)


def test_a_damaged_copy_in_the_cache_is_downloaded_again(server, tmp_path, monkeypatch):
    """The cache is prep's own: a copy there that no longer matches its hash is fetched again,
    not trusted, and not a reason to fall back to another detector on every later run."""
    monkeypatch.delenv("PREP_OFFLINE", raising=False)
    monkeypatch.delenv("PREP_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("PREP_CACHE_DIR", str(tmp_path / "cache"))  # a cache of its own
    m = model(server)
    cache_dir().mkdir(parents=True, exist_ok=True)
    (cache_dir() / "model.onnx").write_bytes(b"half a download")
    assert resolve(m).read_bytes() == PAYLOAD
    good = tmp_path / "mine"  # a damaged copy in the user's folder does not hide a good cached one
    good.mkdir()
    (good / "model.onnx").write_bytes(b"damaged")
    assert find_local(m, good) == cache_dir() / "model.onnx"


def test_offline_without_weights_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.delenv("PREP_WEIGHTS_DIR", raising=False)
    m = ModelFile("other.onnx", "0" * 64, "http://127.0.0.1:9/other.onnx")
    with pytest.raises(PrepError, match="offline; give --weights-dir"):
        resolve(m, tmp_path)


def test_unreachable_download_fails_cleanly(tmp_path, monkeypatch):
    monkeypatch.delenv("PREP_OFFLINE", raising=False)
    with pytest.raises(PrepError, match="download failed"):
        download(model("http://127.0.0.1:9"), tmp_path)


def test_explicit_yunet_without_model_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("PREP_WEIGHTS_DIR", raising=False)
    with pytest.raises(PrepError, match="detector 'yunet' unavailable"):
        create_detector("yunet")
    assert create_detector("auto").name == "hog"
