"""Real tier: tiled optimisation with the bundled VGG19 (default layers, down to relu5_1).

A 240x160 picture with tiles of at most 208 px: two tiles, each a core plus 80 px of
context on its inner side. The run with forced tiles must give the untiled run's
picture (the tiled objective is exact up to rounding).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from artstyle import Stylizer, api
from artstyle.api import make_config
from artstyle.engine.tiled import TiledObjective
from artstyle.imageio import read_image

pytestmark = pytest.mark.real

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CONTENT = EXAMPLES / "content" / "chelsea.png"
STYLE = EXAMPLES / "styles" / "starry_night.jpg"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTSTYLE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def test_a_run_with_forced_tiles_gives_the_untiled_picture(monkeypatch: pytest.MonkeyPatch) -> None:
    stylizer = Stylizer(device="cpu")
    content, style = read_image(CONTENT), read_image(STYLE)
    made: list[TiledObjective] = []

    def tiled_objective(*args: Any, **kwargs: Any) -> TiledObjective:
        made.append(TiledObjective(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(api, "TiledObjective", tiled_objective)

    def picture(tile_size: int) -> torch.Tensor:
        config = make_config(
            size=240, iterations=2, pyramid=False, seed=0, device="cpu", precision="fp32", tile_size=tile_size
        )
        result = stylizer.run(content, style, config)
        assert result.tensor is not None
        return result.tensor

    untiled = picture(0)
    assert not made
    tiled = picture(208)
    assert [len(objective.tiles) for objective in made] == [2]
    # The same picture to rounding. Winograd's tiles fall elsewhere on a crop than on the whole
    # picture (and a smaller map may take F(4x4) where the whole takes F(6x6)): two L-BFGS steps
    # carry that rounding into a few pixels, up to some 3e-3 (mean 1e-6); a wrong seam or
    # margin would move whole rows and columns.
    difference = (tiled - untiled).abs()
    assert float(difference.mean()) < 1e-5
    assert float(difference.max()) < 1e-2
