"""Small builders shared by the fast tests: tiny images, random VGG19 weights, a fake loader."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from artstyle.features.vgg import LAYERS
from artstyle.features.weights import VGGWeights


def features(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Seeded standard-normal features (or any tensor) of the given shape."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=dtype)


def random_rgb(width: int, height: int, seed: int = 0) -> Image.Image:
    """A random-noise RGB image."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def smooth_rgb(width: int, height: int, seed: int = 0) -> Image.Image:
    """An RGB image of colour gradients plus mild noise (looks more like a photo)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / max(width - 1, 1), y / max(height - 1, 1), 0.5 + 0.0 * x], axis=-1)
    values = np.clip(base + 0.1 * rng.standard_normal((height, width, 3)), 0, 1)
    return Image.fromarray((values * 255).round().astype(np.uint8), "RGB")


def random_canonical_state(seed: int = 0, layers: int | None = None) -> dict[str, torch.Tensor]:
    """Random canonical weights (``conv{b}_{i}.weight/bias``) for the first ``layers`` convs.

    Scaled so that activations stay of the order of the (Caffe-scaled) input.
    """
    generator = torch.Generator().manual_seed(seed)
    convs = [(name, c_in, c_out) for name, kind, c_in, c_out in LAYERS if kind == "conv"]
    state: dict[str, torch.Tensor] = {}
    for name, c_in, c_out in convs[:layers]:
        std = (1.0 / (9 * c_in)) ** 0.5
        state[f"{name}.weight"] = torch.randn(c_out, c_in, 3, 3, generator=generator) * std
        state[f"{name}.bias"] = torch.randn(c_out, generator=generator) * 0.01
    return state


@dataclass
class FakeBundled:
    """The patched ``load_bundled``: returns ``weights`` and counts its calls."""

    weights: VGGWeights
    calls: int = 0

    def __call__(self) -> VGGWeights:
        self.calls += 1
        return self.weights


class Poisoned(torch.nn.Module):
    """An objective whose part ``term`` becomes ``value`` (NaN by default) at its ``at``-th evaluation.

    The optimizers evaluate the objective once per iteration (L-BFGS without line search
    takes one evaluation per step), so ``at`` is the iteration of the scale that diverges.
    """

    def __init__(self, objective: torch.nn.Module, at: int, term: str = "style:relu1_1", value: float = float("nan")):
        super().__init__()
        self.inner, self.at, self.term, self.value = objective, at, term, value
        self.calls = 0

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.calls += 1
        total, parts = self.inner(image)
        if self.calls == self.at:
            parts = dict(parts)
            bad = parts[self.term] + self.value
            parts[self.term] = bad
            total = total + bad
        return total, parts


#: The test cluster listens on the loopback range only: Ray's token authentication is off for
#: it (its driver, head and worker must otherwise share one token file).
RAY_TEST_ENVIRONMENT = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def ray_environment() -> dict[str, str]:
    return {**os.environ, **RAY_TEST_ENVIRONMENT, "OMP_NUM_THREADS": "1"}
