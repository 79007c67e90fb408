"""Compute device and random seed, each resolved once at the edge of a run."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from artstyle.errors import DeviceError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda if available, else mps, else cpu; an unavailable choice -> DeviceError."""
    cuda = torch.cuda.is_available()
    mps = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise DeviceError(f"--device {name}: no {name.upper()} device is available here; use --device cpu or auto")
    if name not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"--device: unknown device {name!r}")
    return torch.device(name)


def tune_for(device: torch.device) -> None:
    """Fast maths where the device has it: on CUDA, TF32 for convolutions and matrix
    products (Ampere and later; about 10 significant bits, ample for pixels) and cuDNN's
    autotuner. Nothing changes on the CPU, whose fp32 path is already the fast one here.
    :func:`set_deterministic` turns the autotuner back off."""
    if device.type != "cuda":
        return
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True


def set_seed(seed: int) -> None:
    """Seed every random generator a run may use (Python, NumPy, PyTorch on all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(enabled: bool) -> None:
    """With ``enabled``, make PyTorch use only deterministic algorithms from now on.

    Covers cuDNN and cuBLAS too (``CUBLAS_WORKSPACE_CONFIG`` is set when it is not
    already). This is process-wide and stays on; nothing is changed when ``enabled``
    is False. An operation without a deterministic implementation runs anyway, with
    a warning (PyTorch's ``warn_only``).
    """
    if not enabled:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
