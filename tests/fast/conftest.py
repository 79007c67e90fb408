"""Shared fixtures of the fast test tier.

Nothing here touches the real bundled VGG19 weights or the network:

* an autouse fixture points ``ARTSTYLE_CACHE_DIR`` at a fresh temporary directory,
  makes the bundled-weights lookup fail loudly (so no test can decode the real file by
  accident) and makes ``torch.hub`` downloads fail;
* ``random_vgg`` is one seeded, randomly initialised :class:`VGG19Features` returning
  every layer, shared by the whole session;
* ``fake_bundled`` replaces ``load_bundled`` (and so ``load_weights("bundled")``, which
  ``artstyle.api`` calls) with random weights of the right shapes, so that the API and
  the CLI run end to end on tiny images in well under a second.

Torch is limited to one thread: other work shares this machine's CPUs.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from _support import RAY_TEST_ENVIRONMENT, FakeBundled, random_canonical_state, smooth_rgb

from artstyle.features import weights as weights_module
from artstyle.features.vgg import LAYER_NAMES, LAYERS, VGG19Features
from artstyle.features.weights import Preprocessing, VGGWeights

torch.set_num_threads(1)

#: Not a real package: while it is the bundled package name, the real weights cannot load.
NO_BUNDLED_PACKAGE = "artstyle_tests_must_not_load_the_real_bundled_weights"


def _no_download(*args: object, **kwargs: object) -> object:
    raise RuntimeError("the fast tests must not download anything")


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private weights cache, no real bundled weights and no downloads, for every test."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("ARTSTYLE_CACHE_DIR", str(cache))
    monkeypatch.setattr(weights_module, "BUNDLED_PACKAGE", NO_BUNDLED_PACKAGE)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _no_download)
    return cache


@pytest.fixture
def cache_path(_isolated: Path) -> Path:
    """The directory ``ARTSTYLE_CACHE_DIR`` points at during this test."""
    return _isolated


@pytest.fixture(scope="session")
def random_vgg() -> VGG19Features:
    """A seeded random-weight VGG19 (ImageNet preprocessing) that returns all 37 layers."""
    with torch.random.fork_rng():
        torch.manual_seed(1234)
        return VGG19Features(LAYER_NAMES)


@pytest.fixture(scope="session")
def shallow_vgg() -> VGG19Features:
    """A seeded random-weight VGG19 truncated after relu3_1 (cheap enough for optimisation runs)."""
    with torch.random.fork_rng():
        torch.manual_seed(4321)
        return VGG19Features(["relu1_1", "relu2_1", "relu2_2", "relu3_1"])


@pytest.fixture
def tiny_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """A (content, style) pair of (1, 3, 32, 32) tensors in [0, 1]."""
    generator = torch.Generator().manual_seed(7)
    content = torch.rand(1, 3, 32, 32, generator=generator)
    style = torch.rand(1, 3, 32, 32, generator=generator)
    return content, style


@pytest.fixture(scope="session")
def fake_weights() -> VGGWeights:
    """Random full-size VGG19 weights with the bundled (Caffe) preprocessing."""
    return VGGWeights(random_canonical_state(seed=99), Preprocessing.caffe(), "fake bundled VGG19 (tests)")


@pytest.fixture
def fake_bundled(monkeypatch: pytest.MonkeyPatch, fake_weights: VGGWeights) -> FakeBundled:
    """``load_weights("bundled")`` (as ``artstyle.api`` calls it) returns random weights.

    ``load_weights`` looks ``load_bundled`` up in its own module at call time, so
    patching it there covers ``artstyle.api.load_weights`` without bypassing the
    real dispatch on the weights spec.
    """
    fake = FakeBundled(fake_weights)
    monkeypatch.setattr(weights_module, "load_bundled", fake)
    return fake


# --------------------------------------------------------------------------- #
# Ray (the batch's and the video's cluster tests)
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A random VGG19 in torchvision's layout (Caffe preprocessing), for Ray's worker processes."""
    canonical = random_canonical_state(seed=77)
    state = {}
    for index, (name, kind, _, _) in enumerate(LAYERS):
        if kind == "conv":
            state[f"features.{index}.weight"] = canonical[f"{name}.weight"]
            state[f"features.{index}.bias"] = canonical[f"{name}.bias"]
    path = tmp_path_factory.mktemp("weights") / "random-caffe.pth"
    torch.save(state, path)
    return f"caffe:{path}"


@pytest.fixture(scope="session")
def local_ray() -> Iterator[Any]:
    """Ray started once for the session, on 127.0.0.2, with two CPUs and a small object store."""
    os.environ.update(RAY_TEST_ENVIRONMENT)
    ray = pytest.importorskip("ray")
    temp = Path("/tmp") / f"rt{os.getpid()}"
    ray.init(
        _node_ip_address="127.0.0.2",
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=80 * 2**20,
        _temp_dir=str(temp),
        log_to_driver=False,
        logging_level="ERROR",
    )
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


# --------------------------------------------------------------------------- #
# Video
# --------------------------------------------------------------------------- #


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """Eight 48x32 frames panning across a picture at 29.97 fps, with sound."""
    from _clips import make_clip, panned, scene  # PyAV: the [video] extra

    return make_clip(tmp_path / "clip.mp4", panned(scene(80, 40), 8, (48, 32)))


@pytest.fixture
def style(tmp_path: Path) -> Path:
    path = tmp_path / "style.png"
    smooth_rgb(40, 40, seed=5).save(path)
    return path
