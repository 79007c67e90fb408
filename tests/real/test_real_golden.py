"""Real tier: a deterministic run gives the same pixels as the golden picture.

The golden (``tests/golden/deterministic-chelsea.png``) was made before the code moved
into layers; any later change that moves a pixel of this run fails here. Regenerate it
with ``python tests/golden/make_golden.py`` only for a change meant to move them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from artstyle.imageio import read_image

pytestmark = pytest.mark.real

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
sys.path.insert(0, str(GOLDEN))
import make_golden  # noqa: E402


@pytest.mark.parametrize("name", sorted(make_golden.COMMANDS))
def test_a_deterministic_run_gives_the_golden_pixels(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARTSTYLE_CACHE_DIR", str(tmp_path / "cache"))  # the child's weights cache
    output = tmp_path / name
    done = make_golden.make(name, output)
    assert done.returncode == 0, done.stderr
    ours, golden = np.asarray(read_image(output)), np.asarray(read_image(GOLDEN / name))
    assert ours.shape == golden.shape
    changed = np.abs(ours.astype(np.int16) - golden.astype(np.int16)).max(axis=2) > 0
    assert not changed.any(), f"{changed.mean():.1%} of the pixels differ from {GOLDEN / name}"
