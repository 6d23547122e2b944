"""prep.speech: the numpy port of Light-ASD against a PyTorch reference built here from
standard torch.nn modules, the torch-free checkpoint reader against torch.load, and the MFCC
front end's framing and energy column."""

from __future__ import annotations

import math
import subprocess

import numpy as np
import pytest

from conftest import SHARED, WEIGHTS
from prep.speech.lightasd import LIGHT_ASD_AVA, LIGHT_ASD_TALKSET, LightASD, load_default
from prep.speech.mfcc import mfcc, num_frames

CHECKPOINT = WEIGHTS / LIGHT_ASD_AVA.filename
CLIP = SHARED / "videos" / "sadtalker_WDA_KatieHill_512_mpeg4.mp4"
needs_light_asd = pytest.mark.skipif(not CHECKPOINT.is_file(), reason=f"Light-ASD checkpoint not found in {WEIGHTS}")
needs_clip = pytest.mark.skipif(not CLIP.is_file(), reason=f"{CLIP} not found")


# --- MFCC ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 399, 400, 401, 560, 561, 16000, 32123])
def test_mfcc_frame_count(n):
    sig = (np.random.default_rng(n).standard_normal(n) * 1000).astype(np.int16)
    feat = mfcc(sig)
    expect = 1 if n <= 400 else 1 + math.ceil((n - 400) / 160)
    assert feat.shape == (expect, 13) == (num_frames(n), 13)
    assert feat.dtype == np.float32 and np.isfinite(feat).all()


def test_mfcc_energy_column_is_log_frame_power():
    rate = 16000
    t = np.arange(rate) / rate
    sig = np.round(8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    feat = mfcc(sig)
    # Independently, without an FFT: pre-emphasis, 400-sample frames every 160 (zero-padded);
    # the one-sided 512-point power spectrum / 512 sums, by Parseval, to
    # sum(x^2) / 2 + (X_0^2 + X_256^2) / 1024 with X_0 = sum(x), X_256 = sum((-1)^n x).
    x = sig.astype(np.float64)
    pre = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]])
    n = feat.shape[0]
    pre = np.concatenate([pre, np.zeros((n - 1) * 160 + 400 - pre.size)])
    alt = (-1.0) ** np.arange(400)
    for i in (0, 1, n // 2, n - 1):
        frame = pre[i * 160 : i * 160 + 400]
        power = (frame**2).sum() / 2 + (frame.sum() ** 2 + (alt * frame).sum() ** 2) / 1024
        assert feat[i, 0] == pytest.approx(math.log(power), rel=1e-6)


def test_mfcc_blocks_and_silence():
    sig = (np.random.default_rng(0).standard_normal(5000) * 3000).astype(np.int16)
    sig[1000:3000] = 0
    whole = mfcc(sig)
    assert np.array_equal(whole, mfcc(sig, block=5))
    assert np.allclose(whole, mfcc(sig.astype(np.float64)), rtol=1e-6, atol=1e-5)
    silent = whole[8:16]  # frames lying inside the zeroed stretch: log(eps) energy, finite
    assert np.allclose(silent[:, 0], math.log(np.finfo(float).eps), rtol=1e-6)


# --- checkpoint reader -----------------------------------------------------------------------


@needs_light_asd
def test_torchzip_matches_torch_load():
    torch = pytest.importorskip("torch")
    from prep.speech.torchzip import load_state_dict

    ours = load_state_dict(CHECKPOINT)
    ref = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    floats = {k: v for k, v in ref.items() if v.is_floating_point()}
    assert set(ours) == set(floats)
    for k, v in floats.items():
        assert ours[k].dtype == np.float32 and np.array_equal(ours[k], v.numpy()), k


def test_torchzip_refuses_foreign_globals(tmp_path):
    import pickle
    import zipfile

    from prep.errors import PrepError
    from prep.speech.torchzip import load_state_dict

    bad = tmp_path / "bad.model"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"x": subprocess.Popen}, protocol=4))
    with pytest.raises(PrepError, match="subprocess.Popen"):
        load_state_dict(bad)


# --- the model against a PyTorch reference ---------------------------------------------------


def _reference(torch, path):
    """Light-ASD from standard torch.nn modules, parameter names as in the checkpoint."""
    nn = torch.nn
    relu = torch.relu

    class Block(nn.Module):
        # visual: Conv3d (1,k,k) then (k,1,1); audio: Conv2d (k,1) over MFCCs then (1,k) over time
        def __init__(self, cin, cout, visual, stride=1):
            super().__init__()
            conv, bn = (nn.Conv3d, nn.BatchNorm3d) if visual else (nn.Conv2d, nn.BatchNorm2d)
            s = "s" if visual else "m"
            for k in (3, 5):
                p = k // 2
                if visual:
                    first = conv(cin, cout, (1, k, k), stride=(1, stride, stride), padding=(0, p, p), bias=False)
                    second = conv(cout, cout, (k, 1, 1), padding=(p, 0, 0), bias=False)
                else:
                    first = conv(cin, cout, (k, 1), padding=(p, 0), bias=False)
                    second = conv(cout, cout, (1, k), padding=(0, p), bias=False)
                self.add_module(f"{s}_{k}", first)
                self.add_module(f"bn_{s}_{k}", bn(cout, eps=1e-3))
                self.add_module(f"t_{k}", second)
                self.add_module(f"bn_t_{k}", bn(cout, eps=1e-3))
            self.last = conv(cout, cout, 1, bias=False)
            self.bn_last = bn(cout, eps=1e-3)
            self.s = s

        def forward(self, x):
            m = dict(self.named_children())
            y = 0
            for k in (3, 5):
                b = relu(m[f"bn_{self.s}_{k}"](m[f"{self.s}_{k}"](x)))
                y = y + relu(m[f"bn_t_{k}"](m[f"t_{k}"](b)))
            return relu(self.bn_last(self.last(y)))

    class Encoder(nn.Module):
        def __init__(self, visual):
            super().__init__()
            self.block1 = Block(1, 32, visual, stride=2)
            self.block2 = Block(32, 64, visual)
            self.block3 = Block(64, 128, visual)
            if visual:
                self.pool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
            else:
                self.pool = nn.MaxPool2d((1, 3), (1, 2), (0, 1))
            self.visual = visual

        def forward(self, x):
            x = self.block3(self.pool(self.block2(self.pool(self.block1(x)))))
            if self.visual:  # (B, C, T, H, W) -> (B, T, C), max over space
                return x.amax(dim=(3, 4)).transpose(1, 2)
            return x.mean(dim=2).transpose(1, 2)  # (B, C, 13, T) -> (B, T, C)

    class Backend(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru_forward = nn.GRU(128, 128, batch_first=True)
            self.gru_backward = nn.GRU(128, 128, batch_first=True)

        def forward(self, x):
            x = nn.functional.gelu(self.gru_forward(x)[0])
            x = torch.flip(self.gru_backward(torch.flip(x, [1]))[0], [1])
            return nn.functional.gelu(x)

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.FC = nn.Linear(128, 2)

    class Core(nn.Module):
        def __init__(self):
            super().__init__()
            self.visualEncoder = Encoder(visual=True)
            self.audioEncoder = Encoder(visual=False)
            self.GRU = Backend()

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = Core()
            self.lossAV = Head()
            self.lossV = Head()

        @torch.no_grad()
        def run(self, mfcc, frames):
            m = self.model
            v = torch.from_numpy(frames).float()[None, None]  # (1, 1, T, 112, 112)
            v = m.visualEncoder((v / 255 - 0.4161) / 0.1688)
            a = m.audioEncoder(torch.from_numpy(mfcc).float()[None, None].transpose(2, 3))
            h = m.GRU(a + v)[0]
            return {
                "visual": v[0].numpy(),
                "audio": a[0].numpy(),
                "backend": h.numpy(),
                "scores": self.lossAV.FC(h)[:, 1].numpy(),
                "visual_only": self.lossV.FC(v[0])[:, 1].numpy(),
            }

    net = Net()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.eval()


def _ours(model: LightASD, m: np.ndarray, f: np.ndarray) -> dict[str, np.ndarray]:
    v, a = model.visual(f), model.audio(m)
    h = model.backend(a, v)
    return {"visual": v, "audio": a, "backend": h, "scores": model.scores(h), "visual_only": model.visual_only_scores(v)}


@pytest.fixture(scope="module")
def torch_net():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return _reference(torch, CHECKPOINT)


@pytest.fixture(scope="module")
def model() -> LightASD:
    return LightASD.load(CHECKPOINT)


def _real_input(seconds: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """(4T, 13) MFCCs and (T, 112, 112) grey face crops of the clip's first ``seconds``, the
    crops as Columbia_test cuts them: a square around the face resized to 224, centre 112."""
    from prep.ffmpeg import ffmpeg_exe

    t = round(seconds * 25)
    run = [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(CLIP)]
    pcm = subprocess.run([*run, "-ac", "1", "-ar", "16000", "-f", "s16le", "-"], check=True, capture_output=True).stdout
    video = subprocess.run(
        [*run, "-frames:v", str(t), "-vf", "crop=320:320:110:130,scale=224:224,format=gray", "-f", "rawvideo", "-"],
        check=True,
        capture_output=True,
    ).stdout
    frames = np.frombuffer(video, np.uint8).reshape(t, 224, 224)[:, 56:168, 56:168]
    return mfcc(np.frombuffer(pcm, "<i2"))[: 4 * t], np.ascontiguousarray(frames)


def _compare(ours: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> dict[str, float]:
    diffs = {}
    for k, r in ref.items():
        assert ours[k].shape == r.shape, k
        diffs[k] = float(np.abs(ours[k] - r).max())
    return diffs


@pytest.mark.parametrize("checkpoint", [LIGHT_ASD_AVA.filename, LIGHT_ASD_TALKSET.filename])
def test_matches_torch_on_random_input(checkpoint):
    path = WEIGHTS / checkpoint
    if not path.is_file():
        pytest.skip(f"{path} not found")
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    t = 13  # odd length: checks the audio pools' and temporal convolutions' edges
    frames = rng.integers(0, 256, (t, 112, 112), dtype=np.uint8)
    m = (rng.standard_normal((4 * t, 13)) * 8).astype(np.float32)
    d = _compare(_ours(LightASD.load(path), m, frames), _reference(torch, path).run(m, frames))
    assert d["scores"] < 1e-3 and d["visual_only"] < 1e-3, d
    assert max(d["visual"], d["audio"], d["backend"]) < 1e-3, d


@needs_light_asd
@needs_clip
def test_matches_torch_on_real_clip(torch_net, model):
    m, frames = _real_input(2.0)
    ours, ref = _ours(model, m, frames), torch_net.run(m, frames)
    d = _compare(ours, ref)
    print("max abs diff, real input:", d)
    assert d["scores"] < 1e-3 and d["visual_only"] < 1e-3, d
    assert max(d["visual"], d["audio"], d["backend"]) < 1e-3, d
    # Sanity of the input recipe: the speaker pauses from about 0.9 s to 1.3 s (audio RMS
    # drops ~10x), and the model scores that stretch well below the speech after it.
    assert ours["scores"][24:32].mean() < -1.0 and ours["scores"][36:50].mean() > 0.5, ours["scores"]


@needs_light_asd
def test_streamed_visual_encoder_equals_one_pass(model):
    """Crops pushed 1, 3, 8 or 64 at a time through the streamed encoder (each block holds the
    2 frames its temporal convolutions reach ahead) give, bit for bit, one pass of the three
    blocks over the whole sequence."""
    from prep.speech.lightasd import PIXEL_MEAN, PIXEL_STD, _block, _maxpool_hw

    frames = np.random.default_rng(2).integers(0, 256, (23, 112, 112), dtype=np.uint8)
    x = (frames.astype(np.float32)[..., None] / np.float32(255) - np.float32(PIXEL_MEAN)) / np.float32(PIXEL_STD)
    for i, blk in enumerate(model.vblocks):
        x = _block(x, blk)
        x = _maxpool_hw(x) if i < 2 else x
    whole = x.max(axis=(1, 2))
    for chunk in (1, 3, 8, 64):
        assert np.array_equal(model.visual(frames, chunk=chunk), whole), chunk
    enc = model.visual_encoder()
    assert enc.push(frames[:6]).shape == (0, 128)  # 6 frames behind: 2 per block
    assert len(enc.push(frames[6:7])) == 1 and len(enc.finish()) == 6
    assert model.visual(frames[:0]).shape == (0, 128) and model.visual(frames[:1]).shape == (1, 128)


@needs_light_asd
def test_load_default_uses_weights_mechanism():
    a = load_default()  # PREP_WEIGHTS_DIR points at shared/data/weights (conftest)
    assert load_default() is a
    if (WEIGHTS / LIGHT_ASD_TALKSET.filename).is_file():
        b = load_default(checkpoint="talkset")
        assert b is not a and not np.array_equal(b.fc_av[0], a.fc_av[0])


@needs_light_asd
def test_audio_embeddings_in_chunks_equal_one_pass():
    """The audio model run in chunks with context (bounded memory on long tracks) gives what
    one pass over the whole sequence gives."""
    from prep.speech.track import audio_embeddings

    model = load_default(WEIGHTS)
    rng = np.random.default_rng(3)
    feats = rng.normal(0, 5, size=(4 * 300 + 3, 13)).astype(np.float32)
    whole = model.audio(feats)
    chunked = audio_embeddings(model, feats, chunk=70, halo=8)
    assert chunked.shape == whole.shape
    assert np.abs(chunked - whole).max() < 1e-4


@needs_light_asd
def test_licence_is_a_checked_model_file_and_optional_offline(tmp_path, monkeypatch):
    """The weights' licence is found beside them (checked by sha256, as the weights are); a
    folder holding only the checkpoint still loads offline."""
    import shutil

    from prep.detect.weights import find_local
    from prep.speech.lightasd import LIGHT_ASD_LICENCE

    assert find_local(LIGHT_ASD_LICENCE, WEIGHTS) is not None  # the shared copy is the upstream file
    only = tmp_path / "only_weights"
    only.mkdir()
    shutil.copy(CHECKPOINT, only / CHECKPOINT.name)
    monkeypatch.delenv("PREP_WEIGHTS_DIR")
    assert load_default(only).fc_av[0].shape == (2, 128)


class _PixelModel:
    """Stands in for Light-ASD's visual encoder: each crop as 128 sums of 98 pixels in a row
    (exact in float32, so any pixel that differs shows; frame by frame, so any grouping gives
    the same rows)."""

    def visual_encoder(self):
        return self

    def push(self, frames, final=False):
        return np.asarray(frames).reshape(len(frames), 128, -1).astype(np.float32).sum(axis=2)

    def finish(self):
        return np.zeros((0, 128), np.float32)


def _pass_and_decode(monkeypatch, n, face_at):
    """Crops made in the analysis pass (PassCrops) and by the second decode
    (face_embeddings) of the same frames and faces; ``face_at(i)``: the faces on analysed frame i."""
    from conftest import SAMPLE_CLIP
    from prep.decode import scaled_size
    from prep.probe import probe_video
    from prep.speech import track as tr

    info = probe_video(SAMPLE_CLIP)
    w, h = scaled_size(info, 640)
    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]
    crops = tr.PassCrops(_PixelModel(), info, 640, n)
    subject = {}
    for i, frame in enumerate(frames):
        faces = face_at(i) if i % 2 == 0 else None
        if faces:
            subject[i] = max(faces, key=lambda f: f.size)
        crops.feed(i, frame, faces)
    crops.finish()
    monkeypatch.setattr(tr, "iter_frames", lambda *a, **k: iter(frames))
    order = sorted(subject)
    boxes = np.array([[*subject[i].center, subject[i].size] for i in order], np.float64)
    return crops.embedded(subject), tr.face_embeddings(_PixelModel(), info, 0, n, np.array(order, np.float64) / 25.0, boxes, 640)


def _box(i, dx=0.0):
    from prep.detect import Face

    x, y, s = 200.0 + 3 * np.sin(i / 5) + dx, 500.0 + i, 220.0 + (i % 7)
    return Face((x, y, s, s * 1.1), np.zeros((5, 2), np.float32), 0.95)


def test_pass_crops_equal_the_second_decode(monkeypatch):
    """The face crops cut in the analysis pass are the crops a second decode of the track cuts,
    bit for bit: a face that appears late (frame 20), leaves for 12 frames, and is still there
    at the end; 300 frames (more than one chunk of the visual model)."""
    faces = {}

    def face_at(i):
        if i < 20 or 100 <= i < 112:
            return []
        return faces.setdefault(i, [_box(i)])

    got, want = _pass_and_decode(monkeypatch, 300, face_at)
    assert got is not None
    assert got[1] == want[1] and got[0].shape == want[0].shape == (300, 128)
    assert np.array_equal(got[0], want[0])


def test_pass_crops_give_way_to_the_second_decode_for_two_faces_or_another_subject(monkeypatch):
    from prep.speech import track as tr

    two = {}
    got, _ = _pass_and_decode(monkeypatch, 80, lambda i: two.setdefault(i, [_box(i), _box(i, dx=300.0)]))
    assert got is None  # two faces of a size: which is the subject is decided later
    crops = tr.PassCrops(_PixelModel(), __import__("prep.probe", fromlist=["x"]).probe_video(__import__("conftest").SAMPLE_CLIP), 640, 80)
    frame = np.zeros((640, 360, 3), np.uint8)
    one = {}
    for i in range(80):
        crops.feed(i, frame, one.setdefault(i, [_box(i)]) if i % 2 == 0 else None)
    crops.finish()
    assert crops.embedded({i: f[0] for i, f in one.items() if i > 0}) is None  # a subject on other frames
    assert crops.embedded({i: f[0] for i, f in one.items()}) is not None


def test_tracks_cut_from_shared_decodes_equal_their_own_decodes():
    """--split's tracks: the crops of several tracks cut from one decode per group of nearby
    tracks (overlapping, one after another, one further on: two groups, the second one seeked)
    are the crops each track's own decode cuts, bit for bit."""
    from conftest import SAMPLE_CLIP
    from prep.probe import probe_video
    from prep.speech import track as tr

    info = probe_video(SAMPLE_CLIP)  # 6 s: 150 speech frames
    spans = [(0, 60), (30, 60), (95, 20), (120, 30)]  # (j0, n): the last starts 5 frames after the third ends
    tracks = []
    for k, (j0, n) in enumerate(spans):
        frames = list(range(j0, j0 + n, 2))
        tracks.append((j0, n, np.array(frames, np.float64) / 25.0, np.array([[*_box(i, dx=40.0 * k).center, _box(i).size] for i in frames], np.float64)))
    shared = tr.tracks_embeddings(_PixelModel(), info, tracks, 640, max_gap=10)
    for (j0, n, times, boxes), (got, small) in zip(tracks, shared):
        want, want_small = tr.face_embeddings(_PixelModel(), info, j0, n, times, boxes, 640)
        assert got.shape == want.shape == (n, 128) and small == want_small
        assert np.array_equal(got, want), (j0, n)


def test_tracks_fall_back_to_their_own_decodes_when_the_shared_one_fails(monkeypatch):
    """A shared decode that fails leaves every track to its own decode (which then reports the
    problem as before); tracks under the model's 2 s get none."""
    import dataclasses

    from prep.config import CropConfig
    from prep.probe import probe_video
    from prep.speech import track as tr
    from prep.video import speaking
    from conftest import SAMPLE_CLIP

    info = probe_video(SAMPLE_CLIP)
    cfg = dataclasses.replace(CropConfig.resolve("hallo", speech="measure"), speech_missing=None)  # the model is stood in for
    monkeypatch.setattr(speaking, "_boxes", lambda cfg, frames, faces: (np.asarray(frames, np.float64) / 25.0, np.array([[300.0, 500.0, 200.0]] * len(frames))))
    tracks = [(list(range(0, 100, 2)), [None] * 50, 0, 100), (list(range(0, 30, 2)), [None] * 15, 0, 30)]
    calls = []

    def fake(model, info, jobs, side):
        calls.append([(j0, n) for j0, n, _, _ in jobs])
        return [(np.zeros((n, 128), np.float32), False) for _, n, _, _ in jobs]

    monkeypatch.setattr(tr, "load_default", lambda *a, **k: object())
    monkeypatch.setattr(tr, "tracks_embeddings", fake)
    got = speaking.tracks_embedded(info, cfg, tracks)
    assert calls == [[(0, 100)]] and got[0][0].shape == (100, 128) and got[1] is None  # 30 frames: under the model's window

    def broken(*a, **k):
        raise RuntimeError("decoder died")

    monkeypatch.setattr(tr, "tracks_embeddings", broken)
    assert speaking.tracks_embedded(info, cfg, tracks) == [None, None]


class _LateShots:
    """Stands in for the pass's ShotDetector: ``transitions`` are known ``delay`` frames late."""

    def __init__(self, transitions, delay=20):
        self.transitions, self.delay = transitions, delay

    def settled(self, fed):
        from prep.video.shots import Shots

        return max(0, fed - self.delay), Shots(fed, 25.0, [t for t in self.transitions if t.start < fed - self.delay // 2])


def test_split_crops_equal_the_tracks_own_decodes(monkeypatch):
    """--split's tracks followed in the analysis pass (SplitCrops) give the crops a decode of
    each planned track cuts, bit for bit, and every track long enough to be heard is cut
    there: three shots (a cut, a dissolve), two faces on the whole first shot, a third too short
    to be heard, a face at the same place after the cut (a new track), a face that leaves for
    longer than a track may go unseen (two tracks) and one that leaves for less (one track)."""
    from conftest import SAMPLE_CLIP
    from prep.decode import scaled_size
    from prep.detect import Face
    from prep.probe import probe_video
    from prep.speech import track as tr
    from prep.video.segments import track_span
    from prep.video.shots import Shots, Transition
    from prep.video.trackcrops import SplitCrops
    from prep.video.tracks import face_tracks

    info = probe_video(SAMPLE_CLIP)
    w, h = scaled_size(info, 640)
    n, every, max_gap, min_len = 400, 2, 38, 50

    def frame(i):
        return np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8)

    def face(i, x, y):
        s = 150.0 + 10 * np.sin(i / 7)
        return Face((x + 5 * np.sin(i / 5), y + 2 * i % 13, s, 1.15 * s), np.zeros((5, 2), np.float32), 0.95)

    shown = [  # (first, last frame, x, y): display px of the 360x640 sample
        (0, 118, 60, 200), (0, 118, 500, 800), (20, 60, 250, 1150),  # shot 0: two faces on the same frames, a third too short to be heard
        (120, 170, 60, 200), (216, 299, 60, 200), (120, 299, 400, 700),  # shot 1: the first face gone for 44 frames
        (326, 360, 100, 300), (380, 399, 100, 300), (330, 399, 450, 1000)]  # shot 2: gone for 18 frames
    transitions = [Transition(120, 120, "cut"), Transition(300, 326, "dissolve")]
    detections = {i: [face(i, x, y) for a, b, x, y in shown if a <= i <= b] for i in range(0, n, every)}
    crops = SplitCrops(_PixelModel(), info, 640, n, _LateShots(transitions), every, max_gap, min_len)
    peak = 0
    for i in range(n + 30):  # (a decoder that gives frames more than planned: they are part of no track)
        crops.feed(i, frame(i), detections.get(i) if i < n else [face(i, 450, 1000)] if i % 2 == 0 else None)
        peak = max(peak, len(crops.frames))
    shots = Shots(n, 25.0, transitions)
    crops.finish(shots)

    monkeypatch.setattr(tr, "iter_frames", lambda info, fps, side, start=0, count=None: (frame(i) for i in range(start, start + count)))
    heard = []
    for shot, t in face_tracks(detections, shots.ranges, max_gap):
        start, end = track_span(t, shots.ranges[shot], every)
        if end - start >= min_len:
            heard.append((t, start, end))
    assert len(heard) == 7, [(t.frames[0], t.frames[-1]) for t, _, _ in heard]
    jobs = [(start, end - start, np.asarray(t.frames, np.float64) / 25.0, np.array([[*f.center, f.size] for f in t.faces])) for t, start, end in heard]
    for (t, start, end), (want, want_small) in zip(heard, tr.tracks_embeddings(_PixelModel(), info, jobs, 640)):
        got = crops.track(t.frames, t.faces, start, end)
        assert got is not None, (t.frames[0], t.frames[-1])
        assert got[1] == want_small and np.array_equal(got[0], want), (t.frames[0], t.frames[-1])
    assert len(crops.frames) == 0 and crops.given_up is None
    # frames held: an unseen face's gap, the settling delay and the median's reach, not the track
    assert peak <= max_gap + 20 + 6 + every + 2, peak
    other = heard[0][0]
    assert crops.track(other.frames, [face(i, 60, 200) for i in other.frames], heard[0][1], heard[0][2]) is None  # other faces: decoded again
    crops.give_up("stopped")  # (as when a track holds too many frames) what had ended stays cut
    assert crops.track(other.frames, other.faces, heard[0][1], heard[0][2]) is not None


def _noise_clip(n: int, seed: int, every: int = 2):
    """The sample clip's facts with ``n`` frames of noise at analysis size, and which of them
    the pass analyses (every ``every``-th and the last)."""
    from conftest import SAMPLE_CLIP
    from prep.decode import scaled_size
    from prep.probe import probe_video

    info = probe_video(SAMPLE_CLIP)
    w, h = scaled_size(info, 640)
    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]
    return info, frames, [i for i in range(n) if i % every == 0 or i == n - 1]


def _assert_cut_as_decoded(monkeypatch, crops, info, frames, person) -> None:
    """The one-clip check's crops of ``person`` handed over by ``crops`` equal its own decode's
    over the whole clip, bit for bit."""
    from prep.speech import track as tr

    n = len(frames)
    monkeypatch.setattr(tr, "iter_frames", lambda *a, **k: iter(frames))
    boxes = np.array([[*fc.center, fc.size] for fc in person.faces], np.float64)
    want, want_small = tr.face_embeddings(_PixelModel(), info, 0, n, np.array(person.frames, np.float64) / 25.0, boxes, 640)
    got = crops.track(person.frames, person.faces, 0, n)
    assert got is not None and got[1] == want_small and np.array_equal(got[0], want)


def test_person_on_one_clip_takes_its_crops_from_the_pass(monkeypatch):
    """One clip with --person: which face is the person's is known only after the pass. The
    pass follows the largest faces of the first frame (three at a time), linked over the whole
    clip as the subject is (a cut does not end them), judges each on a few frames and sends only
    the one that looks like the person through the model: its crops are the second decode's,
    bit for bit (its last box held to the clip's end, as the decode holds it), and the model
    sees its frames alone. A smaller fourth face and a face that comes later are followed once
    places free up, and judged, never modelled; a subject on other frames gets none (decoded
    again)."""
    from prep.decode import scaled_size
    from prep.detect import Face
    from prep.video.shots import Shots, Transition
    from prep.video.trackcrops import SplitCrops
    from prep.video.tracks import link_tracks

    n, every = 81, 2
    info, frames, analysed = _noise_clip(n, 3, every)
    w, _ = scaled_size(info, 640)

    def face(i, x, y, s):
        return Face((x, y + i, s, 1.1 * s), np.zeros((5, 2), np.float32), 0.95)

    # two faces of a size (the person is the right one, missed on the last frame), two smaller
    # ones, one that comes later, and three larger false detections on the first frame only
    detections = {i: [_box(i)] + ([_box(i, dx=300.0)] if i < n - 1 else []) + [face(i, 60.0, 1000.0, 150.0), face(i, 400.0, 1000.0, 120.0)] + ([face(i, 250.0, 1200.0, 150.0)] if i >= 20 else []) for i in analysed}
    detections[0] += [face(0, x, 100.0, 300.0) for x in (0.0, 360.0, 720.0)]
    f = w / info.display_width
    judged = []

    def judge(frame, fc):  # the right face looks like the person (its first chip is unusable), the others do not
        judged.append(round(fc.box[0] / f))
        if fc.box[0] / f > 450:
            return None if len([x for x in judged if x > 450]) == 1 else 0.97
        return 0.85

    class Counting(_PixelModel):
        seen = 0

        def push(self, frames, final=False):
            Counting.seen += len(frames)
            return super().push(frames, final)

    cut = _LateShots([Transition(40, 40, "cut")])  # the one-clip subject is linked across it: so are these
    crops = SplitCrops(Counting(), info, 640, n, cut, every, max_gap=38, min_len=1, from_start=True, judge=judge, floor=0.94)
    for i, frame in enumerate(frames):
        crops.feed(i, frame, detections.get(i))
    crops.finish(Shots(n, 25.0, [Transition(40, 40, "cut")]))
    tracks = [t for t in link_tracks(detections, 38) if len(t.frames) > 1]
    assert [(t.frames[0], t.frames[-1]) for t in tracks] == [(0, n - 1), (0, n - 3), (0, n - 1), (0, n - 1), (20, n - 1)]
    assert len(crops.done) == 1 and Counting.seen == n  # the model saw the person's frames only
    # the three largest first; as two of them are judged not the person (by frame 40) their
    # places go to the fourth and to the later face, each judged too: five faces, five frames each
    assert len(judged) == 5 * 5
    person = tracks[1]
    _assert_cut_as_decoded(monkeypatch, crops, info, frames, person)
    assert crops.track(person.frames[1:], person.faces[1:], 0, n) is None  # a subject on other frames
    for t in (tracks[0], tracks[3], tracks[4]):
        assert crops.track(t.frames, t.faces, 0, n) is None
    crops.release()
    assert crops.track(person.frames, person.faces, 0, n) is None


def test_person_on_one_clip_appearing_late_takes_its_crops_from_the_pass(monkeypatch):
    """One clip with --person whose face appears 20 frames in (after a fade-in, a title): its
    crops are cut from frame 0, the frames before its first taking its first box as the
    check's own decode does, and equal that decode's bit for bit; it is judged on five frames,
    as a face of the first frame is; a face that appears after LATE frames is not followed."""
    from prep.detect import Face
    from prep.video.shots import Shots
    from prep.video.trackcrops import LATE, SplitCrops
    from prep.video.tracks import link_tracks

    n, every = 120, 2
    info, frames, analysed = _noise_clip(n, 5, every)
    later = LATE + 10
    detections = {i: ([_box(i)] if i >= 20 else []) + ([Face((60.0, 1000.0, 150.0, 165.0), np.zeros((5, 2), np.float32), 0.95)] if i >= later else []) for i in analysed}
    detections = {i: f for i, f in detections.items() if f}
    judged = []
    crops = SplitCrops(_PixelModel(), info, 640, n, None, every, max_gap=38, min_len=1, from_start=True, judge=lambda frame, face: judged.append(1) or 0.97, floor=0.94)
    for i, frame in enumerate(frames):
        crops.feed(i, frame, detections.get(i))
    crops.finish(Shots(n, 25.0, []))
    person, other = link_tracks(detections, 38)
    assert (person.frames[0], other.frames[0]) == (20, later)
    _assert_cut_as_decoded(monkeypatch, crops, info, frames, person)
    assert crops.track(other.frames, other.faces, 0, n) is None and len(crops.done) == 1
    assert len(judged) == 5  # judged as often as a face of the first frame


def test_split_crops_boxes_equal_the_whole_tracks_boxes():
    """The smoothed boxes a track's crops are cut with while it is still open are the boxes of
    the whole track, exactly, an hour into a video (where a frame's time j0/25 + m/25 can be a
    rounding step past its detection's time (j0 + m)/25) and with a face that jumps about."""
    from prep.detect import Face
    from prep.speech import track as tr
    from prep.speech.crops import smooth_boxes
    from prep.video.trackcrops import _Open
    from prep.video.tracks import Track

    rng = np.random.default_rng(2)
    for j0 in (270007, 90011, 3):
        n = 60
        faces = []
        for _ in range(n):
            s = 600.0 * rng.uniform(0.9, 1.1)
            faces.append(Face((960 + rng.uniform(-100, 100) - s / 2, 540 + rng.uniform(-100, 100) - s / 2, s, s), np.zeros((5, 2), np.float32), 0.95))
        track = Track([j0], [faces[0]])
        o = _Open(track)
        got = {}
        for k in range(1, n):
            track.frames.append(j0 + k)
            track.faces.append(faces[k])
            for j in range(j0, j0 + n):
                if j not in got and (b := o.box(j, None)) is not None:
                    got[j] = b
        got.update({j: o.box(j, n) for j in range(j0, j0 + n) if j not in got})
        want = smooth_boxes(tr.boxes_at(j0 / tr.RATE + np.arange(n) / tr.RATE, np.arange(j0, j0 + n, dtype=np.float64) / tr.RATE, np.array([[*f.center, f.size] for f in faces])))
        assert np.array_equal(np.array([got[j] for j in range(j0, j0 + n)]), want), j0


def test_audio_statistics_in_blocks_equal_one_pass(monkeypatch):
    """Loudness, voicing and the offset's bootstrap go through a long track a block at a time
    (memory flat in its length: an hour's loudness took 1.3 GiB, its bootstrap 0.5): the values
    are the ones a single pass gives, bit for bit."""
    from prep.speech import sync, vad

    rng = np.random.default_rng(5)
    pcm = rng.normal(0, 3000, 16000 * 9 + 77).astype(np.int16)
    x = pcm.astype(np.float64) / 32768.0  # the single pass
    c = np.concatenate([[0.0], np.cumsum(x * x)])
    e = np.clip(np.round(np.arange(226) * 640.0).astype(int), 0, len(x))
    whole = np.log((c[e[1:]] - c[e[:-1]]) / np.maximum(1, e[1:] - e[:-1]) + 1e-7)
    monkeypatch.setattr(sync, "SAMPLES_AT_ONCE", 1000)
    assert np.array_equal(sync.loudness(pcm, 225, 640.0), whole)
    m = rng.normal(0, 1, (5000, sync.K_HI - sync.K_LO + 1))
    m[:, 9] += 0.05  # a peak the bootstrap mostly finds
    at_once = repr(sync.measure_offset(m))
    monkeypatch.setattr(sync, "BOOT_AT_ONCE", 1)  # one resample at a time
    assert repr(sync.measure_offset(m)) == at_once
    voiced = vad.voiced_pieces(pcm)
    monkeypatch.setattr(vad, "PIECES_AT_ONCE", 7)
    assert np.array_equal(vad.voiced_pieces(pcm), voiced)


class _MatchModel:
    """A stand-in for Light-ASD's back end that scores a face frame by how well its audio frame
    matches it: the lag search's plumbing, not the network, is what is tested."""

    def backend(self, a: np.ndarray, v: np.ndarray) -> np.ndarray:
        return (a * v).sum(-1)

    def scores(self, x: np.ndarray) -> np.ndarray:
        return x


@pytest.mark.parametrize("offset", [-7, -6, -3, 0, 3, 6, 7])
def test_offsets_are_measured_alike_either_way(offset):
    """Audio early or late by less than ``LAGS`` frames is measured (the search is centred on the
    model's lean; searching -8..+8 model lags measured -6..+9, so audio 6 frames early was
    never trusted), and the search reads the audio where its margin puts it."""
    from prep.speech import sync

    rng = np.random.default_rng(3)
    n = 150
    emb = rng.normal(0, 1, (n + 2 * sync.MARGIN, 128)).astype(np.float32)
    lag = offset + sync.BIAS  # the model's own lean, as a real model shows it: between two lags
    lo, hi = math.floor(lag), math.ceil(lag)
    audio = emb.copy()
    # face frame t matches audio frames t + lo and t + hi equally: the peak lies between them
    visual = (emb[sync.MARGIN + lo + np.arange(n)] + emb[sync.MARGIN + hi + np.arange(n)]) / 2
    rows = sync.lag_matrix(_MatchModel(), visual, audio, sync.window_starts(np.ones(n, bool)))
    off = sync.measure_offset(rows)
    assert off.frames == pytest.approx(offset, abs=0.01) and off.confidence > 0.9
    assert int(np.argmax(off.curve)) in (lo - sync.K_LO, hi - sync.K_LO)
