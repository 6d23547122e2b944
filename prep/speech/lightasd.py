"""Light-ASD (Liao et al., CVPR 2023; MIT licence) active-speaker model, run in numpy.

Inputs, as the model was trained (25 fps video, 100 MFCC frames a second, 4 per video frame):

- faces: (T, 112, 112) uint8 grey crops, the centre 112 of a face box resized to 224;
- audio: (4T, 13) MFCCs from :func:`prep.speech.mfcc.mfcc` on 16 kHz mono int16 PCM.

``scores(backend(audio(m), visual(f)))`` gives one raw logit a frame, > 0 meaning "this face
is speaking": what the reference's Columbia_test.py averages over several chunkings.

BatchNorm is folded into the convolutions at load time. Tensors are kept channels-last,
spatial convolutions run as im2col + one float32 matmul, temporal convolutions as a sum of
shifted matmuls; the GRUs step in numpy.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..detect.weights import ModelFile, resolve
from ..errors import PrepError
from .torchzip import load_state_dict

_UPSTREAM = "https://github.com/Junhua-Liao/Light-ASD/raw/ed38c232de5efe0261dbd68627c0ade7cdfe14eb/weight"
LIGHT_ASD_AVA = ModelFile(
    filename="light_asd_pretrain_AVA_CVPR.model",
    sha256="d44bc3ea7baa8e0946fa3921311714a630ed8b90a1928fab0dbe30d918909317",
    url=f"{_UPSTREAM}/pretrain_AVA_CVPR.model",
)
LIGHT_ASD_TALKSET = ModelFile(
    filename="light_asd_finetuning_TalkSet.model",
    sha256="efc375833887eefa9d209dc92810e18519b04c3c73ea35a549f2a7f40b7d94d5",
    url=f"{_UPSTREAM}/finetuning_TalkSet.model",
)
CHECKPOINTS = {"ava": LIGHT_ASD_AVA, "talkset": LIGHT_ASD_TALKSET}
# the weights' licence travels with them: fetched beside a downloaded checkpoint, like it
LIGHT_ASD_LICENCE = ModelFile(
    filename="light_asd_LICENSE.txt",
    sha256="3c5b187c06d6c0fdcfe02ad73f51470eaa35045cc2e60749d805332d98441eb1",
    url=_UPSTREAM.rsplit("/", 1)[0] + "/LICENSE",
)

BN_EPS = 1e-3
PIXEL_MEAN, PIXEL_STD = 0.4161, 0.1688
FACE_SIZE = 112
EMBED = 128
_REACH = 2  # frames each temporal convolution reads either side of its output frame (kernel 5)
_COLS_BYTES = 2 << 20  # im2col working set per matmul
_TEMPORAL_ROWS = 8192  # positions (frames x pixels) per step of the temporal convolutions


@dataclass(frozen=True)
class _Conv:
    """Convolution with BatchNorm folded in, followed by ReLU. Spatial and 1x1: w is
    (taps * Cin, Cout), applied as ``relu(patches @ w + b)``; temporal: w is (k, Cin, Cout)."""

    w: np.ndarray
    b: np.ndarray


@dataclass(frozen=True)
class _Block:
    """One Visual_Block / Audio_Block: two branches (spatial k x k then temporal k, k = 3 and 5)
    summed, then a 1x1 convolution. Spatial kernels are (kh, kw) over axes 1, 2 of a
    (time, H, W, C) tensor; temporal weights are (k, C, C)."""

    s3: _Conv
    s5: _Conv
    t3: _Conv
    t5: _Conv
    last: _Conv
    k3: tuple[int, int]
    k5: tuple[int, int]
    stride: int


def _folded(sd: dict[str, np.ndarray], conv: str, bn: str) -> tuple[np.ndarray, np.ndarray]:
    """Conv weight (Cout, Cin, *k) scaled by the eval-mode BatchNorm, and the BN's shift."""
    scale = sd[f"{bn}.weight"] / np.sqrt(sd[f"{bn}.running_var"] + BN_EPS)
    w = sd[f"{conv}.weight"] * scale.reshape(-1, *([1] * (sd[f"{conv}.weight"].ndim - 1)))
    b = sd[f"{bn}.bias"] - sd[f"{bn}.running_mean"] * scale
    return w.astype(np.float32), b.astype(np.float32)


def _spatial_conv(w: np.ndarray, b: np.ndarray) -> _Conv:
    # (Cout, Cin, kh, kw) -> rows ordered (kh, kw, Cin) to match the patch layout.
    cout = w.shape[0]
    return _Conv(np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(-1, cout)), b)


def _temporal_conv(w: np.ndarray, b: np.ndarray) -> _Conv:
    # (Cout, Cin, k) -> (k, Cin, Cout)
    return _Conv(np.ascontiguousarray(w.transpose(2, 1, 0)), b)


def _visual_block(sd: dict[str, np.ndarray], p: str, stride: int) -> _Block:
    conv = {}
    for k in (3, 5):
        w, b = _folded(sd, f"{p}.s_{k}", f"{p}.bn_s_{k}")  # (Co, Ci, 1, k, k)
        conv[f"s{k}"] = _spatial_conv(w[:, :, 0], b)
        w, b = _folded(sd, f"{p}.t_{k}", f"{p}.bn_t_{k}")  # (Co, Ci, k, 1, 1)
        conv[f"t{k}"] = _temporal_conv(w[:, :, :, 0, 0], b)
    w, b = _folded(sd, f"{p}.last", f"{p}.bn_last")
    return _Block(last=_Conv(np.ascontiguousarray(w[:, :, 0, 0, 0].T), b), k3=(3, 3), k5=(5, 5), stride=stride, **conv)


def _audio_block(sd: dict[str, np.ndarray], p: str) -> _Block:
    # Torch sees (B, C, 13 mfcc, time): m_k is (k, 1) over the MFCC axis, t_k is (1, k) over time.
    # Here the tensor is (time, 13, 1, C): m_k becomes the "spatial" kernel (k, 1).
    conv = {}
    for k in (3, 5):
        w, b = _folded(sd, f"{p}.m_{k}", f"{p}.bn_m_{k}")  # (Co, Ci, k, 1)
        conv[f"s{k}"] = _spatial_conv(w, b)
        w, b = _folded(sd, f"{p}.t_{k}", f"{p}.bn_t_{k}")  # (Co, Ci, 1, k)
        conv[f"t{k}"] = _temporal_conv(w[:, :, 0, :], b)
    w, b = _folded(sd, f"{p}.last", f"{p}.bn_last")
    return _Block(last=_Conv(np.ascontiguousarray(w[:, :, 0, 0].T), b), k3=(3, 1), k5=(5, 1), stride=1, **conv)


def _matmul_relu(a: np.ndarray, c: _Conv) -> np.ndarray:
    y = a @ c.w
    y += c.b
    return np.maximum(y, 0, out=y)


def _spatial(x: np.ndarray, blk: _Block, y3: np.ndarray | None = None, y5: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Both branches' spatial convs (+BN, ReLU) of x (N, H, W, C): two (N, Ho, Wo, Cout) arrays
    (written into ``y3``, ``y5`` when given)."""
    (a3, b3), (a5, b5), s = blk.k3, blk.k5, blk.stride
    n, h, w, c = x.shape
    xp = np.pad(x, ((0, 0), (a5 // 2, a5 // 2), (b5 // 2, b5 // 2), (0, 0)))
    ho, wo = (h - 1) // s + 1, (w - 1) // s + 1
    sn, sh, sw, sc = xp.strides
    p5 = np.lib.stride_tricks.as_strided(xp, (n, ho, wo, a5, b5, c), (sn, s * sh, s * sw, sh, sw, sc), writeable=False)
    p3 = p5[:, :, :, (a5 - a3) // 2 : (a5 + a3) // 2, (b5 - b3) // 2 : (b5 + b3) // 2]
    cout = blk.s5.w.shape[1]
    y3 = np.empty((n, ho, wo, cout), np.float32) if y3 is None else y3
    y5 = np.empty((n, ho, wo, cout), np.float32) if y5 is None else y5
    step = max(1, _COLS_BYTES // (ho * wo * a5 * b5 * c * 4))
    for i in range(0, n, step):
        j = min(n, i + step)
        y5[i:j] = _matmul_relu(p5[i:j].reshape((j - i) * ho * wo, -1), blk.s5).reshape(j - i, ho, wo, cout)
        y3[i:j] = _matmul_relu(p3[i:j].reshape((j - i) * ho * wo, -1), blk.s3).reshape(j - i, ho, wo, cout)
    return y3, y5


def _temporal_add(x: np.ndarray, c: _Conv, t0: int, t1: int, out: np.ndarray, tmp: np.ndarray) -> None:
    """out += relu(BN(conv over axis 0, kernel k, zero 'same' padding)) of x (T, P, C) at
    output frames t0..t1-1; out and tmp are ((t1 - t0) * P, Cout) float32 (tmp is scratch)."""
    k, t, rows = c.w.shape[0], x.shape[0], x.shape[1]
    tmp[:] = c.b
    for j in range(k):
        s0 = t0 + j - k // 2  # input frame that tap j reads for output frame t0
        a0, a1 = max(0, s0), min(t, s0 + t1 - t0)
        if a0 < a1:
            o = (a0 - s0) * rows
            acc = tmp[o : o + (a1 - a0) * rows]
            acc += x[a0:a1].reshape(-1, x.shape[2]) @ c.w[j]
    np.maximum(tmp, 0, out=tmp)
    out += tmp


def _temporal_last(y3: np.ndarray, y5: np.ndarray, blk: _Block, t0: int, t1: int) -> np.ndarray:
    """The rest of a block after its spatial convolutions, for frames t0..t1-1 of the branches'
    outputs y3, y5 (T, P, C): both temporal convolutions (+BN, ReLU) summed, then the 1x1
    convolution (+BN, ReLU); frames outside [0, T) count as zeros. Runs a few frames at a time
    so that its working set stays in cache. Returns (t1 - t0, P, Cout)."""
    rows, cout = y3.shape[1], blk.last.w.shape[1]
    out = np.empty((t1 - t0, rows, cout), np.float32)
    step = max(1, _TEMPORAL_ROWS // rows)
    acc = np.empty((step * rows, blk.t3.w.shape[2]), np.float32)
    tmp = np.empty_like(acc)
    for a in range(t0, t1, step):
        b = min(t1, a + step)
        n = (b - a) * rows
        acc[:n] = 0
        _temporal_add(y3, blk.t3, a, b, acc[:n], tmp[:n])
        _temporal_add(y5, blk.t5, a, b, acc[:n], tmp[:n])
        o = out[a - t0 : b - t0].reshape(n, cout)
        np.matmul(acc[:n], blk.last.w, out=o)
        o += blk.last.b
        np.maximum(o, 0, out=o)
    return out


def _block(x: np.ndarray, blk: _Block) -> np.ndarray:
    """One block on x (T, H, W, Cin) -> (T, Ho, Wo, Cout)."""
    y3, y5 = _spatial(x, blk)
    t, ho, wo, cout = y3.shape
    y3, y5 = y3.reshape(t, ho * wo, cout), y5.reshape(t, ho * wo, cout)
    return _temporal_last(y3, y5, blk, 0, t).reshape(t, ho, wo, -1)


class _StreamedBlock:
    """A visual block over frames that arrive a few at a time. Its temporal convolutions reach
    ``_REACH`` frames each side, so each push gives the outputs of the frames whose following
    frames are in, and keeps the spatial outputs the next frames' outputs still need: every
    frame is computed once, and memory holds a few frames whatever the sequence's length."""

    def __init__(self, blk: _Block, pool: bool) -> None:
        self.blk, self.pool = blk, pool
        self.buf: np.ndarray | None = None  # (2, capacity, P, C): both branches' spatial outputs
        self.held = 0  # frames [first, first + held) are in buf[:, :held]
        self.first = self.done = 0
        self.hw = (0, 0)  # the block's output height and width

    def push(self, x: np.ndarray, final: bool) -> np.ndarray:
        """The outputs (pooled after blocks 1 and 2) of the frames made final by the new input
        frames x (n, H, W, C); with ``final``, of every frame left (the sequence ends)."""
        cout = self.blk.last.w.shape[1]
        if len(x):
            n, s = len(x), self.blk.stride
            self.hw = ho, wo = (x.shape[1] - 1) // s + 1, (x.shape[2] - 1) // s + 1
            c = self.blk.s3.w.shape[1]
            if self.buf is None or self.buf.shape[1] < self.held + n:  # grown, then reused: no allocation per push
                grown = np.empty((2, self.held + n, ho * wo, c), np.float32)
                if self.held:
                    grown[:, : self.held] = self.buf[:, : self.held]
                self.buf = grown
            new = self.buf[:, self.held : self.held + n].reshape(2, n, ho, wo, c)
            _spatial(x, self.blk, new[0], new[1])
            self.held += n
        seen = self.first + self.held
        end = seen if final else seen - _REACH
        if self.buf is None or end <= self.done:
            return np.zeros((0, 1, 1, cout), np.float32)
        y3, y5 = self.buf[0, : self.held], self.buf[1, : self.held]
        out = _temporal_last(y3, y5, self.blk, self.done - self.first, end - self.first)
        keep = max(self.first, end - _REACH)  # the frames before `end` its next outputs read
        k = keep - self.first
        self.buf[:, : self.held - k] = self.buf[:, k : self.held]
        self.held -= k
        self.first, self.done = keep, end
        out = out.reshape(len(out), *self.hw, cout)
        return _maxpool_hw(out) if self.pool else out


class VisualEncoder:
    """Light-ASD's visual encoder as a stream: face crops go in a few at a time, embeddings of
    the frames whose context is complete come out (6 frames behind: 2 per block). The result
    equals one pass over the whole sequence; no frame is computed twice, and memory does not
    grow with the sequence's length."""

    def __init__(self, model: "LightASD") -> None:
        self.blocks = [_StreamedBlock(b, pool=i < 2) for i, b in enumerate(model.vblocks)]

    def push(self, frames: np.ndarray, final: bool = False) -> np.ndarray:
        """Embeddings (m, 128) of the frames made final by ``frames`` (n, 112, 112) uint8 grey
        crops; ``final=True`` ends the sequence and gives the rest."""
        frames = np.asarray(frames)
        if frames.ndim != 3 or frames.shape[1:] != (FACE_SIZE, FACE_SIZE):
            raise ValueError(f"the visual encoder needs (T, {FACE_SIZE}, {FACE_SIZE}) frames, got {frames.shape}")
        x = frames.astype(np.float32)[..., None]
        x = (x / np.float32(255) - np.float32(PIXEL_MEAN)) / np.float32(PIXEL_STD)
        for blk in self.blocks:
            x = blk.push(x, final)
        return x.max(axis=(1, 2)) if len(x) else np.zeros((0, EMBED), np.float32)

    def finish(self) -> np.ndarray:
        """Embeddings of the frames still held: the sequence ends."""
        return self.push(np.zeros((0, FACE_SIZE, FACE_SIZE), np.uint8), final=True)


def _maxpool_hw(x: np.ndarray) -> np.ndarray:
    """3x3 max pool, stride 2, padding 1 over axes 1, 2 of a non-negative (N, H, W, C) array."""
    if x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0 and x.shape[1] > 1 and x.shape[2] > 1:
        # the visual encoder's even sizes, without a padded copy: output row i is the max of
        # rows 2i, 2i+1 and 2i-1 (none above the first), and the same over columns
        r = np.maximum(x[:, 0::2], x[:, 1::2])
        np.maximum(r[:, 1:], x[:, 1:-1:2], out=r[:, 1:])
        o = np.maximum(r[:, :, 0::2], r[:, :, 1::2])
        np.maximum(o[:, :, 1:], r[:, :, 1:-1:2], out=o[:, :, 1:])
        return o
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))  # zero padding == -inf padding for x >= 0
    h, w = (x.shape[1] - 1) // 2 + 1, (x.shape[2] - 1) // 2 + 1
    rows = np.maximum(np.maximum(xp[:, 0 : 2 * h : 2], xp[:, 1 : 2 * h + 1 : 2]), xp[:, 2 : 2 * h + 2 : 2])
    return np.maximum(np.maximum(rows[:, :, 0 : 2 * w : 2], rows[:, :, 1 : 2 * w + 1 : 2]), rows[:, :, 2 : 2 * w + 2 : 2])


def _maxpool_t(x: np.ndarray) -> np.ndarray:
    """Max pool kernel 3, stride 2, padding 1 over axis 0 of a non-negative array."""
    xp = np.pad(x, ((1, 1),) + ((0, 0),) * (x.ndim - 1))
    t = (x.shape[0] - 1) // 2 + 1
    return np.maximum(np.maximum(xp[0 : 2 * t : 2], xp[1 : 2 * t + 1 : 2]), xp[2 : 2 * t + 2 : 2])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


# erfc's Chebyshev fit from Numerical Recipes (fractional error below 1.2e-7 everywhere):
# the constant term, then the coefficients of t, t^2, ... t^9.
_ERFC_FIT = tuple(np.float32(c) for c in (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277))


def _erf(x: np.ndarray) -> np.ndarray:
    """erf of a float32 array, vectorised, in float32 (the fit's error is float32's own
    resolution; float64 took three times as long and was 10% of the speech check)."""
    z = np.abs(x)
    t = np.float32(1.0) / (np.float32(1.0) + np.float32(0.5) * z)
    poly = _ERFC_FIT[9]
    for c in _ERFC_FIT[8:0:-1]:
        poly = c + t * poly
    r = np.float32(1.0) - t * np.exp(-z * z + _ERFC_FIT[0] + t * poly)
    return np.copysign(r, x)


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x * Phi(x) with the erf form (torch.nn.GELU's default), in float32."""
    x = x.astype(np.float32, copy=False)
    return x * (np.float32(0.5) * (np.float32(1.0) + _erf(x * np.float32(1.0 / math.sqrt(2.0)))))


@dataclass(frozen=True)
class _GRU:
    """One-layer unidirectional torch.nn.GRU; gate blocks ordered [r | z | n]."""

    w_ih: np.ndarray  # (Cin, 3H), transposed from torch
    w_hh: np.ndarray  # (H, 3H)
    b_ih: np.ndarray  # (3H,)
    b_hh: np.ndarray  # (3H,)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Hidden states (..., T, H) of inputs (..., T, Cin): one sequence or a batch of them."""
        hsz = self.w_hh.shape[0]
        gi = x @ self.w_ih + self.b_ih
        h = np.zeros(x.shape[:-2] + (hsz,), np.float32)
        out = np.empty(x.shape[:-1] + (hsz,), np.float32)
        for t in range(x.shape[-2]):
            gh = h @ self.w_hh + self.b_hh
            g = gi[..., t, :]
            rz = _sigmoid(g[..., : 2 * hsz] + gh[..., : 2 * hsz])
            n = np.tanh(g[..., 2 * hsz :] + rz[..., :hsz] * gh[..., 2 * hsz :])
            z = rz[..., hsz:]
            h = n + z * (h - n)  # (1 - z) * n + z * h
            out[..., t, :] = h
        return out


class LightASD:
    """The Light-ASD network with BatchNorm folded; build with :meth:`load` or :func:`load_default`."""

    def __init__(self, sd: dict[str, np.ndarray]) -> None:
        try:
            self.vblocks = [_visual_block(sd, f"model.visualEncoder.block{i}", 2 if i == 1 else 1) for i in (1, 2, 3)]
            self.ablocks = [_audio_block(sd, f"model.audioEncoder.block{i}") for i in (1, 2, 3)]
            self.grus = [
                _GRU(*(np.ascontiguousarray(sd[f"model.GRU.gru_{d}.{n}_l0"].T) for n in ("weight_ih", "weight_hh")),
                     sd[f"model.GRU.gru_{d}.bias_ih_l0"], sd[f"model.GRU.gru_{d}.bias_hh_l0"])
                for d in ("forward", "backward")
            ]
            self.fc_av = (sd["lossAV.FC.weight"], sd["lossAV.FC.bias"])
        except KeyError as exc:
            raise PrepError(None, f"not a Light-ASD state dict (missing {exc})") from None
        self.fc_v = (sd["lossV.FC.weight"], sd["lossV.FC.bias"]) if "lossV.FC.weight" in sd else None

    @classmethod
    def load(cls, path: str | Path) -> LightASD:
        """Build from a torch.save'd Light-ASD checkpoint (read without torch)."""
        return cls(load_state_dict(path))

    def visual(self, frames: np.ndarray, chunk: int = 16) -> np.ndarray:
        """Visual embeddings (T, 128) float32 of (T, 112, 112) uint8 grey face crops (0..255),
        through a :class:`VisualEncoder` ``chunk`` frames at a time (the result does not depend
        on ``chunk``)."""
        frames = np.asarray(frames)
        enc = self.visual_encoder()
        out = [enc.push(frames[:0])]  # checks the shape, even of an empty sequence
        out += [enc.push(frames[a : a + chunk]) for a in range(0, len(frames), chunk)]
        out.append(enc.finish())
        return np.concatenate(out)

    def visual_encoder(self) -> VisualEncoder:
        """A :class:`VisualEncoder`: crops in as they come, embeddings out."""
        return VisualEncoder(self)

    def audio(self, mfcc: np.ndarray) -> np.ndarray:
        """Audio embeddings (ceil(N / 4), 128) float32 of (N, 13) MFCCs (N = 4T for T frames).

        The whole sequence is processed at once (about 7 kB of scratch per MFCC row):
        give it minutes, not hours, per call."""
        m = np.asarray(mfcc, dtype=np.float32)
        if m.ndim != 2 or m.shape[1] != 13 or m.shape[0] == 0:
            raise ValueError(f"audio() needs (N, 13) MFCCs, got {m.shape}")
        x = m[:, :, None, None]  # (time, 13, 1, C=1)
        for i, blk in enumerate(self.ablocks):
            x = _block(x, blk)
            if i < 2:
                x = _maxpool_t(x)
        return x.mean(axis=(1, 2), dtype=np.float32)

    def backend(self, a: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Audio-visual features (..., T, 128) float32 of audio and visual embeddings of the same
        shape (..., T, 128): one sequence, or a batch of equally long ones."""
        if a.shape != v.shape or a.ndim < 2 or a.shape[-1] != EMBED:
            raise ValueError(f"backend() needs two (..., T, {EMBED}) arrays of one shape, got {a.shape} and {v.shape}")
        fwd, bwd = self.grus
        x = _gelu(fwd((a + v).astype(np.float32)))
        return _gelu(bwd(x[..., ::-1, :])[..., ::-1, :])

    def scores(self, h: np.ndarray) -> np.ndarray:
        """Speaking score (..., T) float32 per frame of backend features (..., T, 128): the second
        logit of lossAV's FC, as the authors' Columbia_test.py uses (above 0: speaking)."""
        w, b = self.fc_av
        return (h @ w[1] + b[1]).astype(np.float32)

    def visual_only_scores(self, v: np.ndarray) -> np.ndarray:
        """Speaking score (T,) from visual embeddings alone (lossV's FC, an auxiliary training head)."""
        if self.fc_v is None:
            raise PrepError(None, "this checkpoint has no visual-only head (lossV.FC)")
        w, b = self.fc_v
        return (v @ w[1] + b[1]).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _load_cached(path: Path) -> LightASD:
    return LightASD.load(path)


@functools.lru_cache(maxsize=8)
def _resolved(checkpoint: str, weights_dir: str | None, env: tuple) -> Path:
    """The checkpoint's verified path, found (or fetched) and hashed once per process and
    setting: every track of a run asks again. ``env`` keys the cache on the variables that
    change where models are looked for."""
    path = resolve(CHECKPOINTS[checkpoint], weights_dir).resolve()
    try:  # its licence beside it (MIT, Copyright (c) 2023 Liao Junhua); offline without it: no matter
        resolve(LIGHT_ASD_LICENCE, weights_dir)
    except PrepError:
        pass
    return path


def load_default(weights_dir: str | Path | None = None, checkpoint: str = "ava") -> LightASD:
    """The Light-ASD model ``checkpoint`` ("ava" or "talkset"), found or fetched through
    prep's weights mechanism (sha256-checked) and loaded once per process."""
    import os

    if checkpoint not in CHECKPOINTS:
        raise PrepError(None, f"unknown Light-ASD checkpoint {checkpoint!r} (choose from {', '.join(CHECKPOINTS)})")
    env = tuple(os.environ.get(k) for k in ("PREP_WEIGHTS_DIR", "PREP_CACHE_DIR", "XDG_CACHE_HOME", "PREP_OFFLINE"))
    return _load_cached(_resolved(checkpoint, None if weights_dir is None else str(weights_dir), env))
