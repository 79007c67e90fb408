"""Fast end-to-end tests of the Python API (artstyle.api) and the command line (artstyle.cli).

``load_weights("bundled")`` returns random weights (the ``fake_bundled`` fixture), the
images are 32-48 px and runs are two or three iterations long, so every run takes a
fraction of a second. Exit codes: 0 success, 1 a failed run (unreadable input,
unwritable output, weights), 2 a bad command line or option value, 130 Ctrl-C.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from _support import FakeBundled, random_rgb, smooth_rgb
from PIL import Image

from artstyle import api, cli
from artstyle.api import Stylizer, stylize
from artstyle.config import Config, flag
from artstyle.engine import Progress, optimize_stages
from artstyle.errors import ConfigError, ImageTooSmallError
from artstyle.imageio import read_metadata, tensor_to_image

# Shallow layers keep most runs cheap; one test per front end uses the defaults.
FAST_LAYERS = {"content_layers": "relu2_2", "style_layers": "relu1_1,relu2_1"}
FAST_FLAGS = ["--content-layers", "relu2_2", "--style-layers", "relu1_1,relu2_1"]

CaptureFixture = pytest.CaptureFixture[str]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A 48 x 40 content PNG, a 40 x 40 style PNG and a second 36 x 44 style JPEG."""
    content, style, style2 = tmp_path / "content.png", tmp_path / "style.png", tmp_path / "style2.jpg"
    smooth_rgb(48, 40, seed=1).save(content)
    random_rgb(40, 40, seed=2).save(style)
    random_rgb(36, 44, seed=3).save(style2, quality=90)
    return {"content": content, "style": style, "style2": style2}


def pixels(image: Image.Image) -> np.ndarray:
    assert image.mode == "RGB"
    return np.asarray(image)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- #
# The Python API
# --------------------------------------------------------------------------- #


def as_kind(path: Path, kind: str) -> Any:
    if kind == "path":
        return str(path)
    if kind == "pathlib":
        return path
    with Image.open(path) as image:
        image.load()
        return image if kind == "pil" else np.asarray(image)


@pytest.mark.parametrize(("content_kind", "style_kind"), [("path", "pil"), ("pil", "numpy"), ("numpy", "pathlib")])
def test_stylize_accepts_paths_pil_images_and_arrays(
    fake_bundled: FakeBundled, files: dict[str, Path], content_kind: str, style_kind: str
) -> None:
    picture = stylize(
        as_kind(files["content"], content_kind),
        as_kind(files["style"], style_kind),
        size=32,
        iterations=2,
        device="cpu",
        seed=0,
        **FAST_LAYERS,
    )
    assert isinstance(picture, Image.Image)
    assert picture.mode == "RGB"
    assert picture.size == (32, 27)  # 48 x 40 scaled to a long side of 32
    assert fake_bundled.calls == 1


def test_stylize_with_the_default_layers_and_a_portrait_image(fake_bundled: FakeBundled, tmp_path: Path) -> None:
    portrait = smooth_rgb(30, 50, seed=4)
    picture = stylize(portrait, [random_rgb(40, 40)], size=40, iterations=1, device="cpu", seed=1)
    assert picture.size == (24, 40)


def test_stylize_changes_the_picture_and_is_reproducible_with_a_seed(
    fake_bundled: FakeBundled, files: dict[str, Path]
) -> None:
    options: dict[str, Any] = {"size": 32, "iterations": 2, "device": "cpu", "init": "noise", **FAST_LAYERS}
    first = stylize(files["content"], files["style"], seed=3, **options)
    again = stylize(files["content"], files["style"], seed=3, **options)
    other = stylize(files["content"], files["style"], seed=4, **options)
    np.testing.assert_array_equal(pixels(first), pixels(again))
    assert not np.array_equal(pixels(first), pixels(other))


def test_stylize_reports_progress(fake_bundled: FakeBundled, files: dict[str, Path]) -> None:
    seen: list[Progress] = []
    stylize(files["content"], files["style"], size=32, iterations=3, device="cpu", progress=seen.append, **FAST_LAYERS)
    assert [p.step for p in seen] == [1, 2, 3]
    assert seen[0].image.shape == (1, 3, 27, 32)


def test_an_unknown_keyword_is_a_config_error(fake_bundled: FakeBundled, files: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="did you mean 'iterations'"):
        stylize(files["content"], files["style"], iteration=3)
    assert fake_bundled.calls == 0


class CountingVGG:
    """Wraps the VGG19Features class to count the networks built."""

    def __init__(self, real: Any) -> None:
        self.real, self.built = real, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.built += 1
        return self.real(*args, **kwargs)


def test_a_stylizer_loads_the_weights_once_and_reuses_its_network(
    fake_bundled: FakeBundled, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = CountingVGG(api.VGG19Features)
    monkeypatch.setattr(api, "VGG19Features", counter)
    stylizer = Stylizer(device="cpu")
    assert fake_bundled.calls == 0  # loaded lazily
    for seed in (1, 2):
        stylizer.stylize(files["content"], files["style"], size=32, iterations=1, seed=seed, **FAST_LAYERS)
    assert (fake_bundled.calls, counter.built) == (1, 1)
    assert stylizer.network(["relu2_1", "relu2_2", "relu1_1"], "max") is stylizer.network(
        ["relu1_1", "relu2_1", "relu2_2"], "max"
    )
    assert counter.built == 1
    stylizer.stylize(files["content"], files["style"], size=32, iterations=1, pooling="avg", **FAST_LAYERS)
    assert (fake_bundled.calls, counter.built) == (1, 2)


def test_a_style_weights_count_mismatch_is_a_config_error(fake_bundled: FakeBundled, files: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match=r"^style_weights: 3 weights for 2 style images"):
        stylize(files["content"], [files["style"], files["style2"]], style_weights=[1, 2, 3], size=32, iterations=1)
    assert fake_bundled.calls == 0  # rejected before any work


def test_several_styles_with_blend_weights(fake_bundled: FakeBundled, files: dict[str, Path]) -> None:
    picture = stylize(
        files["content"], [files["style"], files["style2"]], style_weights=[1, 3], size=32, iterations=1, **FAST_LAYERS
    )
    assert picture.size == (32, 27)


def test_no_style_image_is_a_config_error(fake_bundled: FakeBundled, files: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="at least one style image"):
        stylize(files["content"], [], size=32, iterations=1)


def test_a_run_with_other_weights_than_the_stylizer_is_a_config_error(files: dict[str, Path]) -> None:
    stylizer = Stylizer(device="cpu")
    with pytest.raises(ConfigError, match=r"^weights: this Stylizer was made with weights='bundled'"):
        stylizer.run(files["content"], files["style"], Config(weights="torchvision"))


def test_a_bad_device_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^device: expected one of"):
        Stylizer(device="tpu")


def test_too_small_after_resizing_names_the_image(fake_bundled: FakeBundled) -> None:
    strip = smooth_rgb(64, 4)
    with pytest.raises(ImageTooSmallError, match=r"content image \(after resizing\) is 32x2 px.*at least 16 px"):
        stylize(strip, random_rgb(32, 32), size=32, iterations=1)


def test_the_result_records_its_seed_and_metadata(fake_bundled: FakeBundled, files: dict[str, Path]) -> None:
    config = Config(size=32, iterations=1, device="cpu", **FAST_LAYERS)  # no seed: a fresh one
    result = Stylizer(device="cpu").run(files["content"], files["style"], config)
    assert isinstance(result.seed, int) and 0 <= result.seed < 2**31
    meta = result.metadata({"content": "x"})
    assert meta["parameters"]["seed"] == result.seed
    assert meta["parameters"]["size"] == 32
    assert meta["device"] == "cpu" and meta["inputs"] == {"content": "x"}
    json.dumps(meta)
    again = Stylizer(device="cpu").run(files["content"], files["style"], config.replace(seed=result.seed))
    np.testing.assert_array_equal(pixels(again.image), pixels(result.image))


def test_init_from_an_image_file(fake_bundled: FakeBundled, files: dict[str, Path]) -> None:
    seen: list[Progress] = []
    options: dict[str, Any] = {"size": 32, "iterations": 1, "progress": seen.append, **FAST_LAYERS}
    stylize(files["content"], files["style"], init=str(files["style2"]), **options)
    assert seen[0].image.shape == (1, 3, 27, 32)


# --------------------------------------------------------------------------- #
# The command line: successful runs
# --------------------------------------------------------------------------- #


def run_cli(argv: Sequence[str | Path], capsys: CaptureFixture) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def base_args(files: dict[str, Path], output: Path, *extra: str | Path) -> list[str | Path]:
    options = ["--size", "32", "--iterations", "2", "-q", "--device", "cpu"]
    return [files["content"], files["style"], "-o", output, *options, *extra]


def test_cli_writes_a_png_with_its_parameters_and_inputs(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path, capsys: CaptureFixture
) -> None:
    output = tmp_path / "out.png"
    code, out, err = run_cli(base_args(files, output), capsys)
    assert (code, out, err) == (0, "", "")
    with Image.open(output) as image:
        assert image.format == "PNG" and image.size == (32, 27)
    meta = read_metadata(output)
    assert meta is not None
    parameters = meta["parameters"]
    assert isinstance(parameters, dict)
    assert parameters["size"] == 32 and parameters["iterations"] == 2
    assert parameters["style_layers"] == "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1:0.25"
    assert isinstance(parameters["seed"], int)
    assert meta["inputs"] == {
        "content": {"file": "content.png", "sha256": sha256(files["content"])},
        "styles": [{"file": "style.png", "sha256": sha256(files["style"])}],
    }
    assert meta["device"] == "cpu"
    assert not output.with_name("out.png.json").exists()
    assert fake_bundled.calls == 1


def test_cli_recorded_seed_reproduces_the_picture(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path, capsys: CaptureFixture
) -> None:
    first, second = tmp_path / "first.png", tmp_path / "second.png"
    assert run_cli([*base_args(files, first, "--init", "noise"), *FAST_FLAGS], capsys)[0] == 0
    meta = read_metadata(first)
    assert meta is not None
    seed = meta["parameters"]["seed"]  # type: ignore[index]
    assert run_cli([*base_args(files, second, "--init", "noise", "--seed", str(seed)), *FAST_FLAGS], capsys)[0] == 0
    with Image.open(first) as a, Image.open(second) as b:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert read_metadata(second)["parameters"]["seed"] == seed  # type: ignore[index]


def test_cli_jpeg_output_gets_a_json_sidecar(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path, capsys: CaptureFixture
) -> None:
    output = tmp_path / "out.jpg"
    argv = [*base_args(files, output, "--seed", "9"), *FAST_FLAGS, "--style-weights", "1", "3"]
    argv.insert(2, files["style2"])  # two styles
    code, _, err = run_cli(argv, capsys)
    assert (code, err) == (0, "")
    with Image.open(output) as image:
        assert image.format == "JPEG"
    sidecar = tmp_path / "out.jpg.json"
    meta = json.loads(sidecar.read_text(encoding="utf-8"))
    assert meta["parameters"]["seed"] == 9
    assert meta["parameters"]["style_weights"] == [1.0, 3.0]
    assert [s["file"] for s in meta["inputs"]["styles"]] == ["style.png", "style2.jpg"]
    assert read_metadata(output) == meta


def test_cli_save_every_writes_intermediate_images(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path, capsys: CaptureFixture
) -> None:
    output = tmp_path / "out.png"
    argv = [*base_args(files, output, "--save-every", "1"), *FAST_FLAGS]
    argv[argv.index("--iterations") + 1] = "3"
    assert run_cli(argv, capsys)[0] == 0
    written = sorted(p.name for p in tmp_path.glob("out*"))
    assert written == ["out.00001.png", "out.00002.png", "out.png"]  # the last step is the output itself
    for name in written:
        with Image.open(tmp_path / name) as image:
            assert image.size == (32, 27)


def test_cli_without_quiet_says_what_it_wrote(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path, capsys: CaptureFixture
) -> None:
    output = tmp_path / "out.png"
    argv = [a for a in base_args(files, output, "--seed", "5") if a != "-q"]
    code, out, err = run_cli([*argv, *FAST_FLAGS], capsys)
    assert code == 0 and out == ""
    assert f"artstyle: wrote {output} (32x27, seed 5," in err


def test_cli_version_and_help(capsys: CaptureFixture) -> None:
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.strip() == "artstyle 0.2.0"
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0 and "--content-weight" in out


def test_every_config_option_is_a_cli_flag() -> None:
    parser = cli.build_parser()
    options = {s for action in parser._actions for s in action.option_strings}
    for name in Config.__dataclass_fields__:
        assert flag(name) in options


# --------------------------------------------------------------------------- #
# The command line: bad input
# --------------------------------------------------------------------------- #

Case = Callable[[dict[str, Path], Path], list[str | Path]]


def with_flags(*extra: str) -> Case:
    def build(files: dict[str, Path], output: Path) -> list[str | Path]:
        return base_args(files, output, *extra)

    return build


def make_text_jpg(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    path.write_text("I am not a JPEG\n")
    return path


def make_truncated_jpg(tmp_path: Path) -> Path:
    path = tmp_path / "cut.jpg"
    smooth_rgb(48, 40).save(path, quality=95)
    path.write_bytes(path.read_bytes()[:400])
    return path


def make_directory(tmp_path: Path) -> Path:
    path = tmp_path / "folder.png"
    path.mkdir()
    return path


def make_missing(tmp_path: Path) -> Path:
    return tmp_path / "missing.png"


def content_from(make: Callable[[Path], Path]) -> Callable[[dict[str, Path], Path], list[str | Path]]:
    def build(files: dict[str, Path], output: Path) -> list[str | Path]:
        return base_args({**files, "content": make(output.parent)}, output)

    return build


def output_named(name: str) -> Callable[[dict[str, Path], Path], list[str | Path]]:
    def build(files: dict[str, Path], output: Path) -> list[str | Path]:
        return base_args(files, output.parent / name)

    return build


def output_under_a_file(files: dict[str, Path], output: Path) -> list[str | Path]:
    blocker = output.parent / "not_a_dir.txt"
    blocker.write_text("x")
    return base_args(files, blocker / "out.png")


def output_is_a_directory(files: dict[str, Path], output: Path) -> list[str | Path]:
    folder = output.parent / "result.png"
    folder.mkdir()
    return base_args(files, folder)


def no_output(files: dict[str, Path], output: Path) -> list[str | Path]:
    return [files["content"], files["style"], "-q"]


BAD_INPUTS = [
    ("missing content file", content_from(make_missing), 1, "missing.png': no such file"),
    ("text file named .jpg", content_from(make_text_jpg), 1, "photo.jpg': not an image file"),
    ("truncated JPEG", content_from(make_truncated_jpg), 1, "cut.jpg': file is truncated or corrupt"),
    ("directory as content", content_from(make_directory), 1, "folder.png': is a directory"),
    ("unknown layer", with_flags("--style-layers", "relu1_1,relu4_3x"), 2, "did you mean 'relu4_3'"),
    ("negative weight", with_flags("--content-weight", "-1"), 2, "--content-weight: expected a finite number"),
    ("NaN weight", with_flags("--style-weight", "nan"), 2, "--style-weight: expected a finite number"),
    ("infinite layer weight", with_flags("--style-layers", "relu1_1:inf"), 2, "--style-layers relu1_1: "),
    ("size 0", with_flags("--size", "0"), 2, "--size: expected a whole number of at least 1, got 0"),
    ("size not a number", with_flags("--size", "big"), 2, "--size: expected a whole number, got 'big'"),
    ("negative save-every", with_flags("--save-every", "-1"), 2, "--save-every: "),
    ("unknown optimizer", with_flags("--optimizer", "sgd"), 2, "argument --optimizer: invalid choice: 'sgd'"),
    ("style weights count", with_flags("--style-weights", "1", "2"), 2, "--style-weights: 2 weights for 1 style"),
    ("output .gif", output_named("out.gif"), 1, "unsupported extension '.gif'"),
    ("output without extension", output_named("out"), 1, "unsupported no extension"),
    ("output is a directory", output_is_a_directory, 1, "result.png': is a directory"),
    ("output parent is a file", output_under_a_file, 1, "is not a directory"),
    ("unknown option", with_flags("--frobnicate"), 2, "unrecognized arguments: --frobnicate"),
    ("no output option", no_output, 2, "the following arguments are required: -o/--output"),
    ("missing weights file", with_flags("--weights", "/nonexistent/vgg.pth"), 1, "vgg.pth': no such file"),
    ("missing init image", with_flags("--init", "nothing.png"), 1, "nothing.png': no such file"),
    ("style too small", with_flags("--style-scale", "0.1"), 1, "style image (after resizing) is 3x3 px"),
]


@pytest.mark.parametrize(("case", "code", "message"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_one_error_line_and_no_output(
    fake_bundled: FakeBundled,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: CaptureFixture,
    case: Case,
    code: int,
    message: str,
) -> None:
    output = tmp_path / "out.png"
    argv = case(files, output)
    before = set(tmp_path.rglob("*"))
    exit_code, out, err = run_cli(argv, capsys)
    assert exit_code == code, err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("artstyle: error: ")
    assert message in lines[0]
    assert "Traceback" not in err
    assert set(tmp_path.rglob("*")) == before  # nothing created: no output, no temporary file


@pytest.mark.parametrize(
    "extra",
    [("--style-layers", "relu9_9"), ("--style-scale", "0.1"), ("--weights", "/nonexistent/vgg.pth"), ("--bogus",)],
    ids=["bad option value", "too small mid-run", "bad weights", "unknown option"],
)
def test_a_failing_run_leaves_an_existing_output_untouched(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path, capsys: CaptureFixture, extra: tuple[str, ...]
) -> None:
    output = tmp_path / "out.png"
    random_rgb(20, 10, seed=8).save(output)
    original = output.read_bytes()
    code, _, err = run_cli(base_args(files, output, *extra), capsys)
    assert code in (1, 2) and err.startswith("artstyle: error: ")
    assert output.read_bytes() == original
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_an_error_during_the_run_is_one_line_even_with_the_progress_bar(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path, capsys: CaptureFixture
) -> None:
    argv = [a for a in base_args(files, tmp_path / "out.png", "--style-scale", "0.1") if a != "-q"]
    code, _, err = run_cli(argv, capsys)
    assert code == 1
    error_lines = [line for line in err.split("\n") if "artstyle: error:" in line]
    assert len(error_lines) == 1
    assert error_lines[0].startswith("artstyle: error: ")


# --------------------------------------------------------------------------- #
# The command line: Ctrl-C
# --------------------------------------------------------------------------- #


def interrupt_at(step: int, seen: list[Progress]) -> Callable[..., torch.Tensor]:
    """An ``optimize_stages`` whose run is interrupted (as by Ctrl-C) right after ``step``."""

    def interrupted_optimize(*args: Any, callback: Any = None, **kwargs: Any) -> torch.Tensor:
        def relay(progress: Progress) -> None:
            if callback is not None:
                callback(progress)
            seen.append(progress)
            if progress.step >= step:
                raise KeyboardInterrupt

        if step == 0:
            raise KeyboardInterrupt
        return optimize_stages(*args, callback=relay, **kwargs)

    return interrupted_optimize


def test_ctrl_c_writes_the_current_image_and_exits_130(
    fake_bundled: FakeBundled,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Progress] = []
    monkeypatch.setattr(api, "optimize_stages", interrupt_at(2, seen))
    output = tmp_path / "out.png"
    argv = [*base_args(files, output, "--seed", "11"), *FAST_FLAGS]
    argv[argv.index("--iterations") + 1] = "5"
    code, _, err = run_cli(argv, capsys)
    assert code == 130
    assert [p.step for p in seen] == [1, 2]
    assert err.strip() == f"artstyle: interrupted at iteration 2/5; wrote the current image to {output}"
    with Image.open(output) as image:
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), pixels(tensor_to_image(seen[-1].image)))
    meta = read_metadata(output)
    assert meta is not None
    assert meta["interrupted_at"] == 2
    assert meta["parameters"]["seed"] == 11  # type: ignore[index]


def test_ctrl_c_before_the_first_step_writes_nothing(
    fake_bundled: FakeBundled,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(api, "optimize_stages", interrupt_at(0, []))
    output = tmp_path / "out.png"
    random_rgb(20, 10, seed=8).save(output)
    original = output.read_bytes()
    code, _, err = run_cli([*base_args(files, output), *FAST_FLAGS], capsys)
    assert code == 130
    assert "interrupted before the first iteration; nothing written" in err
    assert output.read_bytes() == original


def test_an_unavailable_device_is_a_failed_run(
    fake_bundled: FakeBundled,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    output = tmp_path / "out.png"
    argv = base_args(files, output)
    argv[argv.index("--device") + 1] = "cuda"
    code, _, err = run_cli(argv, capsys)
    assert code == 1
    assert err == "artstyle: error: --device cuda: no CUDA device is available here; use --device cpu or auto\n"
    assert not output.exists()
    assert fake_bundled.calls == 0
