"""neural-style's recipes in benchmarks/quality.py: valid settings of ours, its TV term in our units."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from artstyle.api import make_config
from artstyle.losses import tv_loss
from quality import PAIRS, RECIPES


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_each_recipe_is_a_valid_single_scale_run_of_its_layers(name: str) -> None:
    recipe = RECIPES[name]
    config = make_config(**recipe.options(Image.new("RGB", (90, 60)), 48))
    assert (config.pyramid, config.init, config.iterations, config.normalization) == (False, "noise", 1000, "absolute")
    assert [layer for layer, _ in config.style_layers] == recipe.style_layers.split(",")
    assert [layer for layer, _ in config.content_layers] == [recipe.content_layers]
    assert (config.content_weight, config.style_weight) == (recipe.content_weight, recipe.style_weight)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_tv_weight_is_neural_styles_term_in_our_units(name: str) -> None:
    # neural-style: tv * 1/2 * the sum of squared neighbour differences of the 0-255 image, over
    # the three channels; ours: weight * (mean dx^2 + mean dy^2) of the [0, 1] image. The two
    # count edges slightly differently (H*(W-1) against H*W), hence the tolerance.
    recipe = RECIPES[name]
    image = torch.rand(1, 3, 40, 60, generator=torch.Generator().manual_seed(0))
    options = recipe.options(Image.new("RGB", (60, 40)), 60)
    ours = options["tv_weight"] * float(tv_loss(image))
    dx = (image[..., :, 1:] - image[..., :, :-1]) * 255
    dy = (image[..., 1:, :] - image[..., :-1, :]) * 255
    theirs = recipe.tv / 2 * float(dx.pow(2).sum() + dy.pow(2).sum())
    assert ours == pytest.approx(theirs, rel=1 / 40)


def test_each_published_reference_names_the_recipe_that_made_it() -> None:
    published = [pair for pair in PAIRS.values() if pair.reference is not None]
    assert {pair.recipe for pair in published} == set(RECIPES)
    for pair in published:
        single_colour = len(pair.styles) == 1 and not pair.options
        assert pair.recipe == ("first" if single_colour else "defaults"), pair.name
