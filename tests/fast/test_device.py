"""Device set-up: the fast-maths switches for CUDA, and the deterministic mode that undoes them."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

from artstyle.device import DETERMINISTIC_CUBLAS, set_deterministic, tune_for


@pytest.fixture
def backend_flags() -> Iterator[None]:
    """Restore the process-wide switches these tests flip."""
    saved = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.are_deterministic_algorithms_enabled(),
    )
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[0], saved[1]
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[2], saved[3]
    torch.use_deterministic_algorithms(saved[4])


def test_cuda_gets_tf32_for_its_convolutions_only_and_the_autotuner(
    backend_flags: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    tune_for(torch.device("cuda"))  # sets flags only; needs no GPU
    assert torch.backends.cudnn.allow_tf32 and torch.backends.cudnn.benchmark
    assert not torch.backends.cuda.matmul.allow_tf32  # the Gram matrices' sums stay float32
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == DETERMINISTIC_CUBLAS  # before cuBLAS can start
    set_deterministic(True)
    assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic


def test_the_cpu_is_left_as_it_is(backend_flags: None) -> None:
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    tune_for(torch.device("cpu"))
    assert not (
        torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32 or torch.backends.cudnn.benchmark
    )
