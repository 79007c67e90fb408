"""Tiled optimisation (issue 4): large images in bounded memory.

The tiled objective must be the untiled one: the cores of the tiles partition every
layer's features, a core's features computed from its crop are exactly the whole
image's, and so the loss, its parts and its gradient agree with the untiled
objective's up to rounding, with masks, both style losses and luminance-only transfer.
A run with tiles has no seams; the same run with tiles that lack context (the naive
way) has them, which shows the test can fail. The memory plan tiles exactly the
scales that do not fit and shortens L-BFGS's history when it would not.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from _support import FakeBundled, random_rgb, smooth_rgb

from artstyle import cli
from artstyle.api import Stylizer, make_config
from artstyle.config import Config
from artstyle.engine import Objective, RunState, Stage, optimize, optimize_stages, plan
from artstyle.engine.plan import available_memory, pass_bytes, plan_memory
from artstyle.engine.tiled import TiledObjective, tile_grid, tiled_feature_stats
from artstyle.errors import FLAGS, ConfigError, DivergedError, spelled
from artstyle.features.layers import min_tile_size
from artstyle.features.vgg import VGG19Features, context_margin, min_image_side, pools_before, receptive_field
from artstyle.losses import feature_stats
from artstyle.runs import Job
from artstyle.runs.execute import out_of_memory_message

LAYERS = ("relu1_1", "relu2_1", "relu2_2", "relu3_1")  # those of the shallow_vgg fixture
CONTENT_LAYERS = (("relu2_2", 1.0),)
STYLE_LAYERS = (("relu1_1", 1.0), ("relu2_1", 1.0), ("relu3_1", 1.0))
FAST_LAYERS = {"content_layers": "relu2_2", "style_layers": "relu1_1,relu2_1"}


def smooth(height: int, width: int, seed: int = 0, channels: int = 3) -> torch.Tensor:
    """Colour ramps plus a little noise, (1, C, H, W) in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    ramps = torch.stack([x, y, 1 - x])[None, :channels]
    return (ramps + 0.05 * torch.randn(1, channels, height, width, generator=generator)).clamp(0, 1)


def noise(height: int, width: int, seed: int) -> torch.Tensor:
    return torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed))


def halves(height: int, width: int) -> list[torch.Tensor]:
    left = torch.zeros(1, 1, height, width)
    left[..., : width // 2] = 1
    return [left, 1 - left]


# --------------------------------------------------------------------------- #
# Geometry
# --------------------------------------------------------------------------- #


def test_receptive_fields_and_margins_of_the_default_layers() -> None:
    assert receptive_field("relu1_1") == (-1, 1, 1)
    assert receptive_field("pool1") == (-2, 3, 2)
    assert receptive_field("relu5_1") == (-70, 85, 16)
    assert context_margin(Config().layers) == 80  # 70 px, on the 16-px grid of relu5_1
    assert min_tile_size(Config().layers) == 16 + 2 * 80
    assert context_margin(LAYERS) == 12 and min_image_side(LAYERS) == 4


@pytest.mark.parametrize(
    ("height", "width", "tile"), [(64, 80, 48), (96, 128, 48), (61, 77, 40), (30, 201, 28), (40, 40, 40)]
)
def test_cores_cover_every_feature_of_every_layer_exactly_once(height: int, width: int, tile: int) -> None:
    tiles = tile_grid(height, width, tile, LAYERS)
    margin, align = context_margin(LAYERS), min_image_side(LAYERS)
    for name in LAYERS:
        stride = 1 << pools_before(name)
        count = torch.zeros(1, 1, height // stride, width // stride)
        for t in tiles:
            t.core_in_image(count, stride).add_(1)
        assert bool((count == 1).all()), name  # the "windows" are a partition of unity
    for t in tiles:
        top, bottom, left, right = t.core
        assert t.bottom - t.top <= tile and t.right - t.left <= tile
        assert (t.top, t.bottom) == (max(0, top - margin), min(height, bottom + margin))
        assert (t.left, t.right) == (max(0, left - margin), min(width, right + margin))
        assert all(edge % align == 0 for edge in (t.top, t.left, top, left))
    assert len(tiles) == 1 if max(height, width) <= tile else len(tiles) > 1


def test_core_features_from_a_crop_are_the_whole_images(shallow_vgg: VGG19Features) -> None:
    image = noise(64, 80, seed=1)
    whole = shallow_vgg(image)

    def worst(margin: int | None) -> float:
        error = 0.0
        for t in tile_grid(64, 80, 48, LAYERS, margin):
            crop = shallow_vgg(t.take(image))
            for name in LAYERS:
                stride = 1 << pools_before(name)
                difference = t.core_in_crop(crop[name], stride) - t.core_in_image(whole[name], stride)
                error = max(error, float(difference.abs().max()))
        return error

    scale = float(whole["relu3_1"].abs().max())
    assert worst(None) < 1e-5 * scale
    assert worst(context_margin(LAYERS) - min_image_side(LAYERS)) > 1e-3 * scale  # one step less is not enough


def test_style_statistics_by_tiles_are_the_whole_images(shallow_vgg: VGG19Features) -> None:
    image = noise(72, 90, seed=2)
    whole = shallow_vgg(image)
    tiled = tiled_feature_stats(shallow_vgg, image, ["relu1_1", "relu3_1"], tile_size=40)
    for name in ("relu1_1", "relu3_1"):
        expected = feature_stats(whole[name])
        torch.testing.assert_close(tiled[name].mean, expected.mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(tiled[name].second_moment, expected.second_moment, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- #
# The tiled objective is the untiled one
# --------------------------------------------------------------------------- #


def objectives(
    net: VGG19Features, channels: int = 3, size: tuple[int, int] = (64, 80), **options: Any
) -> tuple[Objective, TiledObjective]:
    content = smooth(*size, seed=3, channels=channels)
    styles = [noise(40, 56, seed=4), noise(72, 90, seed=5)]  # the second is tiled too
    common: dict[str, Any] = {
        "content_layers": CONTENT_LAYERS,
        "style_layers": STYLE_LAYERS,
        "content_weight": 5.0,
        "style_weight": 1e4,
        "tv_weight": 10.0,
        "style_blend": [2.0, 1.0],
        **options,
    }
    margin = common.pop("margin", None)
    return Objective(net, content, styles, **common), TiledObjective(
        net, content, styles, tile_size=48, margin=margin, **common
    )


def with_gradient(objective: Any, image: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
    image = image.detach().clone().requires_grad_(True)
    if isinstance(objective, TiledObjective):
        _, parts = objective.loss_and_gradient(image)
    else:
        total, parts = objective(image)
        total.backward()
    return {name: float(value.detach()) for name, value in parts.items()}, image.grad.clone()  # type: ignore[union-attr]


CASES = {
    "gram": {},
    "meancov": {"style_loss": "meancov"},
    "gram, masks": {"style_masks": halves(64, 80), "content_mask": smooth(64, 80, seed=6, channels=1)},
    "meancov, masks": {"style_loss": "meancov", "style_masks": halves(64, 80)},
    "luminance": {"channels": 1},
    "relative": {"normalization": "relative", "content_weight": 1.0, "style_weight": 5.0},
    "relative, meancov": {"normalization": "relative", "style_loss": "meancov"},
    "relative, masks": {"normalization": "relative", "style_masks": halves(64, 80)},
}


@pytest.mark.parametrize("options", list(CASES.values()), ids=list(CASES))
def test_tiled_loss_parts_and_gradient_are_the_untiled_ones(shallow_vgg: VGG19Features, options: Any) -> None:
    untiled, tiled = objectives(shallow_vgg, **options)
    assert len(tiled.tiles) == 6  # 2 x 3, the middle column with context on both sides
    image = smooth(64, 80, seed=7, channels=options.get("channels", 3))
    expected, expected_grad = with_gradient(untiled, image)
    parts, grad = with_gradient(tiled, image)
    assert parts.keys() == expected.keys()
    for name, value in expected.items():
        assert parts[name] == pytest.approx(value, rel=1e-4, abs=1e-12), name
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=2e-4 * float(expected_grad.abs().max()))
    _, reported = tiled(image)  # without a gradient: the same parts
    assert {name: float(v) for name, v in reported.items()} == pytest.approx(parts, rel=1e-6)


STRONG = {"content_weight": 1.0, "style_weight": 1e5, "tv_weight": 1.0}  # the networks' terms dominate


def test_the_gradient_is_exact_near_the_seams_only_with_context(shallow_vgg: VGG19Features) -> None:
    untiled, tiled = objectives(shallow_vgg, **STRONG)
    _, naive = objectives(shallow_vgg, margin=0, **STRONG)
    image = smooth(64, 80, seed=8)
    _, expected = with_gradient(untiled, image)
    scale = float(expected.abs().max())
    error = (with_gradient(tiled, image)[1] - expected).abs()
    naive_error = (with_gradient(naive, image)[1] - expected).abs()
    print(float(error.max()) / scale, float(naive_error.max()) / scale)
    assert float(error.max()) < 2e-4 * scale
    assert float(naive_error.max()) > 0.05 * scale


def column_seams(objective: TiledObjective) -> list[int]:
    return sorted({t.core[2] for t in objective.tiles} - {0})


def across_seams(image: torch.Tensor, seams: list[int]) -> tuple[float, float]:
    """Mean absolute step between neighbouring columns across ``seams``, and elsewhere."""
    steps = (image[..., 1:] - image[..., :-1]).abs().mean(dim=(0, 1, 2))  # step i: column i to i + 1
    at = torch.zeros_like(steps, dtype=torch.bool)
    at[torch.tensor(seams) - 1] = True
    return float(steps[at].mean()), float(steps[~at].mean())


def test_a_tiled_run_has_no_seams_where_naive_tiles_do(shallow_vgg: VGG19Features) -> None:
    untiled, tiled = objectives(shallow_vgg, **STRONG)
    _, naive = objectives(shallow_vgg, margin=0, **STRONG)
    start = smooth(64, 80, seed=3)
    run = {"iterations": 4, "optimizer": "adam", "learning_rate": 0.05}
    reference = optimize(untiled, start, **run)
    assert float((reference - start).abs().mean()) > 0.05  # the style moved the picture
    result = optimize(tiled, start, **run)
    assert float((result - reference).abs().max()) < 1e-3
    # Across the tile boundaries the picture steps no more than the untiled one does.
    seams, naive_seams = column_seams(tiled), column_seams(naive)
    assert across_seams(result, seams)[0] == pytest.approx(across_seams(reference, seams)[0], abs=1e-4)
    broken = optimize(naive, start, **run)
    assert across_seams(broken, naive_seams)[0] > across_seams(reference, naive_seams)[0] + 3e-3


def test_tiled_runs_resume_bit_identically_with_the_planned_history(shallow_vgg: VGG19Features) -> None:
    coarse, _ = objectives(shallow_vgg, size=(32, 40))
    _, fine = objectives(shallow_vgg)
    stages = [Stage(32, 40, 1), Stage(64, 80, 3, tile_size=48, history_size=3)]
    start = smooth(32, 40, seed=3)
    states: list[RunState] = []
    run = {"learning_rate": 0.1, "checkpoint_every": 1}
    whole = optimize_stages(
        stages, lambda i, s: fine if i else coarse, start, checkpoint=lambda s: states.append(copy.deepcopy(s)), **run
    )
    assert [(s.step, s.optimizer) for s in states] == [(1, None), (2, "lbfgs"), (3, "lbfgs")]
    assert states[1].optimizer_state is not None
    assert states[1].optimizer_state["param_groups"][0]["history_size"] == 3  # the stage's, not 100
    resumed = optimize_stages(stages, lambda i, s: fine if i else coarse, start, resume=states[1], learning_rate=0.1)
    assert torch.equal(resumed, whole)


def test_a_tiled_run_that_diverges_stops_with_the_usual_error(shallow_vgg: VGG19Features) -> None:
    _, tiled = objectives(shallow_vgg)
    with pytest.raises(DivergedError, match=r"iteration 1/3: the L-BFGS step became infinite"):
        optimize(tiled, smooth(64, 80, seed=3), iterations=3, warmup=False, learning_rate=float("inf"))
    poisoned = smooth(64, 80, seed=3)
    poisoned[..., 30, 40] = float("nan")  # inside one tile's core: its content term is NaN
    with pytest.raises(DivergedError, match=r"iteration 1/3: the content loss became NaN"):
        optimize(tiled, poisoned, iterations=3, warmup=False)


# --------------------------------------------------------------------------- #
# Memory plan
# --------------------------------------------------------------------------- #

GIB = 1 << 30


def test_plan_tiles_only_the_scales_that_do_not_fit() -> None:
    layers = Config().layers
    stages = [Stage(384, 512, 10), Stage(768, 1024, 10), Stage(1536, 2048, 10), Stage(3072, 4096, 10)]
    plenty = plan_memory(stages, layers=layers, channels=3, optimizer="lbfgs", tile_size=0, available=1 << 50)
    assert [(s.tile_size, s.history_size) for s in plenty] == [(0, 100)] * 4
    planned = plan_memory(stages, layers=layers, channels=3, optimizer="lbfgs", tile_size=0, available=24 * GIB)
    budget = int(24 * GIB * plan.MEMORY_FRACTION)
    for stage in planned:
        numel = 3 * stage.height * stage.width
        assert stage.history_size == max(5, min(100, budget // 4 // (8 * numel)))
        kept = 8 * numel * stage.history_size + plan.IMAGE_COPIES * 4 * numel
        room = budget - kept
        if stage.tile_size == 0:
            assert pass_bytes(stage.height, stage.width, layers) <= room
        else:
            assert pass_bytes(stage.height, stage.width, layers) > room
            assert pass_bytes(stage.tile_size, stage.tile_size, layers) <= room
            larger = stage.tile_size + min_image_side(layers)
            assert pass_bytes(larger, larger, layers) > room  # as large as fits
    assert [s.tile_size > 0 for s in planned] == [False, False, False, True]
    assert planned[2].history_size < 100  # the 2048-px scale keeps a shorter history, untiled


def test_plan_with_a_tile_size_or_adam_or_luminance() -> None:
    layers = Config().layers
    stages = [Stage(96, 128, 3), Stage(192, 256, 3), Stage(384, 512, 3)]
    forced = plan_memory(stages, layers=layers, channels=3, optimizer="lbfgs", tile_size=200, available=1 << 50)
    assert [s.tile_size for s in forced] == [0, 200, 200]
    as_large = plan_memory(stages, layers=layers, channels=3, optimizer="lbfgs", tile_size=512, available=1 << 50)
    assert [s.tile_size for s in as_large] == [0, 0, 0]
    tiny = plan_memory(stages, layers=layers, channels=1, optimizer="adam", tile_size=0, available=1 << 20)
    assert [s.tile_size for s in tiny] == [0, 176, 176]  # nothing fits: the smallest tiles (128 px is less)
    assert [s.history_size for s in tiny] == [100] * 3  # Adam has none to cut
    luminance = plan_memory(stages, layers=layers, channels=1, optimizer="lbfgs", tile_size=0, available=200 << 20)
    rgb = plan_memory(stages, layers=layers, channels=3, optimizer="lbfgs", tile_size=0, available=200 << 20)
    assert luminance[-1].history_size > rgb[-1].history_size >= plan.MIN_HISTORY


def test_pass_estimate_grows_with_the_pixels_and_the_depth() -> None:
    assert pass_bytes(512, 512, ["relu5_1"]) == pytest.approx(4 * pass_bytes(256, 256, ["relu5_1"]), rel=0.01)
    assert pass_bytes(256, 256, ["relu1_1"]) < pass_bytes(256, 256, ["relu3_1"]) < pass_bytes(256, 256, ["relu5_1"])
    # About 2.5 KB a pixel for the default layers (one float32 per output element, 616 a pixel, times 1.25).
    assert pass_bytes(1024, 1024, Config().layers) / 1024**2 == pytest.approx(616 * 4 * 1.25, rel=0.01)


def test_available_memory_reads_meminfo_then_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683656 kB\nMemAvailable:    1000 kB\n")
    cpu = torch.device("cpu")
    monkeypatch.setattr(plan, "free_heap_bytes", lambda: 0)
    assert available_memory(cpu, str(meminfo)) == 1000 * 1024
    monkeypatch.setattr(plan, "free_heap_bytes", lambda: 3 << 20)  # an earlier run's, held freed
    assert available_memory(cpu, str(meminfo)) == 1000 * 1024 + (3 << 20)
    monkeypatch.setattr(plan.os, "sysconf", lambda name: {"SC_PHYS_PAGES": 1000, "SC_PAGE_SIZE": 4096}[name])
    assert available_memory(cpu, str(tmp_path / "missing")) == 1000 * 4096 // 2
    meminfo.write_text("MemTotal: 1 kB\n")  # no MemAvailable (old kernels)
    assert available_memory(cpu, str(meminfo)) == 1000 * 4096 // 2

    def no_sysconf(name: str) -> int:
        raise ValueError(name)

    monkeypatch.setattr(plan.os, "sysconf", no_sysconf)
    assert available_memory(cpu, str(tmp_path / "missing")) == plan.FALLBACK_MEMORY
    assert available_memory(cpu) > 0  # this machine's


# --------------------------------------------------------------------------- #
# Through the API and the CLI
# --------------------------------------------------------------------------- #


class Counting(TiledObjective):
    made = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        Counting.made += 1


def run(options: dict[str, Any], masks: bool = False) -> torch.Tensor:
    content = smooth_rgb(64, 48, seed=1)
    styles = [random_rgb(40, 40, seed=2), random_rgb(44, 36, seed=3)]
    extra: dict[str, Any] = {}
    if masks:
        left = random_rgb(64, 48, seed=4).convert("L").point(lambda v: 255 if v > 127 else 0)
        extra = {"style_masks": [left, left.point(lambda v: 255 - v)], "content_mask": left}
    config = make_config(size=64, iterations=3, seed=5, device="cpu", precision="fp32", **FAST_LAYERS, **options)
    result = Stylizer(device="cpu").run(content, styles, config, **extra)
    assert result.tensor is not None
    return result.tensor


@pytest.mark.parametrize(
    "options",
    [{}, {"preserve_color": "luminance", "style_loss": "meancov"}, {"pyramid": True, "min_size": 32}],
    ids=["masks", "luminance, meancov", "coarse to fine"],
)
def test_forced_tiles_in_a_run_give_the_untiled_picture(
    fake_bundled: FakeBundled, monkeypatch: pytest.MonkeyPatch, options: dict[str, Any]
) -> None:
    monkeypatch.setattr("artstyle.api.TiledObjective", Counting)
    Counting.made = 0
    untiled = run({**options, "pyramid": options.get("pyramid", False)}, masks=True)
    assert Counting.made == 0
    tiled = run({**options, "pyramid": options.get("pyramid", False), "tile_size": 32}, masks=True)
    assert Counting.made >= 1
    assert float((tiled - untiled).abs().max()) < 1e-3


def test_a_tile_as_large_as_the_picture_changes_nothing(fake_bundled: FakeBundled) -> None:
    assert torch.equal(run({"tile_size": 64, "pyramid": False}), run({"pyramid": False}))


def test_little_memory_tiles_automatically(fake_bundled: FakeBundled, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("artstyle.api.TiledObjective", Counting)
    Counting.made = 0
    untiled = run({"pyramid": False})
    assert Counting.made == 0
    monkeypatch.setattr("artstyle.api.available_memory", lambda device: 4 << 20)  # 4 MiB: tiles of some 28 px
    tiled = run({"pyramid": False})
    assert Counting.made == 1
    assert float((tiled - untiled).abs().max()) < 1e-3


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10", "--tile-size: expected 0 (automatic) or at least 176 px with layers down to relu5_1, got 10"),
        ("-5", "--tile-size: expected a whole number of at least 0, got -5"),
        ("big", "--tile-size: expected a whole number, got 'big'"),
    ],
)
def test_bad_tile_sizes_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    code = cli.main(["content.png", "style.png", "-o", str(tmp_path / "out.png"), "--tile-size", value])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [f"artstyle: error: {message}"]
    assert list(tmp_path.iterdir()) == []


def test_the_smallest_tile_depends_on_the_layers() -> None:
    assert Config(tile_size=176).tile_size == 176
    assert Config(tile_size=14, **FAST_LAYERS).tile_size == 14  # relu2_2: 6 px of context on a 2-px grid
    with pytest.raises(ConfigError, match="at least 14 px with layers down to relu2_2, got 13"):
        Config(tile_size=13, **FAST_LAYERS)


def test_out_of_memory_suggests_tiles() -> None:
    def message(**options: Any) -> str:
        job = Job("photo.jpg", ["painting.jpg"], "out.png", Config(**options))
        return out_of_memory_message(job, (4000, 3000), "cpu")

    assert message(size=4096).endswith("(L-BFGS keeps 100 steps of history), or tile_size=512")
    assert message(size=4096, tile_size=1024).endswith(", or a smaller tile_size (now 1024)")
    with spelled(FLAGS):  # as the command line says it
        assert message(size=4096).endswith("(L-BFGS keeps 100 steps of history), or --tile-size 512")
    assert "tile" not in message(size=4096, tile_size=512)  # as small as it is worth
    assert "tile" not in message(size=384)
