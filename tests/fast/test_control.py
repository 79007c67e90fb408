"""Fast tests of the perceptual controls end to end: the coarse-to-fine schedule, style
masks, the content mask, colour preservation and the style losses, through the engine,
the API and the CLI (random weights, tiny images)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from _support import FakeBundled, random_rgb, smooth_rgb
from PIL import Image

from artstyle import cli
from artstyle.api import Stylizer, stylize
from artstyle.color import rgb_to_yiq
from artstyle.engine import Objective, Progress, Stage, optimize_stages, plan_stages, resize_image, stage_sizes
from artstyle.errors import ConfigError
from artstyle.features.vgg import VGG19Features
from artstyle.imageio import image_to_tensor, read_image, read_metadata

FAST = {"content_layers": "relu2_2", "style_layers": "relu1_1,relu2_1"}
FAST_FLAGS = ["--content-layers", "relu2_2", "--style-layers", "relu1_1,relu2_1"]
STYLE_LAYERS = (("relu1_1", 1.0), ("relu2_1", 1.0))
CONTENT_LAYERS = (("relu2_2", 1.0),)


# --------------------------------------------------------------------------- #
# The schedule
# --------------------------------------------------------------------------- #


def test_stage_sizes_from_coarse_to_fine() -> None:
    assert stage_sizes(384, 512, min_size=128, factor=2) == [(96, 128), (192, 256), (384, 512)]
    assert stage_sizes(384, 512, min_size=129, factor=2) == [(192, 256), (384, 512)]
    assert stage_sizes(100, 100, min_size=128, factor=2) == [(100, 100)]
    assert stage_sizes(384, 512, min_size=128, factor=1) == [(384, 512)]
    # The short side must stay usable by the network.
    assert stage_sizes(64, 512, min_size=128, factor=2, min_side=20) == [(32, 256), (64, 512)]


def test_plan_stages_gives_every_scale_the_iterations() -> None:
    stages = plan_stages(384, 512, iterations=5, min_size=128, factor=2)
    assert stages == [Stage(96, 128, 5), Stage(192, 256, 5), Stage(384, 512, 5)]
    assert plan_stages(384, 512, iterations=5, min_size=128, factor=1) == [Stage(384, 512, 5)]


def test_plan_stages_spends_most_iterations_at_the_coarse_scales() -> None:
    stages = plan_stages(384, 512, iterations=30, coarse_iterations=100, min_size=128, factor=2)
    assert [s.iterations for s in stages] == [100, 55, 30]  # geometric: 100 * 0.3 ** (i / 2)
    assert [
        s.iterations for s in plan_stages(96, 128, iterations=30, coarse_iterations=100, min_size=64, factor=2)
    ] == [
        100,
        30,
    ]
    assert plan_stages(384, 512, iterations=30, coarse_iterations=100, min_size=128, factor=1) == [Stage(384, 512, 30)]


# --------------------------------------------------------------------------- #
# The engine
# --------------------------------------------------------------------------- #


def objective(
    net: VGG19Features,
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    **options: object,
) -> Objective:
    return Objective(
        net,
        content,
        styles,
        content_layers=CONTENT_LAYERS,
        style_layers=STYLE_LAYERS,
        content_weight=1.0,
        style_weight=100.0,
        tv_weight=1.0,
        **options,  # type: ignore[arg-type]
    )


def test_optimize_stages_counts_steps_over_all_scales(shallow_vgg: VGG19Features) -> None:
    content = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(1))
    style = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    stages = plan_stages(32, 48, iterations=4, min_size=12, factor=2)
    assert [(s.height, s.width) for s in stages] == [(8, 12), (16, 24), (32, 48)]
    seen: list[Progress] = []

    def objective_for(index: int, stage: Stage) -> Objective:
        size = (stage.height, stage.width)
        return objective(shallow_vgg, torch.nn.functional.interpolate(content, size=size, mode="area"), [style])

    result = optimize_stages(stages, objective_for, content, callback=seen.append)
    assert [p.step for p in seen] == list(range(1, 13))
    assert {p.iterations for p in seen} == {12}  # counted over all three scales
    assert [p.scale for p in seen] == [1] * stages[0].iterations + [2] * stages[1].iterations + [3] * stages[
        2
    ].iterations
    assert {p.scales for p in seen} == {3}
    assert [tuple(p.image.shape[2:]) for p in seen][-1] == (32, 48)
    assert tuple(seen[0].image.shape[2:]) == (8, 12)
    assert result.shape == (1, 3, 32, 48)


def test_a_single_mask_covering_everything_is_the_unmasked_loss(
    shallow_vgg: VGG19Features, tiny_tensors: tuple[torch.Tensor, torch.Tensor]
) -> None:
    content, style = tiny_tensors
    image = content.flip(-1)
    plain = objective(shallow_vgg, content, [style])
    masked = objective(shallow_vgg, content, [style], style_masks=[torch.ones(1, 1, 32, 32)])
    with torch.no_grad():
        torch.testing.assert_close(masked(image)[0], plain(image)[0])


def test_regions_weigh_by_their_area_and_black_masks_switch_style_off(
    shallow_vgg: VGG19Features, tiny_tensors: tuple[torch.Tensor, torch.Tensor]
) -> None:
    content, style = tiny_tensors
    left = torch.zeros(1, 1, 32, 32)
    left[..., :16] = 1
    halves = objective(shallow_vgg, content, [style, style.flip(-1)], style_masks=[left, 1 - left])
    assert halves.region_weights["relu1_1"] == pytest.approx([0.5, 0.5])
    off = objective(shallow_vgg, content, [style], style_masks=[torch.zeros(1, 1, 32, 32)])
    with torch.no_grad():
        assert float(off(content)[1]["style"]) == 0.0
    overlapping = objective(shallow_vgg, content, [style, style], style_masks=[torch.ones(1, 1, 32, 32)] * 2)
    assert overlapping.region_weights["relu1_1"] == pytest.approx([0.5, 0.5])  # each takes half a pixel


def test_mask_and_blend_counts_are_checked(
    shallow_vgg: VGG19Features, tiny_tensors: tuple[torch.Tensor, torch.Tensor]
) -> None:
    content, style = tiny_tensors
    with pytest.raises(ValueError, match="2 style masks for 1 style images"):
        objective(shallow_vgg, content, [style], style_masks=[torch.ones(1, 1, 32, 32)] * 2)


def test_a_one_channel_image_is_optimised_as_luminance(
    shallow_vgg: VGG19Features, tiny_tensors: tuple[torch.Tensor, torch.Tensor]
) -> None:
    content, style = (t.mean(dim=1, keepdim=True) for t in tiny_tensors)
    obj = objective(shallow_vgg, content, [style], style_loss="meancov")
    seen: list[Progress] = []
    result = optimize_stages([Stage(32, 32, 3)], lambda i, s: obj, content, callback=seen.append)
    assert result.shape == (1, 1, 32, 32)
    assert seen[-1].image.shape == (1, 3, 32, 32)  # shown as RGB


# --------------------------------------------------------------------------- #
# The API and the CLI
# --------------------------------------------------------------------------- #


def textured(colour: tuple[int, int, int], seed: int, size: int = 40) -> Image.Image:
    """A textured patch around one colour."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-40, 41, (size, size, 1))
    return Image.fromarray(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8), "RGB")


def test_each_half_takes_the_colour_of_its_own_style(fake_bundled: FakeBundled) -> None:
    content = Image.new("RGB", (48, 32), (128, 128, 128))
    left = Image.new("L", (48, 32), 0)
    left.paste(255, (0, 0, 24, 32))
    right = Image.eval(left, lambda v: 255 - v)
    red, blue = textured((220, 40, 40), 1), textured((40, 40, 220), 2)
    picture = stylize(
        content,
        [red, blue],
        style_masks=[left, right],
        size=48,
        iterations=40,
        seed=0,
        pyramid=False,
        content_weight=0.1,
        **FAST,
    )
    pixels = np.asarray(picture, dtype=np.float64)
    left_mean, right_mean = pixels[:, :20].mean(axis=(0, 1)), pixels[:, 28:].mean(axis=(0, 1))
    assert left_mean[0] - left_mean[2] > 20  # red ahead of blue on the left
    assert right_mean[2] - right_mean[0] > 20  # blue ahead of red on the right


def test_luminance_transfer_keeps_the_content_colours(fake_bundled: FakeBundled) -> None:
    content = smooth_rgb(40, 32, seed=3)
    picture = stylize(content, random_rgb(40, 40, seed=4), preserve_color="luminance", size=40, iterations=4, **FAST)
    out, original = image_to_tensor(picture), image_to_tensor(content)
    chroma_out, chroma_in = rgb_to_yiq(out)[:, 1:], rgb_to_yiq(original)[:, 1:]
    assert float((chroma_out - chroma_in).abs().mean()) < 0.01
    assert float((rgb_to_yiq(out)[:, :1] - rgb_to_yiq(original)[:, :1]).abs().mean()) > 0.005  # restyled


def test_everything_combines_at_a_tiny_size(fake_bundled: FakeBundled) -> None:
    content = smooth_rgb(64, 48, seed=5)
    styles = [random_rgb(40, 40, seed=6), random_rgb(30, 50, seed=7)]
    left = Image.new("L", (64, 48), 0)
    left.paste(255, (0, 0, 40, 48))  # overlaps the right mask in the middle
    right = Image.new("L", (20, 15), 0)
    right.paste(255, (8, 0, 20, 15))  # another size: stretched to the content's
    seen: list[Progress] = []
    for color in ("luminance", "histogram"):
        for loss in ("gram", "meancov"):
            picture = stylize(
                content,
                styles,
                style_masks=[left, right],
                content_mask=right,
                style_weights=[2, 1],
                preserve_color=color,
                style_loss=loss,
                size=64,
                min_size=32,
                iterations=3,
                coarse_iterations=3,
                style_size=48,
                progress=seen.append,
                **FAST,
            )
            assert picture.size == (64, 48)
    assert {p.scales for p in seen} == {2}


def test_style_size_sets_the_style_resolution(fake_bundled: FakeBundled, monkeypatch: pytest.MonkeyPatch) -> None:
    from artstyle import api

    sizes: list[tuple[int, ...]] = []
    real = api.Objective

    def spy(net: VGG19Features, content: torch.Tensor, styles: list[torch.Tensor], **kw: object) -> Objective:
        sizes.append(tuple(styles[0].shape[2:]))
        return real(net, content, styles, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(api, "Objective", spy)
    stylize(
        smooth_rgb(64, 48),
        random_rgb(80, 40),
        size=64,
        style_size=40,
        min_size=32,
        iterations=2,
        coarse_iterations=2,
        **FAST,
    )
    assert sizes == [(10, 20), (20, 40)]  # half the size at the half-size scale
    sizes.clear()
    stylize(smooth_rgb(64, 48), random_rgb(80, 40), size=64, style_scale=0.5, pyramid=False, iterations=1, **FAST)
    assert sizes == [(16, 32)]


def test_mask_count_and_bad_options_are_config_errors(fake_bundled: FakeBundled) -> None:
    content, style = smooth_rgb(40, 32), random_rgb(40, 40)
    with pytest.raises(ConfigError, match=r"^style_masks: 2 masks for 1 style images"):
        stylize(content, style, style_masks=[content, content], size=40, iterations=1, **FAST)
    for options, keyword in (
        ({"preserve_color": "colour"}, "^preserve_color: "),
        ({"style_loss": "l2"}, "^style_loss: "),
        ({"scale_factor": 1.0}, "^scale_factor: "),
        ({"min_size": 0}, "^min_size: "),
        ({"style_size": -3}, "^style_size: "),
        ({"pyramid": "maybe"}, "^pyramid: "),
    ):
        with pytest.raises(ConfigError, match=keyword):
            stylize(content, style, **options)


def cli_files(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / f"{name}.png" for name in ("content", "a", "b", "mask_a", "mask_b")}
    smooth_rgb(48, 40, seed=1).save(paths["content"])
    random_rgb(40, 40, seed=2).save(paths["a"])
    random_rgb(40, 40, seed=3).save(paths["b"])
    mask = Image.new("L", (48, 40), 0)
    mask.paste(255, (0, 0, 24, 40))
    mask.save(paths["mask_a"])
    Image.eval(mask, lambda v: 255 - v).save(paths["mask_b"])
    return paths


def test_cli_controls_and_their_metadata(
    fake_bundled: FakeBundled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = cli_files(tmp_path)
    out = tmp_path / "out.png"
    argv = [
        f["content"], f["a"], f["b"], "-o", out, "-q", "--size", "48", "--iterations", "4", "--min-size", "24",
        "--coarse-iterations", "4", "--style-masks", f["mask_a"], f["mask_b"], "--content-mask", f["mask_a"],
        "--preserve-color", "histogram", "--style-loss", "meancov", "--style-size", "32", *FAST_FLAGS,
    ]  # fmt: skip
    assert cli.main([str(a) for a in argv]) == 0
    meta = read_metadata(out)
    assert meta is not None
    params, inputs = meta["parameters"], meta["inputs"]
    assert params["preserve_color"] == "histogram" and params["style_loss"] == "meancov"  # type: ignore[index]
    assert params["pyramid"] is True and params["style_size"] == 32  # type: ignore[index]
    assert [m["file"] for m in inputs["style_masks"]] == ["mask_a.png", "mask_b.png"]  # type: ignore[index]
    assert inputs["content_mask"]["file"] == "mask_a.png"  # type: ignore[index]
    no_pyramid = tmp_path / "flat.png"
    argv = [f["content"], f["a"], "-o", no_pyramid, "-q", "--size", "48", "--iterations", "2", "--no-pyramid"]
    assert cli.main([str(a) for a in [*argv, *FAST_FLAGS]]) == 0
    assert read_metadata(no_pyramid)["parameters"]["pyramid"] is False  # type: ignore[index]


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--style-masks", "{mask_a}", "{mask_b}"], 2, "--style-masks: 2 masks for 1 style images"),
        (["--style-masks", "{missing}"], 1, "missing.png"),
        (["--content-mask", "{content}.txt"], 1, "content.png.txt"),
        (["--preserve-color", "yes"], 2, "--preserve-color"),
        (["--style-loss", "wasserstein"], 2, "--style-loss"),
    ],
)
def test_cli_bad_control_input_is_one_line(
    fake_bundled: FakeBundled,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    code: int,
    message: str,
) -> None:
    f = cli_files(tmp_path)
    (tmp_path / "content.png.txt").write_text("not an image")
    names = {**{k: str(v) for k, v in f.items()}, "missing": str(tmp_path / "missing.png")}
    out = tmp_path / "out.png"
    argv = [str(f["content"]), str(f["a"]), "-o", str(out), "-q", "--size", "48", "--iterations", "1"]
    assert cli.main([*argv, *(e.format(**names) for e in extra), *FAST_FLAGS]) == code
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_a_stylizer_runs_the_pyramid_by_default(fake_bundled: FakeBundled) -> None:
    seen: list[Progress] = []
    Stylizer().stylize(
        smooth_rgb(64, 48), random_rgb(40, 40), size=64, min_size=16, iterations=2, progress=seen.append, **FAST
    )
    # 50 iterations at the coarsest scale by default, 2 (--iterations) at the full size, 10 between.
    assert [p.scale for p in seen] == [1] * 50 + [2] * 10 + [3] * 2
    assert [tuple(seen[i].image.shape[2:]) for i in (0, 50, 60)] == [(12, 16), (24, 32), (48, 64)]


def test_no_iterations_at_the_full_size_upsamples_the_previous_scale(fake_bundled: FakeBundled) -> None:
    seen: list[Progress] = []
    content = smooth_rgb(64, 48)
    picture = Stylizer().stylize(
        content,
        random_rgb(40, 40),
        size=64,
        min_size=32,
        coarse_iterations=3,
        iterations=0,
        progress=seen.append,
        **FAST,
    )
    assert [p.scale for p in seen] == [1, 1, 1] and {p.scales for p in seen} == {2}
    # The picture is the coarse result upsampled, plus the photo's detail between the two sizes.
    full = image_to_tensor(content)
    detail = full - resize_image(resize_image(full, 24, 32), 48, 64)
    expected = (resize_image(seen[-1].image, 48, 64) + detail).clamp(0, 1)
    assert picture.size == (64, 48)
    assert torch.allclose(image_to_tensor(picture), expected, atol=1.5 / 255)


@pytest.mark.parametrize("options", [{"pyramid": False}, {"min_size": 64}])
def test_no_iterations_on_a_single_scale_runs_the_coarse_iterations_there(
    fake_bundled: FakeBundled, options: dict[str, object]
) -> None:
    # One scale is the coarsest too: with nothing to upsample, it gets the coarse iterations.
    seen: list[Progress] = []
    picture = stylize(
        smooth_rgb(64, 48), random_rgb(40, 40), size=64, iterations=0, coarse_iterations=3, progress=seen.append,
        **options, **FAST,
    )  # fmt: skip
    assert picture.size == (64, 48)
    assert [(p.step, p.iterations, p.scales) for p in seen] == [(1, 3, 1), (2, 3, 1), (3, 3, 1)]


def test_cli_draft_preset_and_explicit_options(
    fake_bundled: FakeBundled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = cli_files(tmp_path)
    out = tmp_path / "draft.png"
    argv = [f["content"], f["a"], "-o", out, "-q", "--preset", "draft", "--size", "48", "--min-size", "24", *FAST_FLAGS]
    assert cli.main([str(a) for a in argv]) == 0
    params = read_metadata(out)["parameters"]  # type: ignore[index]
    assert (params["iterations"], params["coarse_iterations"], params["min_size"]) == (0, 30, 24)
    # One scale at 48 px (under twice the draft's 128 px): 30 iterations there, no error.
    one = tmp_path / "one.png"
    assert cli.main([str(a) for a in [*argv[:3], one, "-q", "--preset", "draft", "--size", "48", *FAST_FLAGS]]) == 0
    assert read_image(one).size == (48, 40) and capsys.readouterr().err == ""


def test_the_palette_term_brings_the_picture_s_colours_towards_the_painting_s(fake_bundled: FakeBundled) -> None:
    from artstyle.losses import palette_directions, palette_loss, palette_quantiles

    content, painting = smooth_rgb(48, 40, seed=4), random_rgb(40, 40, seed=5)
    seen: dict[float, Progress] = {}
    pictures = {}
    for weight in (0.0, 4.0):
        pictures[weight] = stylize(
            content, painting, size=48, iterations=12, pyramid=False, seed=1, palette_weight=weight,
            progress=lambda p, w=weight: seen.__setitem__(w, p), **FAST,
        )  # fmt: skip
    directions = palette_directions()
    target = image_to_tensor(painting.resize((48, 40)))
    quantiles = palette_quantiles(target[0].reshape(3, -1), torch.ones(48 * 40), directions, 48 * 40)
    distance = {w: float(palette_loss(image_to_tensor(p), quantiles, directions)) for w, p in pictures.items()}
    assert distance[4.0] < 0.7 * distance[0.0]
    assert "palette" in seen[4.0].losses and "palette" not in seen[0.0].losses
