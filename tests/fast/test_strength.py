"""``strength`` (issue 30): a style share asked for, and the style weight found for it.

The engine tests run the two scales of ``test_resume`` (16 then 32 px) on the shallow
random network with a calibration: the first scale's 13 iterations run in parts of 5, 4
and 4, the last scale's 3 in parts of one, the weight moving after iterations 5, 9, 14
and 15. A resumed run ends bit-identical to an uninterrupted one from a state taken
anywhere in them.
"""

from __future__ import annotations

import io
import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from _support import FakeBundled, random_rgb, smooth_rgb
from hypothesis import given
from hypothesis import strategies as st
from test_resume import objective_at as resume_objective
from test_resume import pair

from artstyle import Stylizer, cli
from artstyle.api import make_config
from artstyle.color import recolor
from artstyle.engine import Objective, Progress, RunState, Stage, optimize_stages
from artstyle.engine.strength import (
    LARGEST_MOVE,
    LAST_LARGEST_MOVE,
    LAST_SEGMENTS,
    SEGMENTS,
    SHARE_AT_FULL,
    Calibration,
    segments,
    style_share,
    target_share,
)
from artstyle.errors import ConfigError
from artstyle.features.vgg import VGG19Features
from artstyle.imageio import read_metadata

STAGES = [Stage(16, 16, 13), Stage(32, 32, 3)]
TOTAL = 16


# --------------------------------------------------------------------------- #
# The measure and the model
# --------------------------------------------------------------------------- #


def test_strength_asks_for_a_share_that_falls_from_the_photos_own() -> None:
    shares = [target_share(s) for s in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert shares[0] == 1.0 and shares[-1] == pytest.approx(SHARE_AT_FULL)
    assert shares == sorted(shares, reverse=True)
    ratios = [a / b for a, b in itertools.pairwise(shares)]
    assert max(ratios) == pytest.approx(min(ratios))  # each step of 0.25 divides by the same factor
    with pytest.raises(ValueError, match="between 0 and 1"):
        target_share(1.5)


@given(st.integers(min_value=1, max_value=500))
def test_segments_cover_the_iterations(iterations: int) -> None:
    parts = segments(iterations)
    assert sum(parts) == iterations and min(parts) >= 1 and 1 <= len(parts) <= 3
    assert len(parts) == min(3, iterations)


@pytest.mark.parametrize("elasticity", [0.5, 0.75, 1.2])
def test_the_calibration_finds_the_weight_of_a_power_law_pair(elasticity: float) -> None:
    """On a pair whose share is c * weight^-e the factor converges to the weight that
    gives the target, within a few moves, whatever the true elasticity."""
    share_at = lambda factor: 0.3 * factor**-elasticity  # noqa: E731
    calibration = Calibration(0.03)
    for _ in range(6):
        calibration.observe(share_at(calibration.factor))
    assert share_at(calibration.factor) == pytest.approx(0.03, rel=0.1)


def test_a_move_early_in_a_scale_expects_the_share_to_fall_further() -> None:
    early, late = Calibration(0.1), Calibration(0.1)
    early.observe(0.1, left=0.6)
    late.observe(0.1, left=0.0)
    assert late.factor == 1.0 and early.factor < 1.0  # on target now, below it by the scale's end


def test_one_move_is_bounded_and_a_bad_measure_moves_nothing() -> None:
    calibration = Calibration(1e-6)
    calibration.observe(1.0)
    assert calibration.factor == LARGEST_MOVE
    calibration.observe(1.0, last=True)
    assert calibration.factor == LARGEST_MOVE * LAST_LARGEST_MOVE
    for bad in (math.nan, math.inf, 0.0, -1.0):
        still = Calibration(0.1)
        still.observe(bad)
        assert still.factor == 1.0


# --------------------------------------------------------------------------- #
# The engine: parts, moves, checkpoints
# --------------------------------------------------------------------------- #


def objective_at(
    net: VGG19Features, content: torch.Tensor, style: torch.Tensor, stage: Stage, weight: float
) -> Objective:
    """``test_resume``'s objective, with relative normalisation and this style weight."""
    return resume_objective(net, content, style, stage, weight, normalization="relative")


def calibrated_run(
    net: VGG19Features, target: float, **options: Any
) -> tuple[torch.Tensor, list[Progress], Calibration, list[float]]:
    """A two-scale run whose style weight (100 times the factor) is calibrated; the shares it measured."""
    content, style = pair()
    moves: list[float] = []

    class Recorded(Calibration):
        def observe(self, share: float, *, left: float = 0.0, last: bool = False) -> None:
            moves.append(share)
            super().observe(share, left=left, last=last)

    calibration = Recorded(target)
    objective_for: Callable[[int, Stage], Objective] = lambda index, stage: objective_at(  # noqa: E731
        net, content, style, stage, 100.0 * calibration.factor
    )
    seen: list[Progress] = []
    result = optimize_stages(STAGES, objective_for, content, callback=seen.append, calibration=calibration, **options)
    return result, seen, calibration, moves


def saved(state: RunState) -> bytes:
    buffer = io.BytesIO()
    torch.save({name: getattr(state, name) for name in RunState.__dataclass_fields__}, buffer)
    return buffer.getvalue()


def loaded(data: bytes) -> RunState:
    return RunState(**torch.load(io.BytesIO(data), map_location="cpu", weights_only=True))


@pytest.fixture(scope="module")
def uninterrupted(shallow_vgg: VGG19Features) -> tuple[torch.Tensor, list[Progress], Calibration, dict[int, bytes]]:
    states: dict[int, bytes] = {}
    keep = lambda state: states.update({state.step: saved(state)})  # noqa: E731
    result, seen, calibration, _ = calibrated_run(shallow_vgg, 0.05, checkpoint=keep, checkpoint_every=1)
    return result, seen, calibration, states


def move_steps() -> list[int]:
    """The iterations after which the weight moves: every part's end but each scale's last."""
    steps, done = [], 0
    for stage, fractions in zip(STAGES, (SEGMENTS, LAST_SEGMENTS), strict=True):
        ends = list(itertools.accumulate(segments(stage.iterations, fractions)))
        steps += [done + end for end in ends[:-1]]
        done += stage.iterations
    return steps


def test_the_weight_moves_at_the_first_and_the_last_scale(
    shallow_vgg: VGG19Features, uninterrupted: tuple[torch.Tensor, list[Progress], Calibration, dict[int, bytes]]
) -> None:
    result, seen, calibration, states = uninterrupted
    plain, _, again, moves = calibrated_run(shallow_vgg, 0.05)
    assert torch.equal(result, plain) and again.factor == calibration.factor  # checkpoints change nothing
    assert len(moves) == len(move_steps()) >= 3 and calibration.factor != 1.0
    # Each state holds the factor in force: it changes right after each move, and only there.
    factors = {k: loaded(states[k]).style_factor for k in sorted(states)}
    assert factors[1] == 1.0
    changes = [k for k in range(2, TOTAL) if factors[k] != factors[k - 1]]
    assert changes == [step + 1 for step in move_steps() if step + 1 < TOTAL]
    assert [p.step for p in seen] == list(range(1, TOTAL + 1))


def test_a_lower_target_finds_a_larger_weight(shallow_vgg: VGG19Features) -> None:
    factors = [calibrated_run(shallow_vgg, target)[2].factor for target in (0.5, 0.05)]
    assert factors[0] < factors[1]


@pytest.mark.parametrize("k", [3, 5, 7, 9, 12, 13, 14, 15])  # in, and at the end of, every part
def test_resuming_a_calibrated_run_ends_bit_identical(
    shallow_vgg: VGG19Features,
    uninterrupted: tuple[torch.Tensor, list[Progress], Calibration, dict[int, bytes]],
    k: int,
) -> None:
    result, seen, calibration, states = uninterrupted
    resumed, resumed_seen, again, _ = calibrated_run(shallow_vgg, 0.05, resume=loaded(states[k]))
    assert torch.equal(resumed, result) and again.factor == calibration.factor
    assert [p.losses for p in resumed_seen] == [p.losses for p in seen[k:]]


# --------------------------------------------------------------------------- #
# Options, the API and the command line
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("value", [-0.1, 1.01, "strong", math.nan])
def test_a_strength_outside_zero_to_one_is_refused(value: object) -> None:
    with pytest.raises(ConfigError, match="strength"):
        make_config(strength=value)


def test_the_command_line_refuses_a_bad_strength_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["a.png", "b.png", "-o", "c.png", "--strength", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--strength" in err and "from 0 to 1" in err


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    smooth_rgb(40, 32, seed=1).save(content)
    random_rgb(40, 40, seed=2).save(style)
    return {"content": content, "style": style}


SMALL = {
    "size": 32,
    "min_size": 16,
    "iterations": 3,
    "coarse_iterations": 6,
    "content_layers": "relu2_2",
    "style_layers": "relu1_1,relu2_1",
    "seed": 1,
    "device": "cpu",
}


def test_the_api_reports_the_weight_found_and_the_share_it_reached(
    fake_bundled: FakeBundled, images: dict[str, Path]
) -> None:
    stylizer = Stylizer(device="cpu")
    plan = stylizer.prepare(images["content"], images["style"], make_config(**SMALL, strength=0.9))
    result = stylizer.run(plan)
    assert result.style_weight is not None and result.style_weight != plan.config.style_weight
    assert result.metadata()["found"] == {"style_weight": result.style_weight}
    assert result.tensor is not None and 0 < stylizer.style_share(plan, result.tensor) < math.inf
    last = plan.scales[-1]
    start = recolor(last.content, last.styles, [1.0], plan.config.palette)  # the recoloured photo a run starts from
    assert stylizer.style_share(plan, start) == pytest.approx(1.0, rel=1e-4)
    assert stylizer.style_share(plan, last.content) > 1.0  # the photo's own colours are further from the painting

    fixed = stylizer.run(stylizer.prepare(images["content"], images["style"], make_config(**SMALL)))
    assert fixed.style_weight == 2.0 and "found" not in fixed.metadata()


def test_the_command_line_records_the_strength_and_the_weight_found(
    fake_bundled: FakeBundled, images: dict[str, Path], tmp_path: Path
) -> None:
    output = tmp_path / "out.png"
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in SMALL.items()]
    assert (
        cli.main([str(images["content"]), str(images["style"]), "-o", str(output), "-q", "--strength", "0.5", *flags])
        == 0
    )
    metadata = json.loads(json.dumps(read_metadata(output)))
    assert metadata["parameters"]["strength"] == 0.5 and metadata["found"]["style_weight"] > 0


def test_the_share_is_one_at_the_start_and_zero_at_the_painting(shallow_vgg: VGG19Features) -> None:
    content, style = pair()
    objective = objective_at(shallow_vgg, content, style, Stage(32, 32, 1), 3.0)
    assert style_share(objective, content) == pytest.approx(1.0, rel=1e-5)
    assert style_share(objective, style) == pytest.approx(0.0, abs=1e-6)
    assert style_share(objective, 0.5 * content + 0.25) > 0
    start = 0.8 * content + 0.2 * style  # another start: the share divides by its loss instead
    assert style_share(objective, start, start) == pytest.approx(1.0, rel=1e-5)
    assert style_share(objective, content, start) == pytest.approx(1.0 / style_share(objective, start), rel=1e-5)
