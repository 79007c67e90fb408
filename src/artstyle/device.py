"""Compute device, random numbers and deterministic mode, each resolved once at the edge of a run.

Runs can share a process (a web server, a batch): each draws its random numbers from its
own :class:`torch.Generator` (:func:`generator`), and deterministic mode is switched on
for one run and back off after it (:func:`deterministic`), as far as PyTorch allows.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from artstyle.errors import DeviceError, option_name, option_value


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda if available, else mps, else cpu; ``cuda:N`` -> the N-th CUDA
    device; an unavailable choice -> DeviceError."""
    cuda = torch.cuda.is_available()
    mps = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    kind, _, index = name.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and (kind != "cuda" or not index.isdigit())):
        raise DeviceError(f"{option_name('device')}: unknown device {name!r} (expected auto, cpu, cuda, cuda:N or mps)")
    if (kind == "cuda" and not cuda) or (kind == "mps" and not mps):
        available = f"use {option_value('device', 'cpu')} or auto"
        raise DeviceError(f"{option_value('device', name)}: no {kind.upper()} device is available here; {available}")
    if index and int(index) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise DeviceError(f"{option_value('device', name)}: this machine has {count} CUDA device{'s' * (count != 1)}")
    return torch.device(name)


#: Device types without float64 or eigendecompositions (see :func:`is_mps`).
MPS_TYPES = {"mps"}


def is_mps(device: torch.device) -> bool:
    """Whether ``device`` is Apple's MPS, which has no float64 and no eigendecomposition:
    the colour statistics and matrix roots go to the CPU there, and area resizes avoid
    adaptive pooling (see :mod:`artstyle.linalg` and :mod:`artstyle.resample`)."""
    return device.type in MPS_TYPES


def tune_for(device: torch.device) -> None:
    """Fast maths where the device has it: on CUDA, TF32 for the convolutions (Ampere and
    later; about 10 significant bits, ample for pixels) and cuDNN's autotuner. The Gram
    matrices' products stay float32 (PyTorch's default: ``matmul.allow_tf32`` is left
    alone): their sums run over every pixel. ``CUBLAS_WORKSPACE_CONFIG`` is set here,
    before any CUDA work, for :func:`set_deterministic`: cuBLAS reads it once, when it
    starts. Nothing changes on the CPU, whose fp32 path is already the fast one here.
    :func:`set_deterministic` turns the autotuner back off."""
    if device.type != "cuda":
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", DETERMINISTIC_CUBLAS)
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True


#: cuBLAS's workspace setting that makes its products deterministic.
DETERMINISTIC_CUBLAS = ":4096:8"


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The dtype the network's forward pass runs in under autocast; None: float32 throughout.

    ``auto`` -> bfloat16 on a CPU with native bf16 instructions (AVX512-BF16 or AMX), where
    VGG19's convolutions run some 1.6x faster and the losses, the Gram matrices and the
    image stay float32; float32 everywhere else (CUDA already uses TF32, see
    :func:`tune_for`). ``bf16`` forces it (very slow on a CPU without native bf16); on a
    CUDA device without bf16 (before Ampere) it is refused (DeviceError).
    """
    if name == "fp32" or device.type not in ("cpu", "cuda"):
        return None
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        gpu = torch.cuda.get_device_name(device)
        use = option_value("precision", "fp32")
        raise DeviceError(f"{option_value('precision', 'bf16')}: {gpu} has no bf16 arithmetic; use {use}")
    if name == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if device.type == "cpu" and native_cpu_bf16() else None


def native_cpu_bf16() -> bool:
    """Whether this CPU has bf16 instructions that oneDNN uses (AVX512-BF16 or AMX)."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


def generator(seed: int) -> torch.Generator:
    """A CPU random generator of one run, seeded with ``seed`` (it draws the same numbers as
    the global generator after ``torch.manual_seed(seed)``). Tensors for another device are
    drawn on the CPU and moved, so a seed gives the same start on every device."""
    return torch.Generator(device="cpu").manual_seed(seed)


@contextlib.contextmanager
def deterministic(enabled: bool) -> Iterator[None]:
    """Inside, with ``enabled``, PyTorch uses only deterministic algorithms (see
    :func:`set_deterministic`); afterwards the previous settings are back. The switches
    are process-wide (PyTorch has no per-thread ones), so two runs in parallel threads
    share them."""
    if not enabled:
        yield
        return
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    set_deterministic(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]


def set_deterministic(enabled: bool) -> None:
    """With ``enabled``, make PyTorch use only deterministic algorithms from now on.

    Covers cuDNN and cuBLAS too (``CUBLAS_WORKSPACE_CONFIG`` is set when it is not
    already). This is process-wide and stays on (:func:`deterministic` scopes it to a
    block); nothing is changed when ``enabled`` is False. An operation without a
    deterministic implementation runs anyway, with a warning (PyTorch's ``warn_only``).
    """
    if not enabled:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", DETERMINISTIC_CUBLAS)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
