"""Fast tests of artstyle.config: defaults, validation messages, layer parsing, replace and to_dict."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from typing import Any

import pytest

from artstyle.api import make_config
from artstyle.config import Config, flag, parse_layers
from artstyle.errors import FLAGS, ConfigError, LayerNameError, spelled

DEFAULT_STYLE = (("relu1_1", 1.0), ("relu2_1", 1.0), ("relu3_1", 1.0), ("relu4_1", 1.0), ("relu5_1", 0.25))


def test_the_defaults_are_valid_and_as_documented() -> None:
    config = Config()
    assert config.size == 512
    assert (config.content_weight, config.style_weight, config.tv_weight) == (1.0, 2.0, 5.7)
    assert config.normalization == "relative"
    assert config.content_layers == (("relu4_2", 1.0),)
    assert config.style_layers == DEFAULT_STYLE
    assert (config.iterations, config.coarse_iterations) == (30, 50)
    assert (config.optimizer, config.pooling) == ("lbfgs", "max")
    assert (config.pyramid, config.min_size, config.scale_factor) == (True, 192, 2.0)
    assert (config.style_loss, config.preserve_color, config.style_size) == ("gram", "none", None)
    assert (config.init, config.seed, config.device, config.weights) == ("recolor", None, "auto", "bundled")
    assert config.lr == 1.0
    assert Config(optimizer="adam").lr == 0.02
    assert Config(optimizer="adam", learning_rate=0.5).lr == 0.5


def test_flag_names() -> None:
    assert flag("tv_weight") == "--tv-weight"
    assert flag("size") == "--size"


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().size = 3  # type: ignore[misc]


def test_layers_lists_content_first_without_duplicates() -> None:
    config = Config(content_layers="relu2_1", style_layers="relu1_1,relu2_1,relu3_1")
    assert config.layers == ("relu2_1", "relu1_1", "relu3_1")


# --------------------------------------------------------------------------- #
# Invalid values: each message names the flag
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"content_weight": -1}, r"--content-weight: expected a finite number at least 0, got -1"),
        ({"style_weight": -0.5}, r"--style-weight: expected a finite number at least 0"),
        ({"tv_weight": -1e-9}, r"--tv-weight: expected a finite number"),
        ({"content_weight": math.nan}, r"--content-weight: .*got nan"),
        ({"style_weight": "nan"}, r"--style-weight: .*got 'nan'"),
        ({"tv_weight": math.inf}, r"--tv-weight: .*got inf"),
        ({"style_weight": "-inf"}, r"--style-weight: "),
        ({"content_weight": "heavy"}, r"--content-weight: expected a number, got 'heavy'"),
        ({"size": 0}, r"--size: expected a whole number of at least 1, got 0"),
        ({"size": -5}, r"--size: "),
        ({"size": 12.5}, r"--size: expected a whole number, got 12.5"),
        ({"size": "big"}, r"--size: expected a whole number, got 'big'"),
        ({"size": True}, r"--size: expected a whole number"),
        ({"iterations": -1}, r"--iterations: expected a whole number of at least 0, got -1"),
        ({"iterations": math.inf}, r"--iterations: "),
        ({"style_scale": 0}, r"--style-scale: expected a finite number greater than 0"),
        ({"learning_rate": 0}, r"--learning-rate: expected a finite number greater than 0"),
        ({"learning_rate": math.nan}, r"--learning-rate: "),
        ({"seed": -1}, r"--seed: expected a whole number of at least 0, got -1"),
        ({"optimizer": "sgd"}, r"--optimizer: expected one of lbfgs, adam, got 'sgd'"),
        ({"pooling": "min"}, r"--pooling: expected one of max, avg, got 'min'"),
        ({"device": "tpu"}, r"--device: expected one of auto, cpu, cuda, cuda:N, mps, got 'tpu'"),
        ({"device": "cuda:x"}, r"--device: expected one of auto, cpu, cuda, cuda:N, mps, got 'cuda:x'"),
        ({"init": ""}, r"--init: "),
        ({"weights": ""}, r"--weights: "),
        ({"style_weights": (0, 0)}, r"--style-weights: at least one weight must be positive"),
        ({"style_weights": (1, -1)}, r"--style-weights: expected a finite number at least 0"),
        ({"style_weights": ()}, r"--style-weights: "),
        ({"style_layers": "relu1_1,relu9_1"}, r"--style-layers: unknown VGG19 layer 'relu9_1'; did you mean"),
        ({"content_layers": "relu4_3x"}, r"--content-layers: unknown VGG19 layer 'relu4_3x'; did you mean 'relu4_3'"),
        ({"style_layers": "rleu1_1"}, r"--style-layers: .*did you mean 'relu1_1'"),
        ({"style_layers": "relu1_1,relu2_1,relu1_1"}, r"--style-layers: a layer is listed twice"),
        ({"style_layers": "relu1_1, relu1_1:0.5"}, r"--style-layers: a layer is listed twice"),
        ({"style_layers": "relu1_1:-1"}, r"--style-layers relu1_1: expected a finite number at least 0"),
        ({"content_layers": "relu4_2:nan"}, r"--content-layers relu4_2: "),
        ({"content_layers": "relu4_2:heavy"}, r"--content-layers relu4_2: expected a number, got 'heavy'"),
        ({"style_layers": []}, r"--style-layers: at least one layer is needed"),
        ({"style_layers": {}}, r"--style-layers: at least one layer is needed"),
        ({"style_layers": [3]}, r"--style-layers: expected layer names, got 3"),
    ],
)
def test_an_invalid_value_is_rejected_naming_its_keyword_or_its_flag(options: dict[str, Any], message: str) -> None:
    # From Python the message names the keyword (size: ...); from the command line, the flag (--size: ...).
    keyword = re.sub(r"^--([a-z-]+)", lambda found: found.group(1).replace("-", "_"), message)
    with pytest.raises(ConfigError, match=keyword):
        Config(**options)
    with spelled(FLAGS), pytest.raises(ConfigError, match=message):
        Config(**options)


def test_an_unknown_layer_is_a_layer_name_error() -> None:
    with pytest.raises(LayerNameError):
        Config(style_layers="relu6_1")


def test_valid_edge_values_are_accepted_and_normalised() -> None:
    config = Config(size="64", iterations=3.0, content_weight=0, style_weights=2, seed="0", learning_rate="0.5")
    assert config.size == 64 and isinstance(config.size, int)
    assert config.iterations == 3 and isinstance(config.iterations, int)
    assert config.content_weight == 0.0
    assert config.style_weights == (2.0,)
    assert config.seed == 0
    assert config.learning_rate == 0.5


# --------------------------------------------------------------------------- #
# Layers with weights
# --------------------------------------------------------------------------- #

EXPECTED_LAYERS = (("relu1_1", 1.0), ("relu2_1", 0.5))


@pytest.mark.parametrize(
    "value",
    [
        "relu1_1,relu2_1:0.5",
        " relu1_1 , relu2_1 : 0.5 ",
        "relu1_1:1,relu2_1:.5",
        ["relu1_1", "relu2_1:0.5"],
        ("relu1_1", "relu2_1:0.5"),
        {"relu1_1": 1, "relu2_1": 0.5},
        [("relu1_1", 1), ("relu2_1", "0.5")],
        [["relu1_1", 1.0], ("relu2_1", 0.5)],
        ["relu1_1", ("relu2_1", 0.5)],
    ],
)
def test_layer_weights_in_every_accepted_form(value: Any) -> None:
    assert parse_layers(value, "style_layers") == EXPECTED_LAYERS
    assert Config(style_layers=value).style_layers == EXPECTED_LAYERS


def test_layer_order_is_kept() -> None:
    assert [n for n, _ in parse_layers("relu5_1,relu1_1,relu3_1", "style_layers")] == ["relu5_1", "relu1_1", "relu3_1"]


def test_layer_weights_are_floats_and_zero_is_allowed() -> None:
    parsed = parse_layers({"relu1_1": 0, "relu2_1": 3}, "style_layers")
    assert parsed == (("relu1_1", 0.0), ("relu2_1", 3.0))
    assert all(isinstance(w, float) for _, w in parsed)


# --------------------------------------------------------------------------- #
# replace, to_dict, make_config
# --------------------------------------------------------------------------- #


def test_replace_returns_a_new_validated_config() -> None:
    config = Config(size=64)
    changed = config.replace(size=32, style_layers="relu1_1:2")
    assert (changed.size, changed.style_layers) == (32, (("relu1_1", 2.0),))
    assert config.size == 64 and config.style_layers == DEFAULT_STYLE
    assert changed.replace() == changed


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"size": 0}, "^size: "),
        ({"tv_weight": math.nan}, "^tv_weight: "),
        ({"content_layers": "relu4_3x"}, "did you mean 'relu4_3'"),
        ({"sise": 3}, "unknown option 'sise'"),
    ],
)
def test_replace_revalidates(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config().replace(**changes)


def test_to_dict_is_json_serialisable_and_round_trips() -> None:
    config = Config(size=64, style_weights=[1, 3], seed=5, style_layers="relu1_1,relu2_1:0.25", learning_rate=0.1)
    data = config.to_dict()
    text = json.dumps(data)
    assert json.loads(text) == data
    assert data["style_layers"] == "relu1_1,relu2_1:0.25"
    assert data["content_layers"] == "relu4_2"
    assert data["style_weights"] == [1.0, 3.0]
    assert data["seed"] == 5
    assert set(data) == {f.name for f in dataclasses.fields(Config)}
    assert Config(**json.loads(text)) == config


def test_to_dict_of_the_defaults_round_trips() -> None:
    assert Config(**json.loads(json.dumps(Config().to_dict()))) == Config()


def test_to_dict_keeps_layer_weights_exactly() -> None:
    config = Config(content_layers="relu4_2:0.1234567")
    assert Config(**config.to_dict()) == config


def test_make_config_suggests_the_closest_option() -> None:
    with pytest.raises(ConfigError, match=r"unknown option 'sise'; did you mean 'size'\?"):
        make_config(sise=32)
    with pytest.raises(ConfigError, match=r"unknown option 'styleweight'; did you mean 'style_weight'\?"):
        make_config(styleweight=3)


def test_make_config_without_a_close_option() -> None:
    with pytest.raises(ConfigError, match=r"^unknown option 'zzzzzz'$"):
        make_config(zzzzzz=1)


def test_make_config_validates_values() -> None:
    assert make_config(size=48, tv_weight=0).size == 48
    with pytest.raises(ConfigError, match=r"^tv_weight: "):
        make_config(tv_weight=-2)


def test_a_preset_gives_its_options_and_explicit_ones_win() -> None:
    draft = make_config(preset="draft")
    assert (draft.min_size, draft.coarse_iterations, draft.iterations) == (128, 30, 0)
    assert make_config(preset="draft", iterations=7).iterations == 7
    assert make_config(preset="default") == make_config()
    assert make_config(preset="fine").iterations > make_config().iterations
    with pytest.raises(ConfigError, match=r"^preset: expected one of draft, default, fine, got 'quick'$"):
        make_config(preset="quick")
