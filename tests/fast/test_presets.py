"""Presets at every size, and option errors in the words of the interface that was used.

Each preset runs at the smallest size the network allows (16 px with the default layers,
on a square photo), at a small one and at the default size, through the command line and
the Python API (at the default size the optimisation itself is left out: what a preset
could break there is the plan). An error names the option as the caller wrote it: the
keyword from Python, the flag on the command line, the control's label on the web page;
a preset's own value that fails says it is the preset's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from _support import FakeBundled, random_rgb, smooth_rgb

from artstyle import api as api_module
from artstyle import cli, config
from artstyle.api import Stylizer, make_config, stylize
from artstyle.config import PRESETS
from artstyle.engine import Stage, resize_image
from artstyle.errors import ConfigError
from artstyle.features.layers import min_image_side
from artstyle.imageio import read_image, read_metadata

SMALLEST = min_image_side([name for name, _ in config.Config().style_layers])  # 16 px to relu5_1
SMALL = 48
DEFAULT = config.Config().size
#: Shallower layers where the size does not depend on the deepest one (cheaper passes).
SHALLOW = {"content_layers": "relu2_2", "style_layers": "relu1_1,relu2_1"}
SHALLOW_FLAGS = ["--content-layers", "relu2_2", "--style-layers", "relu1_1,relu2_1"]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A square photo (so that its short side is the size) and a painting."""
    paths = {"content": tmp_path / "photo.png", "style": tmp_path / "painting.png"}
    smooth_rgb(40, 40, seed=1).save(paths["content"])
    random_rgb(36, 36, seed=2).save(paths["style"])
    return paths


def _argv(files: dict[str, Path], output: Path, preset: str) -> list[str]:
    return [str(files["content"]), str(files["style"]), "-o", str(output), "-q", "--preset", preset]


@pytest.mark.parametrize("size", [SMALLEST, SMALL])
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_makes_a_picture_at_small_sizes_from_the_command_line(
    preset: str, size: int, files: dict[str, Path], tmp_path: Path, fake_bundled: FakeBundled
) -> None:
    output = tmp_path / "out.png"
    argv = [*_argv(files, output, preset), "--size", str(size), "--seed", "1"]
    assert cli.main([*argv, *(SHALLOW_FLAGS if size != SMALLEST else [])]) == 0
    assert read_image(output).size == (size, size)
    assert read_metadata(output)["parameters"]["iterations"] == make_config(preset).iterations  # type: ignore[index]


@pytest.mark.parametrize("size", [SMALLEST, SMALL])
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_makes_a_picture_at_small_sizes_from_python(
    preset: str, size: int, files: dict[str, Path], fake_bundled: FakeBundled
) -> None:
    seen: list[Any] = []
    layers = SHALLOW if size != SMALLEST else {}
    picture = stylize(
        files["content"], files["style"], preset=preset, size=size, seed=1, progress=seen.append, **layers
    )
    assert picture.size == (size, size)
    # One scale (under twice the coarsest size): it is the coarsest too, so the draft's 0
    # full-size iterations become its 30 coarse ones there.
    expected = make_config(preset).iterations or make_config(preset).coarse_iterations
    assert len(seen) == expected and {p.scales for p in seen} == {1}


def _no_optimisation(stages: Sequence[Stage], objective_for: Callable[..., Any], init: torch.Tensor, **_: Any) -> Any:
    """``optimize_stages`` without optimising: the start at the final size."""
    _no_optimisation.stages = list(stages)  # type: ignore[attr-defined]
    return resize_image(init, stages[-1].height, stages[-1].width)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_plans_the_default_size_from_python_and_the_command_line(
    preset: str, files: dict[str, Path], tmp_path: Path, fake_bundled: FakeBundled, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = Stylizer(device="cpu").prepare(files["content"], files["style"], preset=preset, seed=1, **SHALLOW)
    stages = plan.stages
    assert (stages[-1].height, stages[-1].width) == (DEFAULT, DEFAULT) and len(stages) >= 2
    assert stages[0].iterations == make_config(preset).coarse_iterations
    assert stages[-1].iterations == make_config(preset).iterations
    monkeypatch.setattr(api_module, "optimize_stages", _no_optimisation)
    output = tmp_path / "out.png"
    assert cli.main([*_argv(files, output, preset), "--seed", "1", *SHALLOW_FLAGS]) == 0
    assert read_image(output).size == (DEFAULT, DEFAULT)
    assert _no_optimisation.stages == list(stages)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- #
# Errors in the words of the interface
# --------------------------------------------------------------------------- #

#: Options that fail, and the message's start from Python and on the command line.
BAD = [
    ({"iterations": -1}, "iterations: expected a whole number of at least 0", "--iterations: expected"),
    ({"style_weight": -2}, "style_weight: expected a finite number at least 0", "--style-weight: expected"),
    ({"device": "tpu"}, "device: expected one of auto, cpu", "--device: expected one of auto, cpu"),
]
FLAG_VALUES = {"iterations": "-1", "style_weight": "-2", "device": "tpu"}


@pytest.mark.parametrize(("options", "from_python", "from_the_command_line"), BAD)
def test_an_option_error_names_the_keyword_from_python_and_the_flag_on_the_command_line(
    options: dict[str, Any],
    from_python: str,
    from_the_command_line: str,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(ConfigError) as caught:
        stylize(files["content"], files["style"], **options)
    assert str(caught.value).startswith(from_python)
    (name,) = options
    argv = [str(files["content"]), str(files["style"]), "-o", str(tmp_path / "out.png")]
    assert cli.main([*argv, f"--{name.replace('_', '-')}", FLAG_VALUES[name]]) == 2
    assert capsys.readouterr().err.startswith(f"artstyle: error: {from_the_command_line}")


def test_a_preset_s_own_value_that_fails_is_said_to_be_the_preset_s(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(PRESETS, "broken", {"iterations": -3, "coarse_iterations": 5})
    with pytest.raises(ConfigError, match=r"^iterations: .* \(the broken preset's iterations=-3; give the option"):
        make_config("broken")
    assert make_config("broken", iterations=2).iterations == 2  # the caller's value replaces it
    with pytest.raises(ConfigError, match=r"^coarse_iterations: expected .*, got 0$"):
        make_config("broken", iterations=2, coarse_iterations=0)  # the caller's own value: no word of the preset
    argv = [str(files["content"]), str(files["style"]), "-o", str(tmp_path / "out.png"), "--preset", "broken"]
    assert cli.main(argv) == 2
    assert "(the broken preset's --iterations -3; give the option to change it)" in capsys.readouterr().err
