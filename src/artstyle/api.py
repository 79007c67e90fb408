"""The Python API: :func:`stylize` for one call, :class:`Stylizer` to reuse the network.

>>> from artstyle import stylize
>>> picture = stylize("photo.jpg", "starry_night.jpg", size=384)  # doctest: +SKIP
>>> picture.save("out.png")                                        # doctest: +SKIP

Inputs may be paths, PIL images or numpy arrays. Options are the fields of
:class:`~artstyle.config.Config`, with the same names as the CLI flags.
"""

from __future__ import annotations

import difflib
import os
import platform
import secrets
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Union

import numpy as np
import torch
from PIL import Image

from artstyle import __version__
from artstyle.config import Config
from artstyle.device import resolve_device, set_deterministic, set_seed
from artstyle.engine import Objective, ProgressCallback, optimize
from artstyle.errors import ArtstyleWarning, ConfigError
from artstyle.features import VGG19Features, VGGWeights, load_weights
from artstyle.features.vgg import min_image_side
from artstyle.imageio import as_image, image_to_tensor, resize_long_side, tensor_to_image

ImageLike = Union[str, "os.PathLike[str]", Image.Image, np.ndarray]


def make_config(**options: Any) -> Config:
    """A validated :class:`Config` from keyword options; unknown names get "did you mean"."""
    names = [f.name for f in fields(Config)]
    for key in options:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"unknown option '{key}'{hint}")
    return Config(**options)


@dataclass(frozen=True)
class Result:
    """A finished run: the picture, the options and seed that made it, and where it ran.

    ``tensor`` is the picture before rounding to 8 bits: a (1, 3, H, W) float32 CPU
    tensor in [0, 1] (what a 16-bit file is written from); None when not known.
    """

    image: Image.Image
    config: Config
    seed: int
    device: str
    tensor: torch.Tensor | None = field(default=None, compare=False, repr=False)

    def metadata(self, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
        """Everything needed to reproduce the picture, ready for JSON."""
        return {
            "artstyle": __version__,
            "parameters": {**self.config.to_dict(), "seed": self.seed},
            "device": self.device,
            "inputs": inputs or {},
            "versions": {"torch": torch.__version__, "python": platform.python_version()},
        }


def _as_style_list(styles: ImageLike | Sequence[ImageLike]) -> list[ImageLike]:
    if isinstance(styles, (list, tuple)):
        if not styles:
            raise ConfigError("at least one style image is needed")
        return list(styles)
    return [styles]  # type: ignore[list-item]


class Stylizer:
    """Loads the VGG19 weights once and stylizes any number of images with them.

    Args:
        weights: ``"bundled"`` (default), ``"torchvision"`` or a weights file.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    """

    def __init__(self, weights: str = "bundled", device: str = "auto") -> None:
        Config(weights=weights, device=device)  # validates both
        self.weights_spec = weights
        self.device_spec = device
        self.device = resolve_device(device)
        self._weights: VGGWeights | None = None
        self._nets: dict[tuple[tuple[str, ...], str], VGG19Features] = {}

    @property
    def weights(self) -> VGGWeights:
        if self._weights is None:
            self._weights = load_weights(self.weights_spec)
        return self._weights

    def network(self, layers: Sequence[str], pooling: str) -> VGG19Features:
        """The feature network for these layers, built once per (layers, pooling)."""
        key = (tuple(sorted(layers)), pooling)
        if key not in self._nets:
            net = VGG19Features(layers, self.weights, pooling=pooling)
            self._nets[key] = net.to(self.device)
        return self._nets[key]

    def stylize(
        self,
        content: ImageLike,
        styles: ImageLike | Sequence[ImageLike],
        *,
        progress: ProgressCallback | None = None,
        **options: Any,
    ) -> Image.Image:
        """Stylize ``content`` with one or more style images; returns the picture."""
        options = {"weights": self.weights_spec, "device": self.device_spec, **options}
        return self.run(content, styles, make_config(**options), progress=progress).image

    def run(
        self,
        content: ImageLike,
        styles: ImageLike | Sequence[ImageLike],
        config: Config,
        *,
        progress: ProgressCallback | None = None,
    ) -> Result:
        """Like :meth:`stylize`, with a :class:`Config`, returning a :class:`Result`."""
        for name, made_with in (("weights", self.weights_spec), ("device", self.device_spec)):
            if getattr(config, name) != made_with:
                raise ConfigError(f"--{name}: this Stylizer was made with {name}={made_with!r}")
        style_list = _as_style_list(styles)
        if config.style_weights is not None and len(config.style_weights) != len(style_list):
            raise ConfigError(
                f"--style-weights: {len(config.style_weights)} weights for {len(style_list)} style images"
            )
        content_image = _fit(as_image(content, "content image"), config.size, "content image", config)
        style_size = max(1, round(config.size * config.style_scale))
        names = [f"style image {i}" if len(style_list) > 1 else "style image" for i in range(1, len(style_list) + 1)]
        style_images = [
            _fit(as_image(style, name), style_size, name, config) for style, name in zip(style_list, names, strict=True)
        ]
        net = self.network(config.layers, config.pooling)
        net.check_size(content_image.height, content_image.width, "content image (after resizing)")
        for style in style_images:
            net.check_size(style.height, style.width, "style image (after resizing)")
        seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
        set_seed(seed)
        set_deterministic(config.deterministic)
        content_tensor = image_to_tensor(content_image).to(self.device)
        objective = Objective(
            net,
            content_tensor,
            [image_to_tensor(style).to(self.device) for style in style_images],
            content_layers=config.content_layers,
            style_layers=config.style_layers,
            content_weight=config.content_weight,
            style_weight=config.style_weight,
            tv_weight=config.tv_weight,
            style_blend=config.style_weights,
        )
        init = self._initial_image(config.init, content_tensor)
        image = optimize(
            objective,
            init,
            iterations=config.iterations,
            optimizer=config.optimizer,
            learning_rate=config.lr,
            callback=progress,
        )
        return Result(tensor_to_image(image), config, seed, str(self.device), image.detach().cpu())

    def _initial_image(self, init: str, content: torch.Tensor) -> torch.Tensor:
        """``content``; ``noise``: mid grey plus N(0, 0.05^2) noise; or an image file
        resized to the content's size."""
        if init == "content":
            return content
        if init == "noise":
            return (0.5 + 0.05 * torch.randn(content.shape)).to(self.device)
        picture = as_image(init, "--init image").resize((content.shape[3], content.shape[2]), Image.Resampling.LANCZOS)
        return image_to_tensor(picture).to(self.device)


def _fit(image: Image.Image, size: int, what: str, config: Config) -> Image.Image:
    """``image`` resized to ``size`` on its long side, with a warning when a tiny image
    (smaller than the network's minimum on a side) is blown up to a usable size. (One
    still too small after resizing is refused by the network's size check.)"""
    resized = resize_long_side(image, size)
    needed = min_image_side(config.layers)
    if min(image.size) < needed <= min(resized.size):
        warnings.warn(
            f"{what} is only {image.width}x{image.height} px, smaller than the {needed} px the network needs; "
            f"upscaled to {resized.width}x{resized.height} (expect a soft result)",
            ArtstyleWarning,
            stacklevel=3,
        )
    return resized


def stylize(
    content: ImageLike,
    styles: ImageLike | Sequence[ImageLike],
    *,
    progress: ProgressCallback | None = None,
    **options: Any,
) -> Image.Image:
    """Repaint ``content`` in the style of ``styles`` (one image or a list); see :class:`Config`.

    Loads the network for this call only; use :class:`Stylizer` for many calls.
    """
    config = make_config(**options)
    stylizer = Stylizer(weights=config.weights, device=config.device)
    return stylizer.run(content, styles, config, progress=progress).image
