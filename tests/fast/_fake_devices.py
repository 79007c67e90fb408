"""Fake CUDA and MPS devices for the device-portability tier (``tests/fast/test_devices.py``).

PyTorch's fake tensors (:class:`~torch._subclasses.fake_tensor.FakeTensorMode`) carry a
device, a shape and a dtype but no values, and raise
``FakeTensorDeviceMismatchError`` where CUDA would raise "Expected all tensors to be on
the same device". Inside :func:`fake_device`:

* ``torch.cuda.is_available`` (or ``torch.backends.mps.is_available``) says yes, and the
  CUDA queries the code makes (free memory, the cache, bf16 support, the device count)
  answer with stand-ins;
* every tensor made is fake; tensors made before are taken in as fake CPU tensors;
* ``Tensor.to``/``.cuda`` to the fake device goes straight to ``aten._to_copy``, and
  indexing (``t[0]``, ``t[..., 1:] = x``) of a tensor on it becomes the view it is
  (``as_strided``): PyTorch's Python bindings of both would first try to start a real
  CUDA or MPS runtime;
* a read of a value (``float(t)``, ``bool(t)``, ``t.item()``, ``t.tolist()``) has no
  value to read: it returns a stand-in (1 for numbers, True for truth values; a read of
  a CPU tensor that is not fake, from before, is real) and is counted in ``reads``;
* on ``mps`` the :class:`MpsRules` dispatch mode fails on what MPS cannot do.

Autograd cannot run on a fake ``cuda`` or ``mps`` tensor in a CPU-only build of PyTorch:
the engine asks the device's runtime for a stream when a leaf that requires a gradient
joins a graph, and that aborts the process. :func:`stand_in_device` gives the paths
with gradients (the objective's gradient, the optimizers, whole runs) another device
with no values instead: fake tensors on ``meta``, which PyTorch can differentiate and
which raises on a CPU tensor mixed in as CUDA does, with the MPS rules on it for
``mps`` (``artstyle.device.MPS_TYPES`` then includes ``meta``). :func:`fake_device`
refuses ``requires_grad_`` on its devices, so a test cannot abort the run by mistake.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

#: Free and total memory of the fake CUDA device, and what PyTorch's cache holds of it.
FREE, TOTAL, RESERVED, ALLOCATED = 6 << 30, 16 << 30, 3 << 30, 1 << 30


class MpsUnsupported(RuntimeError):
    """What a real MPS device would refuse."""


class AutogradOnFakeDevice(RuntimeError):
    """A gradient asked of a fake ``cuda`` or ``mps`` tensor (see the module)."""


@dataclass
class FakeDevice:
    """The state of one :func:`fake_device` block: the device and what was read."""

    device: torch.device
    mode: FakeTensorMode = field(default_factory=lambda: FakeTensorMode(allow_non_fake_inputs=True))
    reads: int = 0
    refused: list[str] = field(default_factory=list)


def _tensors(args: Any, kwargs: Any) -> list[torch.Tensor]:
    flat = [*args, *(kwargs or {}).values()]
    found = []
    for value in flat:
        if isinstance(value, (list, tuple)):
            found.extend(v for v in value if isinstance(v, torch.Tensor))
        elif isinstance(value, torch.Tensor):
            found.append(value)
    return found


#: Operators with no MPS kernel in the PyTorch releases artstyle supports.
MPS_MISSING = {
    aten._linalg_eigh.default,
    aten.linalg_eigh.default,
    aten._linalg_eigh.eigenvalues,
}


def _adaptive_pool_refused(func: Any, args: Any) -> bool:
    """MPS's adaptive average pooling (and so ``interpolate(mode="area")``) needs each input
    size to be a multiple of the output size (PyTorch up to 2.9 at least)."""
    if func not in (aten._adaptive_avg_pool2d.default, aten.adaptive_avg_pool2d.default):
        return False
    image, size = args[0], args[1]
    return any(inp % out for inp, out in zip(image.shape[-2:], size, strict=True))


class MpsRules(TorchDispatchMode):
    """Fails, as MPS does, on float64 tensors on ``mps`` (or on ``device_type``, which
    stands in for it) and on operators it has no kernel for."""

    def __init__(self, state: FakeDevice, device_type: str = "mps") -> None:
        super().__init__()
        self.state, self.device_type = state, device_type

    def _is_mps(self, value: Any) -> bool:
        return isinstance(value, torch.Tensor) and value.device.type == self.device_type

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        tensors = [t for t in _tensors(args, kwargs) if self._is_mps(t)]
        problem = None
        if tensors and func in MPS_MISSING:
            problem = f"{func} has no MPS kernel"
        elif tensors and _adaptive_pool_refused(func, args):
            problem = f"{func} on MPS needs sizes that divide: {tuple(args[0].shape)} -> {tuple(args[1])}"
        elif any(t.dtype == torch.float64 for t in tensors):
            problem = f"{func}: MPS has no float64"
        result = func(*args, **(kwargs or {})) if problem is None else None
        if problem is None and any(self._is_mps(t) and t.dtype == torch.float64 for t in _tensors([result], {})):
            problem = f"{func} made a float64 tensor on MPS"
        if problem is not None:
            self.state.refused.append(problem)
            raise MpsUnsupported(problem)
        return result


class StandInReads(TorchDispatchMode):
    """A read of a fake tensor's value returns a stand-in (see the module) and is counted."""

    def __init__(self, state: FakeDevice) -> None:
        super().__init__()
        self.state = state

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func is aten._local_scalar_dense.default and isinstance(args[0], FakeTensor):
            self.state.reads += 1
            return _stand_in(args[0].dtype)
        return func(*args, **(kwargs or {}))


_MOVES = {"to", "cuda", "cpu", "mps"}
_READS = {"__float__", "__bool__", "__int__", "__index__", "item"}


def _stand_in(dtype: torch.dtype) -> bool | int | float:
    """What a read of a value of ``dtype`` returns: True, 1 or 1.0."""
    return True if dtype == torch.bool else 1.0 if dtype.is_floating_point else 1


class DirectMoves(TorchFunctionMode):
    """``Tensor.to(device, ...)``, ``.cuda()`` and ``.mps()`` by ``aten._to_copy``; ``tolist``
    and ``numpy`` of a fake tensor as stand-ins."""

    def __init__(self, state: FakeDevice) -> None:
        super().__init__()
        self.state = state

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name == "tolist" and isinstance(args[0], FakeTensor):
            self.state.reads += 1
            return torch.ones(args[0].shape).tolist()
        if name in _READS and _on_fake_device(args[0]):  # their bindings would start the runtime first
            self.state.reads += 1
            return _stand_in(args[0].dtype) if name != "__float__" else 1.0
        if name in _MOVES and args and isinstance(args[0], torch.Tensor):
            moved = _move(name, args[0], args[1:], kwargs, self.state.mode)
            if moved is not None:
                return moved
        wants_grad = (args[1:] or [kwargs.get("requires_grad", True)])[0]
        if name == "requires_grad_" and _on_fake_device(args[0]) and wants_grad:
            raise AutogradOnFakeDevice("autograd on a fake cuda or mps tensor aborts the process: use stand_in_device")
        if name in ("__getitem__", "__setitem__") and _on_fake_device(args[0]):
            view = _view(args[0], args[1])
            if name == "__getitem__":
                return view
            value = args[2]
            return view.copy_(value) if isinstance(value, torch.Tensor) else view.fill_(value)
        return func(*args, **kwargs)


def _on_fake_device(value: Any) -> bool:
    return isinstance(value, FakeTensor) and value.device.type in ("cuda", "mps")


def _view(tensor: torch.Tensor, index: Any) -> torch.Tensor:
    """``tensor[index]`` for basic indexing (integers, slices, None, Ellipsis): the same
    view, laid out by indexing an empty tensor of its layout on the ``meta`` device."""
    parts = index if isinstance(index, tuple) else (index,)
    if any(isinstance(part, (torch.Tensor, list)) for part in parts):
        raise NotImplementedError(f"the fake devices index with integers, slices, None and ... only, not {index!r}")
    layout = torch.empty_strided(tensor.shape, tensor.stride(), dtype=tensor.dtype, device="meta")
    layout = layout.as_strided(tensor.shape, tensor.stride(), tensor.storage_offset())[index]
    return tensor.as_strided(layout.shape, layout.stride(), layout.storage_offset())


def _move(
    name: str, tensor: torch.Tensor, args: tuple[Any, ...], kwargs: dict[str, Any], mode: FakeTensorMode
) -> torch.Tensor | None:
    """The tensor moved as ``Tensor.<name>(*args, **kwargs)`` asks; None when it is no move
    to another device (left to PyTorch)."""
    device, dtype = _destination(name, args, kwargs)
    if device is None or torch.device(device) == tensor.device:
        return None
    target = torch.device(device)
    if target.type in ("cuda", "mps") and target.index is None:
        target = torch.device(target.type, 0)
    if not isinstance(tensor, FakeTensor):  # made before the block: its fake twin moves
        tensor = mode.from_tensor(tensor)
    return torch.ops.aten._to_copy(tensor, device=target, dtype=dtype or tensor.dtype)


def _destination(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, torch.dtype | None]:
    """The device and dtype that ``Tensor.<name>(*args, **kwargs)`` asks for (None: unchanged)."""
    device, dtype = kwargs.get("device"), kwargs.get("dtype")
    for value in args:
        if isinstance(value, (str, torch.device)):
            device = value
        elif isinstance(value, torch.dtype):
            dtype = value
        elif isinstance(value, torch.Tensor):
            device, dtype = value.device, value.dtype
    if name in ("cuda", "mps", "cpu"):
        device = name
    return device, dtype


def _availability(kind: str) -> list[Any]:
    """The patches that make ``kind`` available (and only it)."""
    cuda = kind == "cuda"
    patches = [
        mock.patch("torch.cuda.is_available", return_value=cuda),
        mock.patch("torch.backends.mps.is_available", return_value=kind == "mps"),
    ]
    if cuda:
        patches += [
            mock.patch("torch.cuda.mem_get_info", return_value=(FREE, TOTAL)),
            mock.patch("torch.cuda.memory_reserved", return_value=RESERVED),
            mock.patch("torch.cuda.memory_allocated", return_value=ALLOCATED),
            mock.patch("torch.cuda.device_count", return_value=2),
            mock.patch("torch.cuda.is_bf16_supported", return_value=True),
            mock.patch("torch.cuda.get_device_name", return_value="Fake CUDA device"),
        ]
    return patches


@contextlib.contextmanager
def fake_device(kind: str) -> Iterator[FakeDevice]:
    """Inside, ``kind`` (``cuda`` or ``mps``) is available and every tensor is fake (see the module)."""
    state = FakeDevice(torch.device(kind, 0))
    with contextlib.ExitStack() as stack:
        for patch in _availability(kind):
            stack.enter_context(patch)
        stack.enter_context(DirectMoves(state))
        stack.enter_context(state.mode)
        stack.enter_context(StandInReads(state))
        if kind == "mps":
            stack.enter_context(MpsRules(state))
        yield state


@contextlib.contextmanager
def stand_in_device(kind: str) -> Iterator[FakeDevice]:
    """Inside, every tensor is fake and ``meta`` stands in for ``kind`` (see the module):
    the caller runs on ``state.device``; for ``mps`` the MPS rules hold on it, and
    artstyle takes it for MPS (float64 work on the CPU, area resizes by matrices)."""
    from artstyle import device as device_module

    state = FakeDevice(torch.device("meta"))
    types = device_module.MPS_TYPES | ({"meta"} if kind == "mps" else set())
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(device_module, "MPS_TYPES", types))
        stack.enter_context(state.mode)
        stack.enter_context(StandInReads(state))
        if kind == "mps":
            stack.enter_context(MpsRules(state, device_type="meta"))
        yield state
