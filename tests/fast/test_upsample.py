"""Upsampling between scales: guided_upsample (artstyle.engine.images), how the pyramid
uses it, and the ``upsample`` option.

The pictures are synthetic: a guide with a sharp edge or with fine texture, and small
pictures that do or do not follow it, so that what the guided filter should bring back
(the edges the picture follows, and nothing else) is known.
"""

from __future__ import annotations

import pytest
import torch

from artstyle import Config
from artstyle.engine import guided_upsample, optimize_stages, resize_image
from artstyle.engine.plan import Stage
from artstyle.errors import ConfigError


def edge_guide(height: int = 48, width: int = 64) -> torch.Tensor:
    """A (1, 1, H, W) guide: dark left of a vertical edge a third of the way across, light right of it."""
    guide = torch.full((1, 1, height, width), 0.2)
    guide[..., width // 3 :] = 0.8
    return guide


def texture_guide(height: int = 48, width: int = 64, seed: int = 0) -> torch.Tensor:
    """A (1, 1, H, W) guide of fine grain around mid grey."""
    return 0.5 + 0.2 * torch.rand(1, 1, height, width, generator=torch.Generator().manual_seed(seed))


def test_a_picture_that_follows_the_guide_gets_its_sharp_edge_back() -> None:
    guide = edge_guide()
    # The small picture is a colour version of the small guide: each channel a linear function of it.
    ideal = torch.cat([0.1 + 0.8 * guide, 0.9 - 0.5 * guide, 0.3 + 0.2 * guide], dim=1)
    small = resize_image(ideal, 24, 32)
    guided = guided_upsample(small, guide)
    bicubic = resize_image(small, 48, 64)
    assert guided.shape == ideal.shape
    assert float((guided - ideal).abs().max()) < 0.02
    assert float((bicubic - ideal).abs().max()) > 0.1  # bicubic leaves the edge blurred


def test_a_picture_that_does_not_follow_the_guide_takes_none_of_its_texture() -> None:
    guide = texture_guide()
    flat = torch.tensor([0.3, 0.6, 0.4]).view(1, 3, 1, 1).expand(1, 3, 24, 32).contiguous()
    guided = guided_upsample(flat, guide)
    assert torch.allclose(guided, flat[..., :1, :1].expand(1, 3, 48, 64), atol=1e-5)


def test_the_result_is_in_the_box_and_a_picture_as_large_as_the_guide_is_only_resized() -> None:
    generator = torch.Generator().manual_seed(1)
    small = torch.rand(1, 3, 24, 32, generator=generator)
    guided = guided_upsample(small, 2 * texture_guide() - 0.5)  # a guide beyond [0, 1] pushes the fit out
    assert float(guided.min()) >= 0 and float(guided.max()) <= 1
    same = torch.rand(1, 3, 48, 64, generator=generator)
    assert torch.equal(guided_upsample(same, edge_guide()), same)


def test_one_channel_pictures_are_upsampled_along_the_guide_too() -> None:
    guide = edge_guide()
    small = resize_image(0.9 - 0.6 * guide, 24, 32)
    guided = guided_upsample(small, guide)
    assert guided.shape == (1, 1, 48, 64)
    assert float((guided - (0.9 - 0.6 * guide)).abs().max()) < 0.02


class Recording:
    """A stage's objective that records the images it is evaluated at (a quadratic pull
    towards a grey picture, so that the optimisation moves)."""

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.seen.append(image.detach().clone())
        loss = (image - 0.5).pow(2).mean()
        return loss, {"pull": loss.detach()}


@pytest.mark.parametrize("guided", [True, False])
def test_an_optimised_scale_starts_from_the_previous_result_upsampled_along_the_guide(guided: bool) -> None:
    stages = [Stage(24, 32, 2), Stage(48, 64, 1)]
    objectives = [Recording(), Recording()]
    start = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(2))
    guide = edge_guide()
    guide_for = (lambda index, stage: guide) if guided else None
    optimize_stages(stages, lambda index, stage: objectives[index], start, learning_rate=0.1, guide_for=guide_for)
    coarse_result = optimize_stages(stages[:1], lambda index, stage: Recording(), start, learning_rate=0.1)
    first_at_full_size = objectives[1].seen[0]
    expected = guided_upsample(coarse_result, guide) if guided else resize_image(coarse_result, 48, 64)
    assert torch.allclose(first_at_full_size, expected, atol=1e-6)


def test_a_scale_without_iterations_is_upsampled_with_the_detail_not_along_the_guide() -> None:
    stages = [Stage(24, 32, 2), Stage(48, 64, 0)]
    objective = Recording()
    start = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(3))
    detail = 0.01 * texture_guide().expand(1, 3, 48, 64)
    result = optimize_stages(
        stages,
        lambda index, stage: objective,
        start,
        learning_rate=0.1,
        detail_for=lambda index, stage: detail,
        guide_for=lambda index, stage: edge_guide(),
    )
    coarse_result = optimize_stages(stages[:1], lambda index, stage: Recording(), start, learning_rate=0.1)
    expected = (resize_image(coarse_result, 48, 64) + detail).clamp(0, 1)
    assert torch.allclose(result, expected, atol=1e-6)


def test_the_upsample_option() -> None:
    assert Config().upsample == "guided"
    assert Config(upsample="bicubic").upsample == "bicubic"
    with pytest.raises(ConfigError, match="upsample"):
        Config(upsample="nearest")
