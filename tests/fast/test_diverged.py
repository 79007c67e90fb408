"""Runs that diverge (issue 5): NaN or infinity in a loss, its gradient or the image.

NaN is injected by wrapping the objective (``_support.Poisoned``), by a term whose
gradient is NaN while its value is finite, or by an infinite learning rate. The engine
must stop before the bad value is used, say which term diverged and what to try, and
hand back the last finite image; the CLI turns that into one line and exit code 1 and,
with ``--keep-partial``, writes that image.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import torch
from _support import FakeBundled, Poisoned, random_rgb, smooth_rgb
from test_resume import objective_at

from artstyle import ArtstyleError, DivergedError, api, cli, engine
from artstyle.engine import Objective, Progress, Stage, optimize, optimize_stages
from artstyle.errors import FLAGS as FLAG_WORDS
from artstyle.errors import KEYWORDS, spelled
from artstyle.features.vgg import VGG19Features
from artstyle.imageio import read_image, read_metadata


@pytest.fixture(autouse=True)
def in_flags() -> Iterator[None]:
    """The hints as the command line words them (its flags); from Python they name the
    keywords (test_from_python_the_hints_name_the_keywords)."""
    with spelled(FLAG_WORDS):
        yield


Pair = tuple[torch.Tensor, torch.Tensor]


def make_objective(net: VGG19Features, content: torch.Tensor, style: torch.Tensor) -> Objective:
    """The engine tests' objective (``test_resume``'s) at the content's own size."""
    return objective_at(net, content, style, Stage(content.shape[2], content.shape[3], 1))


@pytest.fixture
def objective(shallow_vgg: VGG19Features, tiny_tensors: Pair) -> Objective:
    return make_objective(shallow_vgg, *tiny_tensors)


def poisoned(objective: Objective, at: int, term: str = "style:relu1_1", value: float = float("nan")) -> Objective:
    return cast(Objective, Poisoned(objective, at, term, value))


class NaNGradient(torch.nn.Module):
    """The objective plus a term that is 0 but whose gradient is NaN, from the ``at``-th evaluation."""

    def __init__(self, objective: Objective, at: int) -> None:
        super().__init__()
        self.inner, self.at, self.calls = objective, at, 0

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.calls += 1
        total, parts = self.inner(image)
        if self.calls >= self.at:
            total = total + (image * 0).sqrt().sum() * 0  # d sqrt(u)/du at 0 is infinite; times 0: NaN
        return total, parts


def test_a_nan_term_stops_the_run_and_keeps_the_last_finite_image(objective: Objective, tiny_tensors: Pair) -> None:
    seen: list[Progress] = []
    with pytest.raises(DivergedError) as caught:
        optimize(poisoned(objective, at=4), tiny_tensors[0], iterations=10, warmup=False, callback=seen.append)
    error = caught.value
    assert isinstance(error, ArtstyleError)
    assert str(error) == (
        "the optimisation diverged at iteration 4/10: the style loss at relu1_1 became NaN; "
        "try a lower --learning-rate (now 1), --optimizer adam, or a smaller --style-weight"
    )
    assert (error.step, error.iterations, error.term) == (4, 10, "style:relu1_1")
    assert [p.step for p in seen] == [1, 2, 3]  # the bad iteration is not reported as progress
    assert error.image is not None and torch.equal(error.image, seen[-1].image)
    assert bool(torch.isfinite(error.image).all())


def test_a_term_that_is_infinite_from_the_start_blames_its_weight(objective: Objective, tiny_tensors: Pair) -> None:
    seen: list[Progress] = []
    with pytest.raises(DivergedError) as caught:
        optimize(poisoned(objective, 1, "content", float("inf")), tiny_tensors[0], iterations=5, callback=seen.append)
    assert str(caught.value) == (
        "the optimisation diverged at iteration 1/5: the content loss became infinite; try a smaller --content-weight"
    )
    assert caught.value.image is None and seen == []


def test_from_python_the_hints_name_the_keywords(objective: Objective, tiny_tensors: Pair) -> None:
    with spelled(KEYWORDS), pytest.raises(DivergedError) as caught:
        optimize(objective, tiny_tensors[0], iterations=5, learning_rate=float("inf"))
    assert str(caught.value).endswith("try a lower learning_rate (now inf) or optimizer='adam'")


def test_during_the_warm_up_only_the_weights_are_suggested(objective: Objective, tiny_tensors: Pair) -> None:
    with pytest.raises(
        DivergedError, match=r"iteration 3/20: the total-variation loss became NaN; try a smaller --tv-weight$"
    ):
        optimize(poisoned(objective, 3, "tv"), tiny_tensors[0], iterations=20)


def test_a_nan_gradient_is_caught_before_the_step(objective: Objective, tiny_tensors: Pair) -> None:
    seen: list[Progress] = []
    wrapped = cast(Objective, NaNGradient(objective, at=3))
    with pytest.raises(DivergedError) as caught:
        optimize(wrapped, tiny_tensors[0], iterations=6, optimizer="adam", learning_rate=0.02, callback=seen.append)
    assert str(caught.value) == (
        "the optimisation diverged at iteration 3/6: the gradient of the loss became NaN; "
        "try a lower --learning-rate (now 0.02) or smaller --content-weight, --style-weight or --tv-weight"
    )
    assert caught.value.term == "gradient"
    assert caught.value.image is not None and torch.equal(caught.value.image, seen[-1].image)


def test_an_update_that_is_not_finite_is_undone(objective: Objective, tiny_tensors: Pair) -> None:
    seen: list[Progress] = []
    # Four Adam warm-up steps at their own rate, then L-BFGS with an infinite step size.
    with pytest.raises(DivergedError) as caught:
        optimize(objective, tiny_tensors[0], iterations=5, learning_rate=float("inf"), callback=seen.append)
    message = str(caught.value)
    assert re.fullmatch(
        r"the optimisation diverged at iteration 5/5: the L-BFGS step became (NaN|infinite); "
        r"try a lower --learning-rate \(now inf\) or --optimizer adam",
        message,
    ), message
    assert caught.value.term == "step"
    assert caught.value.image is not None and torch.equal(caught.value.image, seen[-1].image)


def test_the_first_iteration_of_a_later_scale_keeps_the_previous_scale(
    shallow_vgg: VGG19Features, tiny_tensors: Pair
) -> None:
    content, style = tiny_tensors

    def objective_for(index: int, stage: Stage) -> Objective:
        scaled = torch.nn.functional.interpolate(content, size=(stage.height, stage.width), mode="area")
        made = make_objective(shallow_vgg, scaled, style)
        return poisoned(made, at=1) if index == 1 else made

    seen: list[Progress] = []
    with pytest.raises(DivergedError) as caught:
        optimize_stages([Stage(16, 16, 3), Stage(32, 32, 3)], objective_for, content, callback=seen.append)
    assert str(caught.value) == (
        "the optimisation diverged at iteration 4/6 (scale 2/2): the style loss at relu1_1 became NaN; "
        "try a smaller --style-weight"
    )
    assert caught.value.image is not None and tuple(caught.value.image.shape) == (1, 3, 16, 16)
    assert torch.equal(caught.value.image, seen[-1].image) and seen[-1].step == 3


def test_finite_runs_are_not_changed_by_the_checks(objective: Objective, tiny_tensors: Pair) -> None:
    """The checks only read: a run gives the same image and losses as the loop without them."""
    init = tiny_tensors[0]
    result = optimize(objective, init, iterations=3, optimizer="adam", learning_rate=0.05)
    image = init.clone().requires_grad_(True)
    adam = torch.optim.Adam([image], lr=0.05)
    for _ in range(3):
        adam.zero_grad()
        objective(image)[0].backward()
        adam.step()
        with torch.no_grad():
            image.clamp_(0, 1)
    assert torch.equal(result, image.detach())


# --------------------------------------------------------------------------- #
# The command line
# --------------------------------------------------------------------------- #

CaptureFixture = pytest.CaptureFixture[str]
FLAGS = ["--size", "32", "--iterations", "4", "-q", "--device", "cpu", "--seed", "3"]
FLAGS += ["--content-layers", "relu2_2", "--style-layers", "relu1_1,relu2_1"]


def diverge_at(at: int, monkeypatch: pytest.MonkeyPatch) -> None:
    real = engine.optimize_stages

    def diverging(stages: Any, objective_for: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        return real(stages, lambda i, s: poisoned(objective_for(i, s), at), *args, **kwargs)

    monkeypatch.setattr(api, "optimize_stages", diverging)


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    smooth_rgb(48, 40, seed=1).save(tmp_path / "content.png")
    random_rgb(40, 40, seed=2).save(tmp_path / "style.png")
    return [str(tmp_path / "content.png"), str(tmp_path / "style.png")]


def test_keep_partial_writes_the_last_good_image_marked_as_such(
    fake_bundled: FakeBundled,
    inputs: list[str],
    tmp_path: Path,
    capsys: CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "out.png"
    random_rgb(20, 10).save(out)
    diverge_at(4, monkeypatch)  # after the 3 warm-up steps
    code = cli.main([*inputs, "-o", str(out), *FLAGS, "--keep-partial", "--checkpoint-every", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == (
        "artstyle: error: the optimisation diverged at iteration 4/4: the style loss at relu1_1 became NaN; "
        "try a lower --learning-rate (now 1), --optimizer adam, or a smaller --style-weight; "
        f"wrote the last good image (iteration 3) to {out}; --resume continues from iteration 3\n"
    )
    meta = read_metadata(out)
    assert meta is not None and (meta["interrupted_at"], meta["diverged_at"]) == (3, 4)
    assert read_image(out).size == (32, 27)
    assert (tmp_path / "out.png.ckpt").exists()  # a diverged run keeps its checkpoint


def test_the_partial_image_is_the_one_an_interrupted_run_would_write(
    fake_bundled: FakeBundled,
    inputs: list[str],
    tmp_path: Path,
    capsys: CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``interrupted_at`` makes ``artstyle reproduce`` stop there: the same pixels, without the NaN."""
    partial = tmp_path / "partial.png"
    with monkeypatch.context() as patch:
        diverge_at(3, patch)
        assert cli.main([*inputs, "-o", str(partial), *FLAGS, "--keep-partial"]) == 1
    capsys.readouterr()
    assert cli.main(["reproduce", str(partial), "-q"]) == 0
    assert read_image(tmp_path / "partial.reproduced.png").tobytes() == read_image(partial).tobytes()
