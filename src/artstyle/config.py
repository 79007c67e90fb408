"""The one frozen, validated configuration of a style-transfer run.

Every option lives here once, with its default and its help text; the CLI flags are
generated from these fields (``content_weight`` -> ``--content-weight``) and the API
takes the same names as keywords, so a default exists in exactly one place.
Validation happens in ``__post_init__``, before any work, and raises
:class:`~artstyle.errors.ConfigError` with the option's flag name in the message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from artstyle.choices import COLOR_MODES, NORMALIZATIONS, PALETTES, PRECISIONS, STYLE_LOSSES
from artstyle.errors import ConfigError, option_value
from artstyle.errors import flag as flag  # re-exported: the CLI spelling of an option
from artstyle.features.layers import check_layer_names, deepest, min_tile_size

LayerWeights = tuple[tuple[str, float], ...]

OPTIMIZERS = ("lbfgs", "adam")
POOLINGS = ("max", "avg")
DEVICES = ("auto", "cpu", "cuda", "mps")
#: The starts ``init`` names; any other value is an image file.
INIT_MODES = ("content", "noise", "recolor")
#: How each scale's picture is enlarged to start the next (``upsample``).
UPSAMPLINGS = ("guided", "bicubic")
DEFAULT_LEARNING_RATES = {"lbfgs": 1.0, "adam": 0.02}
ITERATIONS = 30
COARSE_ITERATIONS = 50
#: The default style layers and their weights. relu5_1 counts a quarter: matching the
#: painting's deepest statistics rearranges the photo's objects, and with the weight of
#: the others it cost more content than anything else (benchmarks/quality.py, seven
#: pairs: at a quarter, with the style weight from 1.5 to 2, the content error fell by
#: 10-18% and the style error moved by less than 4%).
STYLE_LAYERS = (("relu1_1", 1.0), ("relu2_1", 1.0), ("relu3_1", 1.0), ("relu4_1", 1.0), ("relu5_1", 0.25))

# Named bundles of options (``--preset``); options given explicitly win over them.
PRESETS: dict[str, dict[str, Any]] = {
    "draft": {"min_size": 128, "coarse_iterations": 30, "iterations": 0},
    "default": {},
    "fine": {"coarse_iterations": 150, "iterations": 100},
}


def preset_options(name: str | None) -> dict[str, Any]:
    """The options of preset ``name`` (None: none), or ConfigError naming the choices."""
    if name is None:
        return {}
    if name not in PRESETS:
        raise ConfigError(f"expected one of {', '.join(PRESETS)}, got {name!r}", option="preset")
    return dict(PRESETS[name])


def with_preset(preset: str | None, options: Mapping[str, Any]) -> Config:
    """A validated :class:`Config` of ``options`` over the options of ``preset``. A value
    the preset set, not one given, that fails validation is said to be the preset's."""
    bundle = preset_options(preset)
    try:
        return Config(**{**bundle, **options})
    except ConfigError as exc:
        if preset is None or exc.option not in bundle or exc.option in options:
            raise
        value = option_value(exc.option, bundle[exc.option])
        problem = f"{exc.problem} (the {preset} preset's {value}; give the option to change it)"
        raise ConfigError(problem, option=exc.option, part=exc.part) from None


def _option(default: Any, help: str, metavar: str | None = None, choices: Sequence[str] = ()) -> Any:
    return field(default=default, metadata={"help": help, "metavar": metavar, "choices": tuple(choices)})


def parse_layers(value: str | Sequence[str | tuple[str, float]] | Mapping[str, float], option: str) -> LayerWeights:
    """Layers with optional weights: ``"relu1_1,relu2_1:0.5"``, a list of such strings or of
    (name, weight) pairs, or a mapping name -> weight. Unweighted layers get weight 1."""
    items: list[tuple[str, object]] = []
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    else:
        for part in [p for p in value.split(",") if p.strip()] if isinstance(value, str) else value:
            if isinstance(part, (tuple, list)) and len(part) == 2 and isinstance(part[0], str):
                items.append((part[0], part[1]))
            elif isinstance(part, str):
                name, _, weight = part.strip().partition(":")
                items.append((name.strip(), weight.strip() or 1.0))
            else:
                raise ConfigError(f"expected layer names, got {part!r}", option=option)
    if not items:
        raise ConfigError("at least one layer is needed", option=option)
    parsed = [(name, _number(weight, option, part=name)) for name, weight in items]
    check_layer_names([name for name, _ in parsed], option)
    if len({name for name, _ in parsed}) != len(parsed):
        raise ConfigError("a layer is listed twice", option=option)
    return tuple(parsed)


def format_layers(layers: LayerWeights) -> str:
    """The inverse of :func:`parse_layers`: ``relu1_1,relu2_1:0.5`` (exact weights)."""
    return ",".join(name if weight == 1 else f"{name}:{weight!r}" for name, weight in layers)


def _number(value: object, option: str, minimum: float = 0.0, strict: bool = False, part: str | None = None) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"expected a number, got {value!r}", option=option, part=part) from None
    if not math.isfinite(number) or number < minimum or (strict and number == minimum):
        relation = "greater than" if strict else "at least"
        problem = f"expected a finite number {relation} {minimum:g}, got {value!r}"
        raise ConfigError(problem, option=option, part=part)
    return number


def _strength(value: object) -> float | None:
    """A strength from 0 to 1, or None for ``off`` (or ``none``, or None): the fixed style weight."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("off", "none")):
        return None
    return _fraction(value, "strength")


def _fraction(value: object, option: str) -> float:
    number = _number(value, option)
    if number > 1:
        raise ConfigError(f"expected a number from 0 to 1, got {value!r}", option=option)
    return number


def _integer(value: object, option: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            value = int(str(value)) if not isinstance(value, float) else int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"expected a whole number, got {value!r}", option=option) from None
    if value < minimum:
        raise ConfigError(f"expected a whole number of at least {minimum}, got {value}", option=option)
    return value


def _blend_weights(value: object) -> tuple[float, ...]:
    weights: Any = value
    if isinstance(weights, str):
        weights = weights.replace(",", " ").split()
    elif isinstance(weights, (int, float)):
        weights = (weights,)
    blend = tuple(_number(w, "style_weights") for w in weights)
    if not blend or sum(blend) <= 0:
        raise ConfigError("at least one weight must be positive", option="style_weights")
    return blend


def _boolean(value: object, option: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return value.strip().lower() in ("true", "yes", "on", "1")
    raise ConfigError(f"expected true or false, got {value!r}", option=option)


def _device(value: object) -> str:
    """One of :data:`DEVICES`, or ``cuda:N`` (whether it exists is the run's question)."""
    kind, colon, index = value.partition(":") if isinstance(value, str) else ("", "", "")
    if value in DEVICES or (kind == "cuda" and colon and index.isdigit()):
        return str(value)
    raise ConfigError(f"expected one of auto, cpu, cuda, cuda:N, mps, got {value!r}", option="device")


def _choice(value: object, option: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ConfigError(f"expected one of {', '.join(choices)}, got {value!r}", option=option)
    return str(value)


@dataclass(frozen=True)
class Config:
    """All options of a run. Field names are the API keywords; flags are ``--field-name``."""

    size: int = _option(512, "long side of the output in pixels", "PX")
    style_scale: float = _option(1.0, "style images are resized to SIZE * STYLE_SCALE on their long side", "X")
    style_size: int | None = _option(
        None, "long side of the style images in pixels at the output size (default: SIZE * STYLE_SCALE)", "PX"
    )
    style_weights: tuple[float, ...] | None = _option(
        None, "blend weights of the style images, one each (default: equal)", "W"
    )
    content_weight: float = _option(1.0, "weight of the content loss", "W")
    style_weight: float = _option(2.0, "weight of the style loss (of each style layer)", "W")
    strength: float | None = _option(
        None,
        "degree of stylisation, 0 (the photo in the painting's colours) to 1, the same on any pair and at any "
        "size: the style weight is found for each run; it wins over --style-weight, which is then only where "
        "the search starts (default: off, the fixed --style-weight)",
        "S|off",
    )
    tv_weight: float = _option(
        5.7,
        "weight of the total-variation (smoothness) loss (relative normalisation: divided by the painting's mean "
        "absolute neighbour difference)",
        "W",
    )
    content_layers: LayerWeights = _option((("relu4_2", 1.0),), "content layers, as NAME[:WEIGHT],...", "LAYERS")
    style_layers: LayerWeights = _option(
        STYLE_LAYERS,
        "style layers, as NAME[:WEIGHT],...",
        "LAYERS",
    )
    iterations: int = _option(
        ITERATIONS,
        "optimizer iterations at the full size (the last scale; 0: upsample the previous one, or, with only one "
        "scale, COARSE_ITERATIONS there)",
        "N",
    )
    coarse_iterations: int = _option(
        COARSE_ITERATIONS,
        "optimizer iterations at the coarsest scale; the scales between get a geometric in-between",
        "N",
    )
    pyramid: bool = _option(True, "optimise coarse to fine, from about MIN_SIZE up to SIZE")
    min_size: int = _option(
        192, "SIZE is divided by SCALE_FACTOR while the long side stays at least this: the coarsest scale", "PX"
    )
    scale_factor: float = _option(2.0, "ratio of the sizes of neighbouring scales (more than 1)", "X")
    upsample: str = _option(
        "guided",
        "how each scale's picture is enlarged to start the next: along the content's edges (a guided filter), "
        "or plain bicubic",
        choices=UPSAMPLINGS,
    )
    normalization: str = _option(
        "relative",
        "relative: each content and style layer's loss divided by its target's mean square, so the weights weigh "
        "relative errors and every style layer counts alike; absolute: neural-style's losses",
        choices=NORMALIZATIONS,
    )
    style_loss: str = _option("gram", "style loss: Gram matrices, or feature mean and covariance", choices=STYLE_LOSSES)
    preserve_color: str = _option(
        "none", "keep the content's colours: luminance-only transfer, or style colours matched", choices=COLOR_MODES
    )
    match_luminance: bool = _option(
        False,
        "with --preserve-color luminance, first match the painting's luminance to the photo's mean and spread "
        "(Gatys et al. 2017); off, the painting's own luminance is the target, as in neural-style's -original_colors",
    )
    optimizer: str = _option("lbfgs", "optimizer", choices=OPTIMIZERS)
    learning_rate: float | None = _option(None, "step size (default: 1.0 for lbfgs, 0.02 for adam)", "LR")
    init: str = _option(
        "recolor",
        "start from the content image, 'noise', 'recolor' (the content in the style's colours), or an image FILE",
        "content|noise|recolor|FILE",
    )
    palette_weight: float = _option(
        0.5, "weight of the palette term: how far the picture's colours are from the paintings' (1 at the photo)", "W"
    )
    palette: str = _option(
        "distribution",
        "how the recoloured start (--init recolor) takes the paintings' colours: moments (their mean and "
        "covariance) or distribution (every tone, the darkest and brightest too)",
        choices=PALETTES,
    )
    seed: int | None = _option(None, "random seed (default: a fresh one, recorded in the output)", "N")
    pooling: str = _option("max", "VGG19 pooling", choices=POOLINGS)
    device: str = _option(
        "auto", "compute device: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N (the N-th GPU) or mps", "DEVICE"
    )
    weights: str = _option(
        "bundled", "VGG19 weights: bundled, torchvision, or a FILE (torchvision: or caffe: prefix)", "SOURCE"
    )
    precision: str = _option(
        "auto",
        "the network's arithmetic: auto (bf16 where the CPU has native bf16, else fp32), fp32, or bf16",
        choices=PRECISIONS,
    )
    deterministic: bool = _option(
        False, "use only deterministic algorithms: bit-identical results for the same inputs, options, seed and machine"
    )
    tile_size: int = _option(0, "longest tile side in pixels; 0 = automatic", "PX")

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # the dataclass is frozen; normalise once, here
        set_(self, "size", _integer(self.size, "size", 1))
        set_(self, "style_scale", _number(self.style_scale, "style_scale", strict=True))
        if self.style_size is not None:
            set_(self, "style_size", _integer(self.style_size, "style_size", 1))
        if self.style_weights is not None:
            set_(self, "style_weights", _blend_weights(self.style_weights))
        for name in ("content_weight", "style_weight", "tv_weight", "palette_weight"):
            set_(self, name, _number(getattr(self, name), name))
        set_(self, "strength", _strength(self.strength))
        set_(self, "content_layers", parse_layers(self.content_layers, "content_layers"))
        set_(self, "style_layers", parse_layers(self.style_layers, "style_layers"))
        set_(self, "iterations", _integer(self.iterations, "iterations", 0))
        set_(self, "coarse_iterations", _integer(self.coarse_iterations, "coarse_iterations", 1))
        self._check_perceptual_options()
        set_(self, "optimizer", _choice(self.optimizer, "optimizer", OPTIMIZERS))
        set_(self, "normalization", _choice(self.normalization, "normalization", NORMALIZATIONS))
        if self.learning_rate is not None:
            set_(self, "learning_rate", _number(self.learning_rate, "learning_rate", strict=True))
        if not isinstance(self.init, str) or not self.init:
            raise ConfigError(f"expected {', '.join(INIT_MODES)} or an image file, got {self.init!r}", option="init")
        if self.seed is not None:
            set_(self, "seed", _integer(self.seed, "seed", 0))
        set_(self, "pooling", _choice(self.pooling, "pooling", POOLINGS))
        set_(self, "palette", _choice(self.palette, "palette", PALETTES))
        set_(self, "device", _device(self.device))
        set_(self, "precision", _choice(self.precision, "precision", PRECISIONS))
        if not isinstance(self.weights, str) or not self.weights:
            raise ConfigError(f"expected bundled, torchvision or a file, got {self.weights!r}", option="weights")
        set_(self, "deterministic", _boolean(self.deterministic, "deterministic"))
        set_(self, "tile_size", _integer(self.tile_size, "tile_size", 0))
        smallest = min_tile_size(self.layers)
        if 0 < self.tile_size < smallest:
            raise ConfigError(
                f"expected 0 (automatic) or at least {smallest} px with layers down to {deepest(self.layers)}, "
                f"got {self.tile_size}",
                option="tile_size",
            )

    def _check_perceptual_options(self) -> None:
        set_ = object.__setattr__
        set_(self, "pyramid", _boolean(self.pyramid, "pyramid"))
        set_(self, "min_size", _integer(self.min_size, "min_size", 1))
        set_(self, "scale_factor", _number(self.scale_factor, "scale_factor", minimum=1.0, strict=True))
        set_(self, "upsample", _choice(self.upsample, "upsample", UPSAMPLINGS))
        set_(self, "style_loss", _choice(self.style_loss, "style_loss", STYLE_LOSSES))
        set_(self, "preserve_color", _choice(self.preserve_color, "preserve_color", COLOR_MODES))

    @property
    def lr(self) -> float:
        """The learning rate in force (the optimizer's default unless set)."""
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LEARNING_RATES[self.optimizer]

    @property
    def layers(self) -> tuple[str, ...]:
        """Every layer the run reads, content first."""
        return tuple(dict.fromkeys(name for name, _ in self.content_layers + self.style_layers))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (for the output's metadata)."""
        data = asdict(self)
        for key in ("content_layers", "style_layers"):
            data[key] = format_layers(data[key])
        if data["style_weights"] is not None:
            data["style_weights"] = list(data["style_weights"])
        return data

    def replace(self, **changes: Any) -> Config:
        """A copy with some options changed (validated like a new one)."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"unknown option {sorted(unknown)[0]!r}")
        return Config(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **changes})


def check_style_inputs(config: Config, styles: int, masks: int | None = None) -> None:
    """ConfigError unless the blend weights of ``config`` (when set) and the style masks
    (``masks`` of them, when given) number one per style image (``styles`` of them)."""
    if config.style_weights is not None and len(config.style_weights) != styles:
        raise ConfigError(f"{len(config.style_weights)} weights for {styles} style images", option="style_weights")
    if masks is not None and masks != styles:
        raise ConfigError(f"{masks} masks for {styles} style images", option="style_masks")
