"""dlib's face descriptor network, read from its model file and run in numpy.

The identity vector (``prep.identity``) is dlib's ResNet metric network
(``dlib_face_recognition_resnet_model_v1.dat``, CC0, from the ``face_recognition_models``
package). The ``dlib-bin`` wheel runs that network without a BLAS: about 90 ms a chip on one
core. Here the same weights run as im2col + one float32 matmul per convolution: the same
descriptor (within float32 rounding, about 1e-6) several times faster, and a batch of chips in
one call.

The file is dlib's own serialisation of the network ``anet_type`` of dlib's
``dnn_face_recognition_ex.cpp``: a loss layer wrapping layers down to the input, each layer
writing its version, then the layers below it, then its own details. The reader follows that
architecture layer by layer and checks every version string, filter shape, stride and padding
it meets, so a different file is refused with one line instead of read wrongly.

The network, from the input up (C: channels; every convolution is followed by a per-channel
affine, the folded batch norm, which is folded into the convolution's weights here):

- 150x150 RGB chip, minus the per-channel mean, over 256;
- conv 7x7/2 (32), ReLU, max pool 3x3/2 -> 35x35;
- residual blocks of two 3x3 convolutions: 3 at 32 channels; then, each starting with a
  downsampling block (first convolution stride 2, no padding; the shortcut a 2x2 average pool),
  4 at 64, 3 at 128, 3 at 256, 1 at 256. Where the two branches of a downsampling block
  differ in size (channels or pixels) the smaller one is read as zeros beyond its edge, as
  dlib's ``add_prev`` does;
- the mean over the remaining pixels, and a 256 -> 128 matrix (no bias).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import PrepError

CHIP = 150
_COLS_BYTES = 4 << 20  # im2col working set per matmul


class _Reader:
    """dlib's serialisation primitives over the bytes of a file."""

    def __init__(self, data: bytes, path: str) -> None:
        self.data, self.pos, self.path = data, 0, path

    def fail(self, what: str) -> PrepError:
        return PrepError(self.path, f"not dlib's face descriptor network: {what} (at byte {self.pos})")

    def int_(self) -> int:
        """dlib's integer: a control byte (bit 7: negative; low 4 bits: how many bytes follow),
        then the magnitude, little-endian."""
        if self.pos >= len(self.data):
            raise self.fail("the file ends early")
        ctl = self.data[self.pos]
        n = ctl & 0x0F
        if n == 0 or n > 8 or self.pos + 1 + n > len(self.data):
            raise self.fail("a malformed integer")
        v = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + n], "little")
        self.pos += 1 + n
        return -v if ctl & 0x80 else v

    def string(self) -> str:
        n = self.int_()
        s = self.data[self.pos : self.pos + n]
        self.pos += n
        return s.decode("latin-1")

    def bool_(self) -> bool:
        b = self.data[self.pos : self.pos + 1]
        self.pos += 1
        if b not in (b"0", b"1"):
            raise self.fail("a malformed flag")
        return b == b"1"

    def float_(self) -> float:
        """dlib's portable float: a mantissa and a binary exponent, both dlib integers."""
        mantissa, exponent = self.int_(), self.int_()
        if exponent >= 32000:
            raise self.fail("an infinite or NaN constant")
        return float(np.ldexp(float(mantissa), exponent))

    def tensor(self) -> np.ndarray:
        """A tensor: version 2, its four sizes, then little-endian float32 values."""
        self.version(2, "tensor")
        shape = tuple(self.int_() for _ in range(4))
        n = int(np.prod(shape))
        end = self.pos + 4 * n
        if end > len(self.data):
            raise self.fail("a tensor runs past the end of the file")
        a = np.frombuffer(self.data, "<f4", n, self.pos).reshape(shape)
        self.pos = end
        return a

    def alias(self) -> tuple[int, ...]:
        self.version(1, "alias tensor")
        return tuple(self.int_() for _ in range(4))

    def version(self, want: int | tuple[int, ...], what: str) -> int:
        v = self.int_()
        if v not in (want if isinstance(want, tuple) else (want,)):
            raise self.fail(f"{what} has version {v}")
        return v

    def name(self, *want: str) -> str:
        s = self.string()
        if s not in want:
            raise self.fail(f"found layer {s!r} where {' or '.join(want)} belongs")
        return s


# The architecture, outermost layer first, as its layers are nested in the file.
def _ares(n: int) -> list[tuple]:
    return [("relu",), ("add", 1), ("affine",), ("con", n, 3, 1), ("relu",), ("affine",), ("con", n, 3, 1), ("tag", 1)]


def _ares_down(n: int) -> list[tuple]:
    return [("relu",), ("add", 2), ("avg", 2, 2), ("skip", 1), ("tag", 2), ("affine",), ("con", n, 3, 1), ("relu",), ("affine",), ("con", n, 3, 2), ("tag", 1)]


_LAYERS = (
    [("fc", 128), ("avg", 0, 1)]
    + _ares_down(256)
    + _ares(256) + _ares(256) + _ares_down(256)
    + _ares(128) + _ares(128) + _ares_down(128)
    + _ares(64) + _ares(64) + _ares(64) + _ares_down(64)
    + _ares(32) + _ares(32) + _ares(32)
    + [("max", 3, 2), ("relu",), ("affine",), ("con", 32, 7, 2)]
)


def _details(r: _Reader, layer: tuple) -> dict:
    """One layer's own part of the file: its parameters, checked against the architecture."""
    kind = layer[0]
    if kind == "con":
        _, filters, k, stride = layer
        version = r.name("con_4", "con_5", "con_6")
        params = r.tensor()
        got = [r.int_() for _ in range(7)]  # filters, nr, nc, stride y, x, padding y, x
        pad = 0 if stride != 1 else k // 2
        if got != [filters, k, k, stride, stride, pad, pad]:
            raise r.fail(f"convolution {got} where {[filters, k, k, stride, stride, pad, pad]} belongs")
        w_shape, b_shape = r.alias(), r.alias()
        for _ in range(4):
            r.float_()  # learning-rate and weight-decay multipliers
        use_bias = r.bool_() if version in ("con_5", "con_6") else True
        if version == "con_6" and r.bool_():
            raise r.fail("a convolution with a fused ReLU")
        if w_shape[0] != filters or w_shape[2:] != (k, k) or (use_bias and int(np.prod(b_shape)) != filters):
            raise r.fail(f"convolution weights {w_shape} where ({filters}, C, {k}, {k}) belong")
        w = _take(r, params, 0, w_shape)  # (Cout, Cin, kh, kw)
        b = _take(r, params, w.size, (filters,)) if use_bias else np.zeros(filters, np.float32)
        return {"w": w, "b": b, "stride": stride, "pad": pad}
    if kind == "affine":
        version = r.name("affine_", "affine_2")
        params = r.tensor().reshape(-1)
        g_shape, _ = r.alias(), r.alias()
        if r.int_() != 0:
            raise r.fail("an affine layer not in convolution mode")
        if version == "affine_2" and r.bool_():
            raise r.fail("a disabled affine layer")
        n = int(np.prod(g_shape))
        return {"gamma": _take(r, params, 0, (n,)), "beta": _take(r, params, n, (n,))}
    if kind == "relu":
        if r.name("relu_", "relu_2") == "relu_2" and r.bool_():
            raise r.fail("a disabled ReLU")
        return {}
    if kind in ("max", "avg"):
        r.name("max_pool_2" if kind == "max" else "avg_pool_2")
        size, stride = layer[1], layer[2]
        got = [r.int_() for _ in range(6)]
        if got != [size, size, stride, stride, 0, 0]:
            raise r.fail(f"pooling {got} where {[size, size, stride, stride, 0, 0]} belongs")
        return {}
    if kind == "add":
        r.name("add_prev_")
        return {}
    if kind == "fc":
        version = r.name("fc_2", "fc_3")
        outputs, inputs = r.int_(), r.int_()
        params = r.tensor()
        w_shape, _ = r.alias(), r.alias()
        if r.int_() != 1:
            raise r.fail("a fully connected layer with a bias")
        for _ in range(4):
            r.float_()
        if version == "fc_3":
            r.bool_()
        if outputs != layer[1]:
            raise r.fail(f"{outputs} outputs where {layer[1]} belong")
        return {"w": _take(r, params, 0, (inputs, outputs))}
    raise AssertionError(kind)


def _take(r: _Reader, params: np.ndarray, start: int, shape: tuple[int, ...]) -> np.ndarray:
    """``shape`` values of a layer's parameter tensor from ``start`` on."""
    flat = params.reshape(-1)
    n = int(np.prod(shape))
    if start + n > flat.size:
        raise r.fail("a layer holds fewer parameters than its shapes say")
    return flat[start : start + n].reshape(shape)


def _trailer(r: _Reader, version: int, bottom: bool) -> None:
    """What dlib keeps beside a layer for training: three flags and gradient buffers."""
    for _ in range(3):
        r.bool_()
    r.tensor()
    r.tensor()
    if bottom:
        r.tensor()
        if version >= 3:
            r.int_()
    elif version == 2:
        r.tensor()


@dataclass(frozen=True)
class _Op:
    kind: str  # conv, max, avg, add, tag, skip, mean, fc
    w: np.ndarray | None = None  # conv: (kh * kw * Cin, Cout), rows ordered (kh, kw, Cin); fc: (Cin, Cout)
    b: np.ndarray | None = None
    k: int = 0
    stride: int = 1
    pad: int = 0
    relu: bool = False
    tag: int = 0


@dataclass(frozen=True)
class DescriptorNet:
    """The network as a list of operations from the input up, and the input's channel means."""

    ops: tuple[_Op, ...]
    means: np.ndarray  # (3,) R, G, B

    @classmethod
    def load(cls, path: str | Path) -> DescriptorNet:
        path = str(path)
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise PrepError(path, f"cannot read the face descriptor model: {exc.strerror or exc}") from None
        r = _Reader(data, path)
        r.version(1, "the loss layer")
        if r.name("loss_metric_", "loss_metric_2") == "loss_metric_2":
            r.float_(), r.float_()
        opened: list[tuple[tuple, int]] = []  # add_layers whose details come after their subnet's
        for layer in _LAYERS:
            if layer[0] in ("tag", "skip"):
                r.version(1, f"a {layer[0]} layer")
                continue
            bottom = layer is _LAYERS[-1]
            opened.append((layer, r.version((2, 3) if bottom else (1, 2), f"layer {layer[0]}")))
        r.name("input_rgb_image_sized")
        means = np.array([r.float_() for _ in range(3)], np.float32)
        if [r.int_(), r.int_()] != [CHIP, CHIP]:
            raise r.fail(f"an input that is not {CHIP}x{CHIP}")
        details = []
        for i, (layer, version) in enumerate(reversed(opened)):
            details.append(_details(r, layer))
            _trailer(r, version, bottom=i == 0)
        if r.pos != len(data):
            raise r.fail(f"{len(data) - r.pos} bytes after the network")
        net = cls(_compile(list(reversed(_LAYERS)), iter(details)), means)
        try:  # the layers' shapes fit together: one chip goes through
            fits = net(np.zeros((1, CHIP, CHIP, 3), np.uint8)).shape == (1, 128)
        except ValueError:
            fits = False
        if not fits:
            raise r.fail("its layers do not fit together")
        return net

    def __call__(self, chips: np.ndarray) -> np.ndarray:
        """Descriptors (n, 128) float32, not normalised, of ``n`` aligned 150x150 RGB uint8 chips
        (n, 150, 150, 3)."""
        x = np.asarray(chips)
        if x.ndim != 4 or x.shape[1:] != (CHIP, CHIP, 3):
            raise ValueError(f"the face descriptor needs (n, {CHIP}, {CHIP}, 3) RGB chips, got {x.shape}")
        x = (x.astype(np.float32) - self.means) / np.float32(256)
        tags: dict[int, np.ndarray] = {}
        for op in self.ops:
            if op.kind == "conv":
                x = _conv(x, op)
            elif op.kind == "max":
                x = _max_pool(x, op.k, op.stride)
            elif op.kind == "avg":
                x = _avg_pool2(x)
            elif op.kind == "tag":
                tags[op.tag] = x
            elif op.kind == "skip":
                x = tags[op.tag]
            elif op.kind == "add":
                x = _add_padded(x, tags[op.tag], op.relu)
            elif op.kind == "mean":
                x = x.mean(axis=(1, 2), dtype=np.float32)
            elif op.kind == "fc":
                x = x @ op.w
        return np.ascontiguousarray(x, np.float32)


def _compile(layers: list[tuple], details) -> tuple[_Op, ...]:
    """Operations from the input up: each convolution with its affine folded in and the ReLU
    that follows it fused; the ReLU after a residual sum fused into the sum."""
    ops: list[_Op] = []
    pending: dict | None = None
    for layer in layers:
        kind = layer[0]
        d = next(details) if kind not in ("tag", "skip") else {}
        if kind == "con":
            pending = d
            continue
        if kind == "affine":
            w, b = pending["w"], pending["b"]  # type: ignore[index]
            g, beta = d["gamma"].astype(np.float32), d["beta"].astype(np.float32)
            cout, k = w.shape[0], w.shape[2]
            wf = (w * g[:, None, None, None]).transpose(2, 3, 1, 0).reshape(-1, cout)
            ops.append(_Op("conv", np.ascontiguousarray(wf, np.float32), (b * g + beta).astype(np.float32), k, pending["stride"], pending["pad"]))  # type: ignore[index]
            pending = None
        elif kind == "relu":
            ops[-1] = dataclasses.replace(ops[-1], relu=True)
        elif kind == "max":
            ops.append(_Op("max", k=layer[1], stride=layer[2]))
        elif kind == "avg":
            ops.append(_Op("mean") if layer[1] == 0 else _Op("avg", k=2, stride=2))
        elif kind in ("tag", "skip", "add"):
            ops.append(_Op(kind, tag=layer[1]))
        elif kind == "fc":
            ops.append(_Op("fc", np.ascontiguousarray(d["w"], np.float32)))
    return tuple(ops)


def _conv(x: np.ndarray, op: _Op) -> np.ndarray:
    """Convolution (+ folded affine, + ReLU) of x (n, H, W, C) as im2col and one matmul."""
    k, s, p = op.k, op.stride, op.pad
    if p:
        x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    n, h, w, c = x.shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    sn, sh, sw, sc = x.strides
    patches = np.lib.stride_tricks.as_strided(x, (n, ho, wo, k, k, c), (sn, s * sh, s * sw, sh, sw, sc), writeable=False)
    cout = op.w.shape[1]
    out = np.empty((n, ho, wo, cout), np.float32)
    step = max(1, _COLS_BYTES // (ho * wo * k * k * c * 4))
    for i in range(0, n, step):
        j = min(n, i + step)
        y = patches[i:j].reshape((j - i) * ho * wo, -1) @ op.w
        y += op.b
        if op.relu:
            np.maximum(y, 0, out=y)
        out[i:j] = y.reshape(j - i, ho, wo, cout)
    return out


def _max_pool(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """k x k max pool with stride s and no padding over axes 1, 2."""
    n, h, w, c = x.shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    out = None
    for dy in range(k):
        for dx in range(k):
            v = x[:, dy : dy + s * (ho - 1) + 1 : s, dx : dx + s * (wo - 1) + 1 : s]
            out = v.copy() if out is None else np.maximum(out, v, out=out)
    return out


def _avg_pool2(x: np.ndarray) -> np.ndarray:
    """2x2 average pool, stride 2, no padding (an odd last row or column is dropped)."""
    n, h, w, c = x.shape
    ho, wo = h // 2, w // 2
    x = x[:, : 2 * ho, : 2 * wo]
    return (x[:, 0::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 0::2] + x[:, 1::2, 1::2]) * np.float32(0.25)


def _add_padded(a: np.ndarray, b: np.ndarray, relu: bool) -> np.ndarray:
    """a + b where each is zero beyond its own size (channels, rows, columns), as dlib's
    ``add_prev`` adds the two branches of a downsampling block."""
    if a.shape == b.shape:
        out = a + b
    else:
        shape = tuple(max(i, j) for i, j in zip(a.shape, b.shape))
        out = np.zeros(shape, np.float32)
        out[: a.shape[0], : a.shape[1], : a.shape[2], : a.shape[3]] += a
        out[: b.shape[0], : b.shape[1], : b.shape[2], : b.shape[3]] += b
    return np.maximum(out, 0, out=out) if relu else out
