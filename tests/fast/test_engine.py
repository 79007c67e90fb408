"""Fast tests of artstyle.engine: the objective's breakdown and the optimisation loop.

All runs use random-weight networks on 32 x 32 tensors; most use the shallow one
(layers up to relu3_1) so that twenty optimizer steps take a fraction of a second.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch

from artstyle.engine import Objective, Progress, make_optimizer, optimize
from artstyle.engine.optimizers import Adam, BoxLBFGS
from artstyle.features.vgg import VGG19Features
from artstyle.losses import content_loss, gram_matrix, neighbour_difference, style_loss, tv_loss

STYLE_LAYERS = (("relu1_1", 1.0), ("relu2_1", 0.5), ("relu3_1", 2.0))
CONTENT_LAYERS = (("relu2_2", 1.0),)

Pair = tuple[torch.Tensor, torch.Tensor]


def make_objective(
    net: VGG19Features,
    content: torch.Tensor,
    styles: list[torch.Tensor],
    *,
    content_weight: float = 5.0,
    style_weight: float = 100.0,
    tv_weight: float = 1.0,
    style_blend: list[float] | None = None,
    normalization: str = "absolute",
) -> Objective:
    return Objective(
        net,
        content,
        styles,
        content_layers=CONTENT_LAYERS,
        style_layers=STYLE_LAYERS,
        content_weight=content_weight,
        style_weight=style_weight,
        tv_weight=tv_weight,
        style_blend=style_blend,
        normalization=normalization,
    )


@pytest.fixture
def objective(shallow_vgg: VGG19Features, tiny_tensors: Pair) -> Objective:
    content, style = tiny_tensors
    return make_objective(shallow_vgg, content, [style])


def run(
    objective: Objective, init: torch.Tensor, iterations: int, **options: object
) -> tuple[torch.Tensor, list[Progress]]:
    seen: list[Progress] = []
    result = optimize(objective, init, iterations=iterations, callback=seen.append, **options)  # type: ignore[arg-type]
    return result, seen


def total(objective: Objective, image: torch.Tensor) -> float:
    with torch.no_grad():
        return float(objective(image)[0])


# --------------------------------------------------------------------------- #
# Objective
# --------------------------------------------------------------------------- #


def test_the_breakdown_has_named_parts_that_add_up(objective: Objective, tiny_tensors: Pair) -> None:
    image = tiny_tensors[0].flip(-1)
    with torch.no_grad():
        result, parts = objective(image)
    assert list(parts) == ["content", "style:relu1_1", "style:relu2_1", "style:relu3_1", "style", "tv", "total"]
    assert all(float(v) > 0 for v in parts.values())
    torch.testing.assert_close(parts["style"], sum(parts[f"style:{n}"] for n, _ in STYLE_LAYERS))
    torch.testing.assert_close(parts["total"], parts["content"] + parts["style"] + parts["tv"])
    assert result is parts["total"]


def test_the_parts_are_the_weighted_losses(shallow_vgg: VGG19Features, tiny_tensors: Pair) -> None:
    content, style = tiny_tensors
    objective = make_objective(shallow_vgg, content, [style], content_weight=3.0, style_weight=7.0, tv_weight=11.0)
    image = torch.full_like(content, 0.5) + 0.1 * content
    with torch.no_grad():
        _, parts = objective(image)
        f_image, f_content, f_style = shallow_vgg(image), shallow_vgg(content), shallow_vgg(style)
        torch.testing.assert_close(parts["content"], 3.0 * content_loss(f_image["relu2_2"], f_content["relu2_2"]))
        for name, layer_weight in STYLE_LAYERS:
            expected = 7.0 * layer_weight * style_loss(f_image[name], gram_matrix(f_style[name]))
            torch.testing.assert_close(parts[f"style:{name}"], expected)
        torch.testing.assert_close(parts["tv"], 11.0 * tv_loss(image))


def test_relative_normalisation_weighs_relative_squared_errors(shallow_vgg: VGG19Features, tiny_tensors: Pair) -> None:
    content, style = tiny_tensors
    objective = make_objective(
        shallow_vgg, content, [style], content_weight=3.0, style_weight=7.0, tv_weight=11.0, normalization="relative"
    )
    image = torch.full_like(content, 0.5) + 0.1 * content
    with torch.no_grad():
        _, parts = objective(image)
        f_image, f_content, f_style = shallow_vgg(image), shallow_vgg(content), shallow_vgg(style)
        mine, target = f_image["relu2_2"], f_content["relu2_2"]
        torch.testing.assert_close(parts["content"], 3.0 * (mine - target).pow(2).sum() / target.pow(2).sum())
        for name, layer_weight in STYLE_LAYERS:
            gram, wanted = gram_matrix(f_image[name]), gram_matrix(f_style[name])
            relative = (gram - wanted).pow(2).sum() / wanted.pow(2).sum()  # a ratio: the Gram's divisor cancels
            torch.testing.assert_close(parts[f"style:{name}"], 7.0 * layer_weight * relative)
        # TV: its weight divided by the style's mean absolute neighbour difference
        torch.testing.assert_close(parts["tv"], 11.0 * tv_loss(image) / neighbour_difference(style))
    with pytest.raises(ValueError, match="unknown normalization 'other'"):
        make_objective(shallow_vgg, content, [style], normalization="other")


def test_with_the_content_image_as_style_only_tv_remains(shallow_vgg: VGG19Features, tiny_tensors: Pair) -> None:
    content = tiny_tensors[0]
    objective = make_objective(shallow_vgg, content, [content.clone()])
    with torch.no_grad():
        result, parts = objective(content)
    assert float(parts["content"]) == 0.0
    assert float(parts["style"]) == pytest.approx(0.0, abs=1e-6)
    assert float(parts["tv"]) > 0.0
    assert float(result) == pytest.approx(float(parts["tv"]), rel=1e-5, abs=1e-6)


def test_zero_weights_switch_terms_off(shallow_vgg: VGG19Features, tiny_tensors: Pair) -> None:
    content, style = tiny_tensors
    objective = make_objective(shallow_vgg, content, [style], content_weight=0.0, tv_weight=0.0)
    with torch.no_grad():
        _, parts = objective(style)
    assert float(parts["content"]) == 0.0 and float(parts["tv"]) == 0.0
    assert float(parts["style"]) == pytest.approx(0.0, abs=1e-6)


def test_style_blend_weights_are_normalised(shallow_vgg: VGG19Features, tiny_tensors: Pair) -> None:
    content, a = tiny_tensors
    b = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        fa, fb = shallow_vgg(a), shallow_vgg(b)
    weighted = make_objective(shallow_vgg, content, [a, b], style_blend=[3.0, 1.0])
    equal = make_objective(shallow_vgg, content, [a, b])
    only_a = make_objective(shallow_vgg, content, [a, b], style_blend=[2.0, 0.0])
    for name, _ in STYLE_LAYERS:
        ga, gb = gram_matrix(fa[name]), gram_matrix(fb[name])
        torch.testing.assert_close(weighted.style_losses[name][0].target, 0.75 * ga + 0.25 * gb)
        torch.testing.assert_close(equal.style_losses[name][0].target, 0.5 * ga + 0.5 * gb)
        torch.testing.assert_close(only_a.style_losses[name][0].target, ga)


def test_the_targets_are_fixed_when_the_objective_is_built(shallow_vgg: VGG19Features, tiny_tensors: Pair) -> None:
    content, style = tiny_tensors
    content, style = content.clone(), style.clone()
    objective = make_objective(shallow_vgg, content, [style])
    probe = torch.full_like(content, 0.3)
    before = total(objective, probe)
    content.fill_(0.0)
    style.fill_(1.0)
    assert total(objective, probe) == before
    assert not any(b.requires_grad for b in objective.buffers())


def test_the_objective_with_the_full_network_and_default_layers(random_vgg: VGG19Features, tiny_tensors: Pair) -> None:
    content, style = tiny_tensors
    style_layers = [(n, 1.0) for n in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")]
    objective = Objective(
        random_vgg,
        content,
        [style],
        content_layers=[("relu4_2", 1.0)],
        style_layers=style_layers,
        content_weight=5.0,
        style_weight=100.0,
        tv_weight=1.0,
    )
    with torch.no_grad():
        _, parts = objective(style)
    assert set(parts) == {"content", "style", "tv", "total"} | {f"style:{n}" for n, _ in style_layers}
    assert float(parts["style"]) == pytest.approx(0.0, abs=1e-6)
    assert float(parts["content"]) > 0.0


# --------------------------------------------------------------------------- #
# optimize
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(("optimizer", "lr", "steps"), [("lbfgs", 1.0, 12), ("adam", 0.02, 20)])
def test_optimize_lowers_the_total_loss(
    objective: Objective, tiny_tensors: Pair, optimizer: str, lr: float, steps: int
) -> None:
    init = tiny_tensors[0]
    result, seen = run(objective, init, steps, optimizer=optimizer, learning_rate=lr)
    start, end = total(objective, init), total(objective, result)
    assert end < 0.8 * start, (start, end)
    assert seen[-1].losses["total"] < seen[0].losses["total"]


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_progress_once_per_step_with_the_losses_before_the_step(
    objective: Objective, tiny_tensors: Pair, optimizer: str
) -> None:
    init = tiny_tensors[0]
    result, seen = run(objective, init, 5, optimizer=optimizer, learning_rate=0.05)
    assert [p.step for p in seen] == [1, 2, 3, 4, 5]
    assert {p.iterations for p in seen} == {5}
    # Step 1 reports the initial image; step k the image that step k - 1 produced.
    assert seen[0].losses["total"] == pytest.approx(total(objective, init), rel=1e-5)
    for before, after in itertools.pairwise(seen):
        assert after.losses["total"] == pytest.approx(total(objective, before.image), rel=1e-5)
    torch.testing.assert_close(seen[-1].image, result)
    for progress in seen:
        assert set(progress.losses) == {"content", "style", "tv", "total"} | {f"style:{n}" for n, _ in STYLE_LAYERS}
        assert all(isinstance(v, float) for v in progress.losses.values())


def test_progress_is_frozen(objective: Objective, tiny_tensors: Pair) -> None:
    _, seen = run(objective, tiny_tensors[0], 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        seen[0].step = 7  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        seen[0].image = torch.zeros(1)  # type: ignore[misc]


def test_the_progress_image_is_a_detached_copy(objective: Objective, tiny_tensors: Pair) -> None:
    init = tiny_tensors[0]
    reference, reference_seen = run(objective, init, 4)

    vandalised: list[Progress] = []

    def vandal(progress: Progress) -> None:
        vandalised.append(progress)
        assert not progress.image.requires_grad
        progress.image.fill_(0.0)  # must not reach the running image

    result = optimize(objective, init, iterations=4, callback=vandal)
    torch.testing.assert_close(result, reference, rtol=0, atol=0)
    assert [p.losses for p in vandalised] == [p.losses for p in reference_seen]
    assert float(reference.abs().sum()) > 0
    assert vandalised[-1].image.data_ptr() != result.data_ptr()


def test_images_stay_within_0_and_1_even_from_an_out_of_range_start(objective: Objective, tiny_tensors: Pair) -> None:
    init = tiny_tensors[0] * 3.0 - 1.0  # about a third of the pixels outside [0, 1]
    original = init.clone()
    result, seen = run(objective, init, 4, optimizer="adam", learning_rate=0.5)
    for image in [p.image for p in seen] + [result]:
        assert image.shape == (1, 3, 32, 32)
        assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    assert float(result.min()) == 0.0 or float(result.max()) == 1.0  # the clamp was needed
    torch.testing.assert_close(init, original, rtol=0, atol=0)  # the caller's tensor is untouched
    assert not result.requires_grad


def test_the_first_step_starts_from_the_clamped_initial_image(objective: Objective, tiny_tensors: Pair) -> None:
    init = tiny_tensors[0] * 3.0 - 1.0
    _, seen = run(objective, init, 1, optimizer="adam", learning_rate=0.01)
    assert seen[0].losses["total"] == pytest.approx(total(objective, init.clamp(0, 1)), rel=1e-5)


def test_a_run_is_deterministic(objective: Objective, tiny_tensors: Pair) -> None:
    first, _ = run(objective, tiny_tensors[0], 3)
    second, _ = run(objective, tiny_tensors[0], 3)
    torch.testing.assert_close(first, second, rtol=0, atol=0)


def test_a_callback_raising_keyboard_interrupt_stops_the_run(objective: Objective, tiny_tensors: Pair) -> None:
    steps: list[int] = []

    def interrupt(progress: Progress) -> None:
        steps.append(progress.step)
        if progress.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        optimize(objective, tiny_tensors[0], iterations=50, callback=interrupt)
    assert steps == [1, 2, 3]


def test_no_callback_is_fine(objective: Objective, tiny_tensors: Pair) -> None:
    result = optimize(objective, tiny_tensors[0], iterations=2, optimizer="adam", learning_rate=0.1)
    assert result.shape == (1, 3, 32, 32)
    assert not torch.equal(result, tiny_tensors[0])


def test_make_optimizer() -> None:
    image = torch.zeros(1, 3, 2, 2, requires_grad=True)
    lbfgs = make_optimizer("lbfgs", image, 0.7)
    assert isinstance(lbfgs, BoxLBFGS)
    assert lbfgs.group["lr"] == 0.7 and lbfgs.group["history_size"] == 100
    adam = make_optimizer("adam", image, 0.02)
    assert isinstance(adam, Adam) and adam.group["lr"] == 0.02
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        make_optimizer("sgd", image, 1.0)


def test_bf16_features_give_the_float32_loss_and_gradient_closely(
    shallow_vgg: VGG19Features, tiny_tensors: Pair
) -> None:
    content, style = tiny_tensors
    image = (0.5 * content + 0.5 * style).requires_grad_(True)
    results = []
    for dtype in (None, torch.bfloat16):
        objective = Objective(
            shallow_vgg,
            content,
            [style],
            content_layers=CONTENT_LAYERS,
            style_layers=STYLE_LAYERS,
            content_weight=1.0,
            style_weight=1.5,
            tv_weight=1.0,
            normalization="relative",
            compute_dtype=dtype,
        )
        assert all(f.dtype == torch.float32 for f in objective.features(image).values())
        total, _ = objective(image)
        (gradient,) = torch.autograd.grad(total, image)
        results.append((float(total.detach()), gradient.flatten()))
    (loss32, grad32), (loss16, grad16) = results
    assert abs(loss16 - loss32) < 0.02 * loss32  # bf16 keeps about 3 significant digits
    assert float(torch.nn.functional.cosine_similarity(grad16, grad32, dim=0)) > 0.99


def test_the_precision_resolves_to_bf16_only_where_the_cpu_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from artstyle import device

    cpu = torch.device("cpu")
    assert device.resolve_precision("fp32", cpu) is None
    assert device.resolve_precision("bf16", cpu) is torch.bfloat16
    assert device.resolve_precision("auto", torch.device("mps")) is None
    for native, expected in ((True, torch.bfloat16), (False, None)):
        monkeypatch.setattr(device, "native_cpu_bf16", lambda native=native: native)
        assert device.resolve_precision("auto", cpu) is expected
