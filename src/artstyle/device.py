"""Compute device and random seed, each resolved once at the edge of a run."""

from __future__ import annotations

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


def set_seed(seed: int) -> None:
    """Seed every random generator a run may use (Python, NumPy, PyTorch on all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
