"""The prepare/run API: a plan to look at, a tensor to start from, extra named terms,
style targets computed once, and runs that leave the process's random state alone."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from _support import FakeBundled, random_rgb, smooth_rgb

from artstyle import Plan, StyleTargets, Stylizer, Term, api
from artstyle.api import make_config
from artstyle.engine import Objective, Progress, plan_stages
from artstyle.engine.tiled import TiledObjective
from artstyle.errors import ConfigError

FAST = {"content_layers": "relu2_2", "style_layers": "relu1_1,relu2_1", "device": "cpu"}
CONTENT, STYLE = smooth_rgb(48, 36, seed=1), random_rgb(40, 40, seed=2)


def config(**changes: Any) -> Any:
    return make_config(
        **{"size": 48, "min_size": 24, "coarse_iterations": 3, "iterations": 2, "seed": 5, **FAST, **changes}
    )


def test_a_plan_shows_its_scales_before_anything_is_optimised(fake_bundled: FakeBundled) -> None:
    plan = Stylizer(device="cpu").prepare(CONTENT, STYLE, config())
    assert isinstance(plan, Plan) and plan.seed == 5 and plan.device == "cpu"
    expected = plan_stages(36, 48, iterations=2, coarse_iterations=3, min_size=24, factor=2.0, min_side=4)
    assert [(s.height, s.width, s.iterations) for s in plan.stages] == [
        (s.height, s.width, s.iterations) for s in expected
    ]
    assert plan.iterations == 5
    assert [tuple(scale.content.shape) for scale in plan.scales] == [(1, 3, 18, 24), (1, 3, 36, 48)]
    assert plan.describe()[-1] == "scale 2/2: 48x36 px, 2 iterations, L-BFGS history 100"
    assert len(plan.style_targets) == 2  # one entry per optimised scale


def test_running_a_plan_is_running_the_inputs(fake_bundled: FakeBundled) -> None:
    stylizer = Stylizer(device="cpu")
    direct = stylizer.run(CONTENT, STYLE, config())
    planned = stylizer.run(stylizer.prepare(CONTENT, STYLE, config()))
    assert direct.tensor is not None and planned.tensor is not None
    assert torch.equal(direct.tensor, planned.tensor)
    with pytest.raises(TypeError, match="takes a Plan"):
        stylizer.run(CONTENT)


def test_prepare_takes_options_over_a_config_or_alone(fake_bundled: FakeBundled) -> None:
    stylizer = Stylizer(device="cpu")
    assert stylizer.prepare(CONTENT, STYLE, config(), iterations=4).config.iterations == 4
    assert stylizer.prepare(CONTENT, STYLE, size=40, **FAST).config.size == 40
    with pytest.raises(ConfigError, match=r"^weights: this Stylizer was made with weights='bundled'") as caught:
        stylizer.prepare(CONTENT, STYLE, config(weights="torchvision"))
    assert caught.value.option == "weights"


def test_the_recolor_start_is_the_content_in_the_style_colours(fake_bundled: FakeBundled) -> None:
    from artstyle.color import color_stats

    stylizer = Stylizer(device="cpu")
    plan = stylizer.prepare(CONTENT, STYLE, config(init="recolor"))
    start = stylizer._initial_image(None, plan)
    assert start.shape == plan.scales[0].content.shape
    # the style is uniform noise: the clamp to [0, 1] moves the mapped mean a little
    torch.testing.assert_close(color_stats(start)[0], color_stats(plan.scales[-1].styles[0])[0], atol=2e-3, rtol=0)
    assert not torch.equal(start, plan.scales[0].content)
    luma = stylizer.prepare(CONTENT, STYLE, config(init="recolor", preserve_color="luminance"))
    assert torch.equal(stylizer._initial_image(None, luma), luma.scales[0].content)  # nothing to recolour


def test_a_starting_tensor_replaces_the_configs_init(fake_bundled: FakeBundled) -> None:
    stylizer = Stylizer(device="cpu")
    plan = stylizer.prepare(CONTENT, STYLE, config(pyramid=False, init="content"))
    from_content = stylizer.run(plan).tensor
    given = stylizer.run(plan, init=plan.scales[0].content.clone()).tensor
    assert from_content is not None and given is not None and torch.equal(from_content, given)
    larger = torch.nn.functional.interpolate(plan.scales[0].content, scale_factor=2.0, mode="bilinear")
    assert stylizer.run(plan, init=larger).tensor is not None  # resized to the scale
    grey = stylizer.run(plan, init=torch.full((1, 3, 36, 48), 0.5)).tensor
    assert grey is not None and not torch.equal(grey, from_content)


@pytest.mark.parametrize(
    ("init", "message"),
    [
        (torch.zeros(3, 36, 48), r"^init: expected a \(1, 3, H, W\) RGB tensor in \[0, 1\], got \(3, 36, 48\)$"),
        (torch.full((1, 3, 8, 8), float("nan")), "^init: the starting image has NaN or infinite values$"),
    ],
)
def test_a_bad_starting_tensor_is_a_config_error(fake_bundled: FakeBundled, init: torch.Tensor, message: str) -> None:
    stylizer = Stylizer(device="cpu")
    plan = stylizer.prepare(CONTENT, STYLE, config(pyramid=False))
    with pytest.raises(ConfigError, match=message):
        stylizer.run(plan, init=init)


def test_an_extra_term_is_in_the_breakdown_and_pulls_the_picture(fake_bundled: FakeBundled) -> None:
    stylizer = Stylizer(device="cpu")
    plan = stylizer.prepare(CONTENT, STYLE, config(iterations=6, pyramid=False))
    black = Term("darkness", lambda image: image.mean(), weight=1e9)
    seen: list[Progress] = []
    pulled = stylizer.run(plan, extra_terms=[black], progress=seen.append).tensor
    plain = stylizer.run(plan).tensor
    assert pulled is not None and plain is not None
    assert float(pulled.mean()) < float(plain.mean()) - 0.05
    losses = seen[-1].losses
    assert list(losses)[-2:] == ["darkness", "total"]
    parts = sum(value for name, value in losses.items() if name != "total" and not name.startswith("style:"))
    assert losses["total"] == pytest.approx(parts, rel=1e-5)


def test_an_extra_term_may_not_take_a_name_of_the_objective(fake_bundled: FakeBundled) -> None:
    stylizer = Stylizer(device="cpu")
    plan = stylizer.prepare(CONTENT, STYLE, config(pyramid=False))
    for name in ("tv", "total", "style:relu1_1"):
        with pytest.raises(ValueError, match=f"already has a term named '{name}'"):
            stylizer.run(plan, extra_terms=[Term(name, lambda image: image.mean())])


def test_tiled_and_whole_objectives_report_the_same_extra_term(shallow_vgg: Any) -> None:
    generator = torch.Generator().manual_seed(3)
    content, style = torch.rand(1, 3, 40, 40, generator=generator), torch.rand(1, 3, 40, 40, generator=generator)
    options: Any = {
        "content_layers": (("relu2_2", 1.0),),
        "style_layers": (("relu1_1", 1.0), ("relu2_1", 1.0)),
        "content_weight": 1.0,
        "style_weight": 1.0,
        "tv_weight": 1.0,
        "extra_terms": [Term("pull", lambda image: (image - 0.25).pow(2).mean(), 3.0)],
    }
    image = torch.rand(1, 3, 40, 40, generator=generator).requires_grad_(True)
    total, whole = Objective(shallow_vgg, content, [style], **options)(image)
    total.backward()
    expected = image.grad.clone()
    image.grad = None
    _, tiled = TiledObjective(shallow_vgg, content, [style], tile_size=24, **options).loss_and_gradient(image)
    assert list(tiled) == list(whole)
    for name in whole:
        assert float(tiled[name]) == pytest.approx(float(whole[name].detach()), rel=1e-4, abs=1e-7), name
    torch.testing.assert_close(image.grad, expected, rtol=1e-3, atol=1e-6)


def test_style_targets_are_computed_once_and_reused(fake_bundled: FakeBundled, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = api.compute_stats

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "compute_stats", counting)
    stylizer = Stylizer(device="cpu")
    first = stylizer.prepare(CONTENT, STYLE, config())
    assert len(calls) == 2  # one style image at two scales
    other_photo = smooth_rgb(48, 36, seed=9)
    again = stylizer.prepare(other_photo, STYLE, config(), style_targets=first.style_targets)
    assert len(calls) == 2 and again.style_targets is first.style_targets
    shared, fresh = stylizer.run(again).tensor, Stylizer(device="cpu").run(other_photo, STYLE, config()).tensor
    assert shared is not None and fresh is not None and torch.equal(shared, fresh)


def test_a_stylizer_reuses_the_style_targets_of_its_earlier_runs(
    fake_bundled: FakeBundled, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = api.compute_stats
    monkeypatch.setattr(api, "compute_stats", lambda *a, **k: calls.append(1) or real(*a, **k))
    stylizer = Stylizer(device="cpu")
    first = stylizer.prepare(CONTENT, STYLE, config())
    again = stylizer.prepare(smooth_rgb(48, 36, seed=9), STYLE, config())  # a video's next frame, a batch
    assert len(calls) == 2 and again.style_targets is first.style_targets
    stylizer.prepare(CONTENT, random_rgb(40, 40, seed=3), config())  # other paintings: their own
    assert len(calls) == 4
    for _ in range(2):  # recoloured to each photo: never reused
        stylizer.prepare(CONTENT, STYLE, config(preserve_color="histogram"))
    assert len(calls) == 8
    for seed in range(10, 10 + api.STYLE_TARGETS_KEPT):  # only the latest few sets are kept
        stylizer.prepare(CONTENT, random_rgb(40, 40, seed=seed), config())
    stylizer.prepare(CONTENT, STYLE, config())
    assert len(calls) == 8 + 2 * api.STYLE_TARGETS_KEPT + 2


def test_style_targets_are_only_shared_where_they_can_be(fake_bundled: FakeBundled) -> None:
    stylizer = Stylizer(device="cpu")
    targets: StyleTargets = stylizer.prepare(CONTENT, STYLE, config()).style_targets
    with pytest.raises(
        ConfigError, match=r"^preserve_color: 'histogram' makes style targets for each content"
    ) as caught:
        stylizer.prepare(CONTENT, STYLE, config(preserve_color="histogram"), style_targets=targets)
    assert caught.value.option == "preserve_color"
    with pytest.raises(ConfigError, match="computed for other style images, layers or weights"):
        stylizer.prepare(CONTENT, random_rgb(40, 40, seed=3), config(), style_targets=targets)
    with pytest.raises(ConfigError, match="computed for other style images, layers or weights"):
        stylizer.prepare(CONTENT, STYLE, config(style_layers="relu1_1"), style_targets=targets)


def test_a_run_uses_its_own_random_generator(fake_bundled: FakeBundled) -> None:
    stylizer = Stylizer(device="cpu")
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = stylizer.run(CONTENT, STYLE, config(init="noise", pyramid=False)).tensor
    assert torch.equal(torch.get_rng_state(), state)  # the global generator was not drawn from
    torch.manual_seed(999)
    second = stylizer.run(CONTENT, STYLE, config(init="noise", pyramid=False)).tensor
    assert first is not None and second is not None and torch.equal(first, second)


def test_deterministic_mode_lasts_for_the_run_only(fake_bundled: FakeBundled) -> None:
    assert not torch.are_deterministic_algorithms_enabled()
    seen: list[bool] = []
    Stylizer(device="cpu").run(
        CONTENT,
        STYLE,
        config(deterministic=True),
        progress=lambda progress: seen.append(torch.are_deterministic_algorithms_enabled()),
    )
    assert seen and all(seen)
    assert not torch.are_deterministic_algorithms_enabled()


def test_luminance_targets_are_the_paintings_own_unless_matched(fake_bundled: FakeBundled) -> None:
    from artstyle.color import luminance, match_luminance

    stylizer = Stylizer(device="cpu")
    own = stylizer.prepare(CONTENT, STYLE, config(preserve_color="luminance"))
    last = own.scales[-1]
    painting = torch.from_numpy(np.asarray(STYLE.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]
    assert last.styles[0].shape[1] == 1
    assert abs(float(last.styles[0].mean() - luminance(painting).mean())) < 0.02  # the painting's own tones
    matched = stylizer.prepare(CONTENT, STYLE, config(preserve_color="luminance", match_luminance=True))
    torch.testing.assert_close(matched.scales[-1].styles[0], match_luminance(last.styles[0], last.content))
    assert not torch.equal(matched.scales[-1].styles[0], last.styles[0])
    # the painting's own luminance does not depend on the photo: its targets are shared
    again = stylizer.prepare(smooth_rgb(48, 36, seed=9), STYLE, own.config, style_targets=own.style_targets)
    assert again.style_targets is own.style_targets
    with pytest.raises(ConfigError, match=r"^preserve_color: 'luminance' makes style targets for each content"):
        stylizer.prepare(CONTENT, STYLE, matched.config, style_targets=matched.style_targets)
