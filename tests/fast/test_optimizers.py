"""The optimizers (artstyle.engine.optimizers): BoxLBFGS, L-BFGS in the box [0, 1] that keeps
no step that raised the loss, and Adam, as torch.optim.Adam.

The objectives are small quadratics, 0.5 (x - t)^T A (x - t), where the minimum, the
curvature and where the box cuts in are known.
"""

from __future__ import annotations

import copy

import pytest
import torch

from artstyle.engine import Objective, Progress, optimize
from artstyle.engine.optimizers import (
    FIRST_STEP,
    MAX_SHRINK,
    MIN_SHRINK,
    RESTART_AFTER,
    Adam,
    BoxLBFGS,
    _quadratic_minimum,
    make_optimizer,
)
from artstyle.features.vgg import VGG19Features


def quadratic(target: torch.Tensor, seed: int = 0, spread: float = 1.0):  # type: ignore[no-untyped-def]
    """A convex quadratic with minimum ``target``; ``spread`` > 1 makes it ill-conditioned."""
    n = target.numel()
    generator = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(n, n, generator=generator))
    hessian = basis @ torch.diag(torch.logspace(0, torch.log10(torch.tensor(spread)), n)) @ basis.T

    def loss(x: torch.Tensor) -> torch.Tensor:
        e = (x - target).flatten()
        return 0.5 * e @ hessian @ e

    return loss


def closure_for(optimizer: BoxLBFGS, loss):  # type: ignore[no-untyped-def]
    seen: list[float] = []

    def closure() -> torch.Tensor:
        value = loss(optimizer.image)
        value.backward()
        seen.append(float(value.detach()))
        return value

    return closure, seen


def run(image: torch.Tensor, loss, steps: int, **options: float) -> tuple[BoxLBFGS, list[float]]:  # type: ignore[no-untyped-def]
    optimizer = BoxLBFGS(image, **options)
    closure, seen = closure_for(optimizer, loss)
    for _ in range(steps - 1):
        optimizer.step(closure)
    optimizer.settle(closure)
    return optimizer, seen


def test_it_finds_the_minimum_of_a_quadratic_inside_the_box() -> None:
    target = torch.linspace(0.1, 0.9, 40)
    image = torch.full((40,), 0.5, requires_grad=True)
    _, seen = run(image, quadratic(target, spread=30.0), 40)
    assert float((image.detach() - target).abs().max()) < 1e-3
    assert seen[-1] < 1e-6 * seen[0]
    assert len(seen) == 40  # one evaluation an iteration


def test_the_accepted_losses_never_rise_and_the_image_left_is_the_best_evaluated() -> None:
    target = torch.linspace(0.1, 0.9, 40)
    loss = quadratic(target, seed=1, spread=100.0)
    image = torch.full((40,), 0.5, requires_grad=True)
    optimizer, seen = run(image, loss, 25, lr=1.8)  # overlong steps: some are rejected
    assert optimizer.rejected > 0
    best = [min(seen[: k + 1]) for k in range(len(seen))]
    accepted = optimizer.state["loss"]
    assert accepted == min(seen) == best[-1]
    assert float(loss(image.detach())) == pytest.approx(accepted, rel=1e-6)


def test_a_rejected_point_sends_the_image_back_and_shortens_the_next_step() -> None:
    # A valley whose curvature jumps past 0.6: the first steps overshoot into the steep side.
    def loss(x: torch.Tensor) -> torch.Tensor:
        e = x - 0.7
        return (0.5 * e.pow(2) + 50 * torch.relu(x - 0.75).pow(2)).sum()

    image = torch.full((3,), 0.2, requires_grad=True)
    optimizer = BoxLBFGS(image, first_step=0.9)
    closure, seen = closure_for(optimizer, loss)
    optimizer.step(closure)  # evaluates 0.2, proposes 0.2 + 0.9 = 1.0 (clamped)
    assert torch.allclose(image, torch.ones(3))
    optimizer.step(closure)  # 1.0 is much worse: back to 0.2, and a shorter step from there
    assert optimizer.rejected == 1
    assert seen[1] > seen[0]
    assert optimizer.state["loss"] == seen[0]
    assert optimizer.state["length"] <= MAX_SHRINK
    assert 0.2 < float(image.detach()[0]) < 1.0


def test_the_history_holds_the_step_as_taken_after_the_clamp() -> None:
    # The minimum lies outside the box for half the pixels: the clamp cuts their steps.
    target = torch.tensor([-0.5, 1.5, 0.3, 0.6])
    image = torch.full((4,), 0.5, requires_grad=True)
    optimizer = BoxLBFGS(image, first_step=2.0)
    closure, _ = closure_for(optimizer, quadratic(target))
    before = image.detach().clone()
    optimizer.step(closure)
    taken = image.detach().clone() - before
    assert float(taken.abs().max()) <= 0.5  # clamped: the proposed step was 2.0 on some pixel
    optimizer.step(closure)
    steps = optimizer.state["steps"]
    assert len(steps) == 1 and torch.allclose(steps[0], taken)


def test_after_rejections_in_a_row_the_history_is_dropped_and_the_next_step_is_steepest_descent() -> None:
    target = torch.linspace(0.2, 0.8, 12)
    loss = quadratic(target, seed=3, spread=20.0)
    image = torch.full((12,), 0.5, requires_grad=True)
    optimizer = BoxLBFGS(image)
    closure, _ = closure_for(optimizer, loss)
    for _ in range(4):
        optimizer.step(closure)
    assert len(optimizer.state["steps"]) >= 2
    # From here every move away from the accepted point costs far more than it gains:
    # each proposal is rejected, as when the history's directions are not downhill.
    accepted = optimizer.state["point"].clone()
    gradient = optimizer.state["gradient"].clone()

    def walled(x: torch.Tensor) -> torch.Tensor:
        return loss(x) + 1e9 * (x - accepted.view_as(x)).pow(2).sum()

    closure, _ = closure_for(optimizer, walled)
    for _ in range(RESTART_AFTER - 1):
        optimizer.step(closure)
        assert optimizer.state["steps"], "the history is kept while rejections are few"
    optimizer.step(closure)
    assert optimizer.rejected == RESTART_AFTER
    assert optimizer.state["steps"] == [] and optimizer.state["length"] == 1.0
    moved = image.detach() - accepted  # the first step's again: down the gradient, the most-changed pixel by FIRST_STEP
    expected = -gradient * FIRST_STEP / float(gradient.abs().max())
    assert torch.allclose(moved, expected, atol=1e-6)


def test_a_state_saved_before_the_restart_rule_resumes() -> None:
    image = torch.full((6,), 0.5, requires_grad=True)
    optimizer = BoxLBFGS(image)
    closure, _ = closure_for(optimizer, quadratic(torch.linspace(0.1, 0.9, 6)))
    for _ in range(3):
        optimizer.step(closure)
    state = copy.deepcopy(optimizer.state_dict())
    del state["state"][0]["streak"]
    resumed = BoxLBFGS(image.detach().clone().requires_grad_(True))
    resumed.load_state_dict(state)
    assert resumed.state["streak"] == 0


def test_a_stopped_run_resumes_exactly_from_its_state() -> None:
    target = torch.linspace(0.05, 0.95, 30)
    loss = quadratic(target, seed=2, spread=50.0)
    whole = torch.full((30,), 0.5, requires_grad=True)
    run(whole, loss, 20)

    first = torch.full((30,), 0.5, requires_grad=True)
    optimizer = BoxLBFGS(first)
    closure, _ = closure_for(optimizer, loss)
    for _ in range(8):
        optimizer.step(closure)
    state, picture = copy.deepcopy(optimizer.state_dict()), first.detach().clone()

    second = picture.clone().requires_grad_(True)
    resumed = BoxLBFGS(second)
    resumed.load_state_dict(state)
    closure, _ = closure_for(resumed, loss)
    for _ in range(11):
        resumed.step(closure)
    resumed.settle(closure)
    assert torch.equal(second, whole)


def test_settling_on_the_first_evaluation_still_moves() -> None:
    image = torch.full((5,), 0.5, requires_grad=True)
    optimizer = BoxLBFGS(image)
    closure, _ = closure_for(optimizer, quadratic(torch.full((5,), 0.1)))
    optimizer.settle(closure)
    assert float(image.detach().max()) < 0.5
    assert float((0.5 - image.detach()).max()) == pytest.approx(0.02, rel=1e-5)  # the first step size


def test_the_shrink_is_the_parabolas_minimum_within_bounds() -> None:
    # loss 1 at 0 with slope -2; a parabola through 2 at 1 has its minimum at 2 / (2 * 3) = 1/3.
    assert _quadratic_minimum(1.0, -2.0, 2.0) == pytest.approx(1 / 3)
    assert _quadratic_minimum(1.0, -2.0, 100.0) == MIN_SHRINK
    assert _quadratic_minimum(1.0, -2.0, -0.9) == MAX_SHRINK  # not convex
    assert _quadratic_minimum(1.0, 0.5, 2.0) == MAX_SHRINK  # not downhill


def test_an_lbfgs_run_returns_no_worse_a_picture_than_any_it_evaluated(shallow_vgg: VGG19Features) -> None:
    generator = torch.Generator().manual_seed(11)
    content, style = torch.rand(1, 3, 32, 32, generator=generator), torch.rand(1, 3, 32, 32, generator=generator)
    objective = Objective(
        shallow_vgg,
        content,
        [style],
        content_layers=(("relu2_2", 1.0),),
        style_layers=(("relu1_1", 1.0), ("relu2_1", 1.0), ("relu3_1", 1.0)),
        content_weight=1.0,
        style_weight=5.0,
        tv_weight=1.0,
        normalization="relative",
    )
    seen: list[Progress] = []
    # A long step makes overshoots, and so rejected points, likely.
    result = optimize(objective, content, iterations=30, warmup=False, learning_rate=2.0, callback=seen.append)
    evaluated = [p.losses["total"] for p in seen]
    with torch.no_grad():
        final, _ = objective(result)
    assert float(final) == pytest.approx(min(evaluated), rel=1e-5)
    assert max(evaluated) > min(evaluated[:-1])  # some evaluated point was worse than an earlier one
    assert float(final) < 0.8 * evaluated[0]


def test_adam_takes_torchs_steps_to_the_bit() -> None:
    target = torch.linspace(0.1, 0.9, 12)
    loss = quadratic(target, seed=3, spread=10.0)
    ours = torch.full((12,), 0.5, requires_grad=True)
    theirs = ours.detach().clone().requires_grad_(True)
    adam, reference = Adam(ours, lr=0.05), torch.optim.Adam([theirs], lr=0.05)
    closure, _ = closure_for(adam, loss)

    def reference_closure() -> torch.Tensor:
        reference.zero_grad()
        value = loss(theirs)
        value.backward()
        return value

    for _ in range(15):
        adam.step(closure)
        reference.step(reference_closure)
    assert torch.equal(ours.detach(), theirs.detach())


def test_adam_resumes_exactly_from_its_state() -> None:
    loss = quadratic(torch.linspace(0.2, 0.8, 10), seed=4)
    whole = torch.full((10,), 0.5, requires_grad=True)
    adam = Adam(whole, lr=0.03)
    closure, _ = closure_for(adam, loss)
    for _ in range(9):
        adam.step(closure)
    part = torch.full((10,), 0.5, requires_grad=True)
    first = Adam(part, lr=0.03)
    closure, _ = closure_for(first, loss)
    for _ in range(4):
        first.step(closure)
    resumed = Adam(part, lr=0.03)
    resumed.load_state_dict(copy.deepcopy(first.state_dict()))
    closure, _ = closure_for(resumed, loss)
    for _ in range(5):
        resumed.step(closure)
    assert torch.equal(part, whole)


def test_a_state_of_the_other_optimizer_is_refused() -> None:
    image = torch.full((4,), 0.5, requires_grad=True)
    adam = Adam(image, lr=0.1)
    closure, _ = closure_for(adam, quadratic(torch.zeros(4)))
    adam.step(closure)
    with pytest.raises(ValueError, match="settings"):
        BoxLBFGS(image).load_state_dict(adam.state_dict())
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        make_optimizer("sgd", image, 1.0)
