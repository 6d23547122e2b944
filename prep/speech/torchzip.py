"""Read a ``torch.save`` checkpoint (the zip format of PyTorch >= 1.6) without importing torch.

The zip holds ``<dir>/data.pkl``, a pickle of the state dict whose tensors point at raw
storages ``<dir>/data/<key>`` (little-endian unless ``<dir>/byteorder`` says otherwise).
Unpickling is restricted to the handful of globals a plain state dict needs; anything else
is refused, so a checkpoint can never import or run arbitrary code.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PrepError

# torch storage class name -> numpy dtype of its elements (bfloat16 is widened on load).
_STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "f4",
    "DoubleStorage": "f8",
    "HalfStorage": "f2",
    "BFloat16Storage": "u2",  # raw bits; see _bfloat16_to_float32
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


@dataclass(frozen=True)
class _StorageType:
    name: str


def _bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _rebuild_tensor_v2(storage: np.ndarray, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any) -> np.ndarray:
    """A copy of the strided view ``storage[offset:]`` with ``size`` and ``stride`` (in elements)."""
    size, stride = tuple(size), tuple(stride)
    if 0 not in size:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if offset < 0 or min(stride, default=0) < 0 or last >= storage.size:
            raise ValueError(f"tensor (offset {offset}, size {size}, stride {stride}) lies outside its storage of {storage.size}")
    base = storage[offset:] if 0 not in size else storage[:0]
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(base, shape=size, strides=tuple(s * item for s in stride), writeable=False)
    return view.copy()


def _rebuild_parameter(data: np.ndarray, requires_grad: bool = False, backward_hooks: Any = None, *_: Any) -> np.ndarray:
    return data


def _ordered_dict(*args: Any) -> collections.OrderedDict:
    return collections.OrderedDict(*args)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, zf: zipfile.ZipFile, prefix: str, byteorder: str) -> None:
        super().__init__(file)
        self._zf = zf
        self._prefix = prefix
        self._byteorder = byteorder
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"checkpoint refers to {module}.{name}, which a plain state dict never needs; refused") from None

    def persistent_load(self, pid: Any) -> np.ndarray:
        # ('storage', storage_type, key, location, numel): the tensor's data lives in data/<key>.
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        stype, key = pid[1], str(pid[2])
        if key not in self._storages:
            raw = self._zf.read(f"{self._prefix}data/{key}")
            arr = np.frombuffer(raw, dtype=np.dtype(_STORAGE_DTYPES[stype.name]).newbyteorder(self._byteorder))
            if stype.name == "BFloat16Storage":
                arr = _bfloat16_to_float32(arr.astype("<u2"))
            self._storages[key] = arr
        return self._storages[key]


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a torch.save'd state dict, by name, as float32 numpy arrays.

    Floating-point tensors keep their shape and come back as C-contiguous float32 copies;
    integer and bool tensors (BatchNorm's ``num_batches_tracked``) are left out.
    Raises PrepError if the file is not such a checkpoint.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            pkls = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pkls) != 1:
                raise PrepError(path, "not a torch.save zip checkpoint (no single <dir>/data.pkl)")
            prefix = pkls[0][: -len("data.pkl")]
            byteorder = "<"
            if f"{prefix}byteorder" in zf.namelist() and zf.read(f"{prefix}byteorder").strip() == b"big":
                byteorder = ">"
            with zf.open(pkls[0]) as f:
                obj = _Unpickler(f, zf, prefix, byteorder).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, KeyError, ValueError, EOFError) as exc:
        raise PrepError(path, f"cannot read checkpoint: {exc}") from None
    if not isinstance(obj, dict):
        raise PrepError(path, f"checkpoint holds a {type(obj).__name__}, not a state dict")
    out: dict[str, np.ndarray] = {}
    for name, value in obj.items():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            out[str(name)] = np.ascontiguousarray(value, dtype=np.float32)
    return out
