"""The Python API: :func:`stylize` for one call, :class:`Stylizer` to reuse the network.

>>> from artstyle import stylize
>>> picture = stylize("photo.jpg", "starry_night.jpg", size=384)  # doctest: +SKIP
>>> picture.save("out.png")                                        # doctest: +SKIP

A run has two steps that can be taken apart: :meth:`Stylizer.prepare` lays it out as a
:class:`Plan` (the scales, their sizes, iterations and memory plan, the prepared
tensors, the style targets) without optimising anything, and :meth:`Stylizer.run`
runs a plan, optionally from a given starting image and with extra named loss terms.
Inputs may be paths, PIL images or numpy arrays. Options are the fields of
:class:`~artstyle.config.Config`, with the same names as the CLI flags.
"""

from __future__ import annotations

import difflib
import os
import platform
import secrets
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Union

import numpy as np
import torch
from PIL import Image

from artstyle._version import __version__
from artstyle.color import (
    luminance,
    match_color,
    match_luminance,
    pixel_mixture,
    recolor,
    recolor_regions,
    recombine,
)
from artstyle.config import Config, check_style_inputs, with_preset
from artstyle.device import deterministic, generator, resolve_device, resolve_precision, tune_for
from artstyle.engine import (
    Objective,
    ObjectiveFunction,
    ObjectiveOptions,
    ProgressCallback,
    RunState,
    SelfDifferentiating,
    Stage,
    StateCallback,
    StyleTargets,
    Term,
    check_styles,
    normalised_masks,
    optimize_stages,
    plan_stages,
    resize_image,
)
from artstyle.engine.plan import available_memory, plan_memory
from artstyle.engine.strength import Calibration, style_share, target_share
from artstyle.engine.targets import compute_stats, content_dependent, styles_digest, target_key
from artstyle.engine.tiled import TiledObjective
from artstyle.errors import ArtstyleWarning, ConfigError, option_name
from artstyle.features import VGG19Features, VGGWeights, load_weights
from artstyle.features.layers import min_image_side
from artstyle.files.convert import as_image, image_to_tensor, resize_long_side, tensor_to_image
from artstyle.losses import palette_directions, palette_loss, palette_quantiles

ImageLike = Union[str, "os.PathLike[str]", Image.Image, np.ndarray]

#: How many sets of style targets a :class:`Stylizer` keeps for its next runs (the
#: frames of a video, a batch's pictures with the same paintings reuse them).
STYLE_TARGETS_KEPT = 4


def make_config(preset: str | None = None, **options: Any) -> Config:
    """A validated :class:`Config` from keyword options, over the options of ``preset``
    (``draft``, ``default`` or ``fine``; see :data:`~artstyle.config.PRESETS`); unknown
    names get "did you mean"."""
    names = [f.name for f in fields(Config)]
    for key in options:
        if key not in names:
            close = difflib.get_close_matches(key, [*names, "preset"], n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"unknown option '{key}'{hint}")
    return with_preset(preset, options)


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
    #: The style weight the run used: ``config.style_weight``, or the one ``strength`` found.
    style_weight: float | None = None

    def metadata(self, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
        """Everything needed to reproduce the picture, ready for JSON (with ``strength``,
        also the style weight it found, under ``found``)."""
        found = {} if self.config.strength is None else {"found": {"style_weight": self.style_weight}}
        return {
            "artstyle": __version__,
            **found,
            "parameters": {**self.config.to_dict(), "seed": self.seed},
            "device": self.device,
            "inputs": inputs or {},
            "versions": {"torch": torch.__version__, "python": platform.python_version()},
        }


@dataclass(frozen=True)
class Scale:
    """One scale of a planned run: its stage (size, iterations, tiles, history) and its
    tensors on the device: what the objective sees, and how to show its image as RGB."""

    stage: Stage
    content: torch.Tensor
    styles: list[torch.Tensor]
    style_masks: list[torch.Tensor] | None
    content_mask: torch.Tensor | None
    chroma: torch.Tensor | None  # the content in RGB, for luminance-only transfer

    def render(self, image: torch.Tensor) -> torch.Tensor:
        return recombine(image, self.chroma) if self.chroma is not None else image


@dataclass(frozen=True)
class Plan:
    """A run laid out by :meth:`Stylizer.prepare`, before anything is optimised.

    ``scales`` go from coarse to fine (the last at the output size); ``style_targets``
    hold the style images' statistics at every scale (pass them to the next
    :meth:`~Stylizer.prepare` with the same style images to compute them only once);
    ``seed`` is the run's (drawn when the config has none).
    """

    config: Config
    seed: int
    device: str
    scales: tuple[Scale, ...]
    style_targets: StyleTargets

    @property
    def stages(self) -> tuple[Stage, ...]:
        return tuple(scale.stage for scale in self.scales)

    @property
    def iterations(self) -> int:
        """Iterations over all scales."""
        return sum(stage.iterations for stage in self.stages)

    def describe(self) -> list[str]:
        """One line per scale: size, iterations, and how it fits in memory."""
        lines = []
        for index, stage in enumerate(self.stages, start=1):
            tiles = f", tiles of at most {stage.tile_size} px" if stage.tile_size else ""
            lines.append(
                f"scale {index}/{len(self.stages)}: {stage.width}x{stage.height} px, {stage.iterations} iterations"
                f"{tiles}, L-BFGS history {stage.history_size}"
            )
        return lines


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
        tune_for(self.device)
        self._weights: VGGWeights | None = None
        self._nets: dict[tuple[tuple[str, ...], str], VGG19Features] = {}
        self._targets: dict[str, StyleTargets] = {}  # the latest style targets by styles digest

    @property
    def weights(self) -> VGGWeights:
        if self._weights is None:
            self._weights = load_weights(self.weights_spec)
        return self._weights

    def network(self, layers: Sequence[str], pooling: str) -> VGG19Features:
        """The feature network for these layers, built once per (layers, pooling)."""
        key = (tuple(sorted(layers)), pooling)
        if key not in self._nets:
            weights = self.weights
            self._nets[key] = VGG19Features(layers, weights, pooling=pooling, device=self.device)
        return self._nets[key]

    def stylize(
        self,
        content: ImageLike,
        styles: ImageLike | Sequence[ImageLike],
        *,
        progress: ProgressCallback | None = None,
        style_masks: Sequence[ImageLike] | None = None,
        content_mask: ImageLike | None = None,
        **options: Any,
    ) -> Image.Image:
        """Stylize ``content`` with one or more style images; returns the picture.

        ``style_masks``: one greyscale mask per style image (white: that style applies);
        ``content_mask``: where the content is kept (white) or not (black).
        """
        options = {"weights": self.weights_spec, "device": self.device_spec, **options}
        config = make_config(**options)
        result = self.run(
            content, styles, config, progress=progress, style_masks=style_masks, content_mask=content_mask
        )
        return result.image

    def prepare(
        self,
        content: ImageLike,
        styles: ImageLike | Sequence[ImageLike],
        config: Config | None = None,
        *,
        style_masks: Sequence[ImageLike] | None = None,
        content_mask: ImageLike | None = None,
        style_targets: StyleTargets | None = None,
        **options: Any,
    ) -> Plan:
        """Lay out a run without optimising anything: load and check the inputs, plan the
        scales and their memory, make each scale's tensors and the style targets.

        ``config`` (default: made from ``options``, which otherwise change it) holds the
        options; the masks are as for :meth:`stylize`. ``style_targets`` from an earlier
        plan with the same style images are reused (only missing sizes are computed);
        they cannot be shared with ``preserve_color`` ``histogram``, or ``luminance`` with
        ``match_luminance``, whose style targets depend on the content (ConfigError).
        """
        config = self._config(config, options)
        inputs = _Inputs.load(content, styles, config, style_masks, content_mask)
        net = self.network(config.layers, config.pooling)
        stages = plan_memory(
            inputs.plan(config, net),
            layers=config.layers,
            channels=1 if config.preserve_color == "luminance" else 3,
            optimizer=config.optimizer,
            tile_size=config.tile_size,
            available=available_memory(self.device),
        )
        seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
        with deterministic(config.deterministic):
            scales = tuple(inputs.at(stage, config, self.device) for stage in stages)
            targets = self._style_targets(inputs, scales, config, net, style_targets)
        return Plan(config, seed, str(self.device), scales, targets)

    def run(
        self,
        plan: Plan | ImageLike,
        styles: ImageLike | Sequence[ImageLike] | None = None,
        config: Config | None = None,
        *,
        init: torch.Tensor | None = None,
        extra_terms: Sequence[Term] = (),
        progress: ProgressCallback | None = None,
        style_masks: Sequence[ImageLike] | None = None,
        content_mask: ImageLike | None = None,
        checkpoint: StateCallback | None = None,
        checkpoint_every: int = 0,
        resume: RunState | None = None,
        warmup: bool = True,
    ) -> Result:
        """Run a :class:`Plan` (or, as ``run(content, styles, config)``, prepare one first)
        and return a :class:`Result`.

        ``init``, a (1, 3, H, W) RGB tensor in [0, 1] of any size, is the starting image
        instead of the config's ``init`` (resized to the first scale); ``warmup`` false
        skips the Adam steps that begin L-BFGS at the first scale, for a start that is
        already stylized (a video's previous frame warped onto this one: from there the
        warm-up's fixed steps only undo it). ``extra_terms`` are
        named terms added to the objective at every scale and reported in its parts (see
        :class:`~artstyle.engine.objective.Term`). ``progress`` receives a
        :class:`~artstyle.engine.loop.Progress` after every iteration; ``checkpoint``, a
        :class:`~artstyle.engine.loop.RunState` after every ``checkpoint_every``-th one;
        ``resume``, such a state from a run of the same plan, continues it (see
        :func:`~artstyle.engine.pyramid.optimize_stages`). A run whose loss or image stops
        being finite raises :class:`~artstyle.errors.DivergedError`.
        """
        if not isinstance(plan, Plan):
            if styles is None or config is None:
                raise TypeError("Stylizer.run takes a Plan, or a content image, style images and a Config")
            plan = self.prepare(plan, styles, config, style_masks=style_masks, content_mask=content_mask)
        config = plan.config
        self._check_made_with(config)
        net = self.network(config.layers, config.pooling)
        start = self._initial_image(init, plan)
        calibration = self._calibration(plan)
        with deterministic(config.deterministic):
            image = optimize_stages(
                plan.stages,
                self._objectives(plan, net, tuple(extra_terms), calibration),
                start,
                optimizer=config.optimizer,
                learning_rate=config.lr,
                callback=progress,
                render_for=lambda index, stage: plan.scales[index].render,
                detail_for=lambda index, stage: _detail(plan, index),
                guide_for=(lambda index, stage: _guide(plan, index)) if config.upsample == "guided" else None,
                resume=resume,
                checkpoint=checkpoint,
                checkpoint_every=checkpoint_every,
                calibration=calibration,
                warmup=warmup,
            )
        picture = plan.scales[-1].render(image).detach().cpu()
        weight = config.style_weight * (calibration.factor if calibration is not None else 1.0)
        return Result(tensor_to_image(picture), config, plan.seed, plan.device, picture, weight)

    def _config(self, config: Config | None, options: dict[str, Any]) -> Config:
        if config is None:
            config = make_config(**{"weights": self.weights_spec, "device": self.device_spec, **options})
        elif options:
            config = config.replace(**options)
        self._check_made_with(config)
        return config

    def _check_made_with(self, config: Config) -> None:
        for name, made_with in (("weights", self.weights_spec), ("device", self.device_spec)):
            if getattr(config, name) != made_with:
                raise ConfigError(f"this Stylizer was made with {name}={made_with!r}", option=name)

    def _style_targets(
        self, inputs: _Inputs, scales: Sequence[Scale], config: Config, net: VGG19Features, given: StyleTargets | None
    ) -> StyleTargets:
        """The style targets of every scale that is optimised: ``given`` ones where they
        have the size, computed ones elsewhere."""
        layers = tuple(name for name, _ in config.style_layers)
        colors = f"{config.preserve_color}{'+match' if config.match_luminance else ''}"
        network = f"{self.weights_spec}|{config.pooling}|{','.join(layers)}|{colors}"
        digest = styles_digest([f"{style.size}".encode() + style.tobytes() for style in inputs.styles], network)
        if given is not None and content_dependent(config.preserve_color, config.match_luminance):
            problem = f"{config.preserve_color!r} makes style targets for each content image; they cannot be shared"
            raise ConfigError(problem, option="preserve_color")
        if given is not None and given.styles != digest:
            raise ConfigError("these style targets were computed for other style images, layers or weights")
        if given is not None:
            given = given.to(self.device)  # from another process or device (a batch's, through Ray: the CPU)
        shareable = not content_dependent(config.preserve_color, config.match_luminance)
        if given is None and shareable:
            given = self._targets.get(digest)  # computed by an earlier run of this Stylizer
        targets = given if given is not None else StyleTargets(digest, layers)
        for scale in scales:
            key = target_key(scale.styles, scale.stage.tile_size)
            if scale.stage.iterations and targets.get(key) is None:
                stats = tuple(compute_stats(net, style, layers, scale.stage.tile_size) for style in scale.styles)
                targets = targets.with_entry(key, stats)
        if shareable:
            self._targets.pop(digest, None)
            self._targets[digest] = targets
            while len(self._targets) > STYLE_TARGETS_KEPT:
                self._targets.pop(next(iter(self._targets)))
        return targets

    def style_share(self, plan: Plan, picture: torch.Tensor, index: int = -1) -> float:
        """The style share of ``picture`` at scale ``index`` of ``plan`` (default: the
        output size), in float32: its style loss over the start's (the photo in the colours
        the run starts from: recoloured with ``--init recolor``), with the plan's style
        layers and weights (see :mod:`~artstyle.engine.strength`); what ``strength`` sets.
        ``picture`` is (1, 3, H, W) RGB in [0, 1], resized to the scale."""
        config, scale = plan.config, plan.scales[index]
        options: ObjectiveOptions = {
            **objective_options(config),
            "style_masks": scale.style_masks,
            "style_stats": plan.style_targets.get(target_key(scale.styles, scale.stage.tile_size)),
        }
        objective = Objective(self.network(config.layers, config.pooling), scale.content, scale.styles, **options)
        image = picture.to(scale.content.device, scale.content.dtype)
        if image.shape[1] != scale.content.shape[1]:
            image = luminance(image)
        image = resize_image(image.clamp(0, 1), scale.stage.height, scale.stage.width)
        return style_share(objective, image, _photo_start(plan, -1))

    def _calibration(self, plan: Plan) -> Calibration | None:
        """The style weight's calibration for ``strength`` (None without it)."""
        if plan.config.strength is None:
            return None
        return Calibration(target_share(plan.config.strength), start=_photo_start(plan, -1))

    def _objectives(
        self, plan: Plan, net: VGG19Features, extra_terms: tuple[Term, ...], calibration: Calibration | None = None
    ) -> Callable[[int, Stage], ObjectiveFunction | SelfDifferentiating]:
        """What :func:`~artstyle.engine.pyramid.optimize_stages` calls to build each scale's
        objective (with the style weight times the calibration's factor, if any)."""
        config = plan.config
        latest: dict[int, Objective | TiledObjective] = {}  # the scale's objective, for its next part

        def objective_for(index: int, stage: Stage) -> ObjectiveFunction | SelfDifferentiating:
            weight = config.style_weight * (calibration.factor if calibration is not None else 1.0)
            if index in latest:  # a later part of the scale (strength): the same targets, the weight moved
                latest[index].reweight_style(weight)
                return latest[index]
            latest.clear()
            latest[index] = _objective(index, stage, weight)
            return latest[index]

        def _objective(index: int, stage: Stage, weight: float) -> Objective | TiledObjective:
            scale = plan.scales[index]
            options: ObjectiveOptions = {
                **objective_options(config),
                "style_weight": weight,
                "compute_dtype": resolve_precision(config.precision, self.device),
                "style_masks": scale.style_masks,
                "content_mask": scale.content_mask,
                "extra_terms": (*_palette_term(config, scale), *extra_terms),
                "style_stats": plan.style_targets.get(target_key(scale.styles, stage.tile_size)),
            }
            if stage.tile_size:  # too large for one pass of the network (see artstyle.engine.tiled)
                return TiledObjective(net, scale.content, scale.styles, tile_size=stage.tile_size, **options)
            return Objective(net, scale.content, scale.styles, **options)

        return objective_for

    def _initial_image(self, init: torch.Tensor | None, plan: Plan) -> torch.Tensor:
        """The starting image at the first scale: ``init`` (a tensor) resized; else the
        config's ``init``: ``content``; ``recolor``: the content with its colours mapped
        to the style images' (blended) mean and covariance, as they are at the output size
        (see :func:`~artstyle.color.recolor`; with style masks, each region to its own
        style's, see :func:`~artstyle.color.recolor_regions`; the content itself for
        luminance-only transfer); ``noise``: mid grey plus N(0, 0.05^2) noise drawn from the run's own
        generator; or an image file resized to the first scale's size (its luminance for
        luminance-only transfer)."""
        first = plan.scales[0].content
        shape = first.shape
        if init is not None:
            return _start_from_tensor(init, first)
        if plan.config.init in ("content", "recolor"):
            return _photo_start(plan, 0)
        if plan.config.init == "noise":
            return (0.5 + 0.05 * torch.randn(shape, generator=generator(plan.seed))).to(self.device)
        picture = as_image(plan.config.init, f"{option_name('init')} image")
        image = image_to_tensor(picture.resize((shape[3], shape[2]), Image.Resampling.LANCZOS)).to(self.device)
        return luminance(image) if shape[1] == 1 else image


def objective_options(config: Config) -> ObjectiveOptions:
    """The layers, weights, blend and style loss of ``config``, as the objective takes them."""
    return {
        "content_layers": config.content_layers,
        "style_layers": config.style_layers,
        "content_weight": config.content_weight,
        "style_weight": config.style_weight,
        "tv_weight": config.tv_weight,
        "style_blend": config.style_weights,
        "style_loss": config.style_loss,
        "normalization": config.normalization,
    }


def _photo_start(plan: Plan, index: int) -> torch.Tensor:
    """The content at scale ``index`` as a run from the photo starts: with ``--init recolor``
    (and colour) its colours mapped to the style images' (blended) mean and covariance as
    they are at the output size, each region to its own style's with style masks; else
    the content itself. At the output size, what ``strength``'s share divides by."""
    content = plan.scales[index].content
    if plan.config.init != "recolor" or content.shape[1] != 3:
        return content
    styles, masks, palette = plan.scales[-1].styles, plan.scales[index].style_masks, plan.config.palette
    if masks is not None:
        return recolor_regions(content, styles, normalised_masks(masks), palette)
    return recolor(content, styles, check_styles(styles, plan.config.style_weights, None), palette)


def _start_from_tensor(init: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """A given starting image, checked, on the device, at the first scale's size and channels."""
    if not isinstance(init, torch.Tensor) or init.dim() != 4 or init.shape[0] != 1 or init.shape[1] != 3:
        got = tuple(init.shape) if isinstance(init, torch.Tensor) else type(init).__name__
        raise ConfigError(f"expected a (1, 3, H, W) RGB tensor in [0, 1], got {got}", option="init")
    if not bool(torch.isfinite(init).all()):
        raise ConfigError("the starting image has NaN or infinite values", option="init")
    image = resize_image(init.detach().to(first.device, first.dtype).clamp(0, 1), first.shape[2], first.shape[3])
    return luminance(image) if first.shape[1] == 1 else image


def _palette_term(config: Config, scale: Scale) -> tuple[Term, ...]:
    """The palette term of a scale (``palette_weight`` > 0, colour pictures only): the
    sliced Wasserstein distance of the picture's colours from the paintings' (their blend
    by ``style_weights``), divided by the photo's, so that it is 1 at the photo."""
    if not config.palette_weight or scale.content.shape[1] != 3:
        return ()
    directions = palette_directions().to(scale.content.device)
    pixels, mass = pixel_mixture(scale.styles, check_styles(scale.styles, config.style_weights, None))
    target = palette_quantiles(pixels, mass, directions, scale.content[0, 0].numel())
    at_photo = palette_loss(scale.content, target, directions).clamp_min(1e-12)

    def relative(image: torch.Tensor) -> torch.Tensor:
        return palette_loss(image, target, directions) / at_photo

    return (Term("palette", relative, config.palette_weight),)


def _guide(plan: Plan, index: int) -> torch.Tensor:
    """What the picture is upsampled along to start scale ``index``: the content's
    luminance at that scale (see :func:`~artstyle.engine.images.guided_upsample`)."""
    content = plan.scales[index].content
    return luminance(content) if content.shape[1] == 3 else content


def _detail(plan: Plan, index: int) -> torch.Tensor:
    """The content's detail between the previous scale and this one (a Laplacian level)."""
    content, stage, coarser = plan.scales[index].content, plan.stages[index], plan.stages[index - 1]
    blurred = resize_image(resize_image(content, coarser.height, coarser.width), stage.height, stage.width)
    return content - blurred


@dataclass(frozen=True)
class _Inputs:
    """The run's images as loaded (content at the output size), before any scale is made."""

    content: Image.Image
    styles: list[Image.Image]
    style_masks: list[Image.Image] | None
    content_mask: Image.Image | None

    @classmethod
    def load(
        cls,
        content: ImageLike,
        styles: ImageLike | Sequence[ImageLike],
        config: Config,
        style_masks: Sequence[ImageLike] | None,
        content_mask: ImageLike | None,
    ) -> _Inputs:
        style_list = _as_style_list(styles)
        check_style_inputs(config, len(style_list), None if style_masks is None else len(style_masks))
        names = [f"style image {i}" if len(style_list) > 1 else "style image" for i in range(1, len(style_list) + 1)]
        content_image = _fit(as_image(content, "content image"), config.size, "content image", config)
        style_images = [as_image(s, name) for s, name in zip(style_list, names, strict=True)]
        full = max(1, round(_style_side_at_output(config)))
        for style, name in zip(style_images, names, strict=True):
            _warn_if_tiny(style, _long_side_size(style, full), name, config)
        several = len(style_list) > 1
        return cls(
            content_image,
            style_images,
            None
            if style_masks is None
            else [as_mask(m, f"style mask {i}" if several else "style mask") for i, m in enumerate(style_masks, 1)],
            None if content_mask is None else as_mask(content_mask, "content mask"),
        )

    def style_long_side(self, config: Config, long_side: int) -> int:
        """The style images' long side at a scale whose long side is ``long_side``."""
        return max(1, round(_style_side_at_output(config) * long_side / max(self.content.size)))

    def plan(self, config: Config, net: VGG19Features) -> list[Stage]:
        """The scales of the run, with every size checked against the network before any work."""
        width, height = self.content.size
        net.check_size(height, width, "content image (after resizing)")
        stages = plan_stages(
            height,
            width,
            iterations=config.iterations,
            coarse_iterations=config.coarse_iterations,
            min_size=config.min_size,
            factor=config.scale_factor if config.pyramid else 1.0,
            min_side=net.min_side,
        )
        for stage in stages:
            long_side = self.style_long_side(config, max(stage.height, stage.width))
            for style in self.styles:
                resized = _long_side_size(style, long_side)
                what = "style image (after resizing)" if stage is stages[-1] else f"style image at {long_side} px"
                net.check_size(resized[1], resized[0], what)
        return stages

    def at(self, stage: Stage, config: Config, device: torch.device) -> Scale:
        """The tensors of one scale, on ``device``."""
        content = image_to_tensor(_resized(self.content, stage.width, stage.height)).to(device)
        long_side = self.style_long_side(config, max(stage.height, stage.width))
        styles = [image_to_tensor(_resized(s, *_long_side_size(s, long_side))).to(device) for s in self.styles]
        masks = None
        if self.style_masks is not None:
            masks = [_mask_tensor(m, stage).to(device) for m in self.style_masks]
        content_mask = None if self.content_mask is None else _mask_tensor(self.content_mask, stage).to(device)
        if config.preserve_color == "histogram":
            styles = [match_color(style, content) for style in styles]
        if config.preserve_color == "luminance":
            luma = luminance(content)
            styles = [luminance(style) for style in styles]
            if config.match_luminance:
                styles = [match_luminance(style, luma) for style in styles]
            return Scale(stage, luma, styles, masks, content_mask, chroma=content)
        return Scale(stage, content, styles, masks, content_mask, chroma=None)


def _style_side_at_output(config: Config) -> float:
    """The style images' long side at the output size: ``style_size``, else ``size * style_scale``."""
    return config.style_size if config.style_size is not None else config.size * config.style_scale


def _long_side_size(image: Image.Image, long_side: int) -> tuple[int, int]:
    width, height = image.size
    if width >= height:
        return long_side, max(1, round(height * long_side / width))
    return max(1, round(width * long_side / height)), long_side


def _resized(image: Image.Image, width: int, height: int) -> Image.Image:
    return image if image.size == (width, height) else image.resize((width, height), Image.Resampling.LANCZOS)


def _mask_tensor(mask: Image.Image, stage: Stage) -> torch.Tensor:
    """A greyscale mask stretched to the scale's size, as (1, 1, H, W) weights in [0, 1]."""
    grey = mask.resize((stage.width, stage.height), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(grey, dtype=np.float32) / 255.0)[None, None]


def as_mask(mask: ImageLike, what: str) -> Image.Image:
    """A mask as an 8-bit greyscale image (colour masks by their luminance)."""
    return as_image(mask, what).convert("L")


def _fit(image: Image.Image, size: int, what: str, config: Config) -> Image.Image:
    """``image`` resized to ``size`` on its long side, with a warning when a tiny image
    (smaller than the network's minimum on a side) is blown up to a usable size. (One
    still too small after resizing is refused by the network's size check.)"""
    resized = resize_long_side(image, size)
    _warn_if_tiny(image, resized.size, what, config)
    return resized


def _warn_if_tiny(image: Image.Image, resized: tuple[int, int], what: str, config: Config) -> None:
    needed = min_image_side(config.layers)
    if min(image.size) < needed <= min(resized):
        warnings.warn(
            f"{what} is only {image.width}x{image.height} px, smaller than the {needed} px the network needs; "
            f"upscaled to {resized[0]}x{resized[1]} (expect a soft result)",
            ArtstyleWarning,
            stacklevel=4,
        )


def stylize(
    content: ImageLike,
    styles: ImageLike | Sequence[ImageLike],
    *,
    progress: ProgressCallback | None = None,
    style_masks: Sequence[ImageLike] | None = None,
    content_mask: ImageLike | None = None,
    **options: Any,
) -> Image.Image:
    """Repaint ``content`` in the style of ``styles`` (one image or a list); see :class:`Config`
    and, for the masks, :meth:`Stylizer.stylize`.

    Loads the network for this call only; use :class:`Stylizer` for many calls.
    """
    config = make_config(**options)
    stylizer = Stylizer(weights=config.weights, device=config.device)
    result = stylizer.run(
        content, styles, config, progress=progress, style_masks=style_masks, content_mask=content_mask
    )
    return result.image
