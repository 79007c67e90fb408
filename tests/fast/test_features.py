"""Fast tests of artstyle.features.vgg: the layer table, truncation, shapes, sizes and preprocessing.

Only random-weight networks are used; the expected values are written out here by
hand from the VGG19 architecture rather than derived from the module's own table.
"""

from __future__ import annotations

import pytest
import torch
from _support import random_canonical_state
from torch import nn

from artstyle.errors import ImageTooSmallError, LayerNameError, WeightsError
from artstyle.features import LAYER_NAMES, Preprocessing, VGG19Features, VGGWeights, min_image_side

CONVS = [
    "conv1_1", "conv1_2",
    "conv2_1", "conv2_2",
    "conv3_1", "conv3_2", "conv3_3", "conv3_4",
    "conv4_1", "conv4_2", "conv4_3", "conv4_4",
    "conv5_1", "conv5_2", "conv5_3", "conv5_4",
]  # fmt: skip
CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}


def block_of(name: str) -> int:
    return int(name[-1]) if name.startswith("pool") else int(name[4])


# --------------------------------------------------------------------------- #
# The layer table
# --------------------------------------------------------------------------- #


def test_the_layer_table_has_37_names_in_network_order() -> None:
    assert len(LAYER_NAMES) == 37
    assert len(set(LAYER_NAMES)) == 37
    assert LAYER_NAMES[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert LAYER_NAMES[-3:] == ("conv5_4", "relu5_4", "pool5")
    assert [n for n in LAYER_NAMES if n.startswith("conv")] == CONVS
    assert [n for n in LAYER_NAMES if n.startswith("relu")] == [c.replace("conv", "relu") for c in CONVS]
    # Each relu directly follows its conv; the pools close the blocks.
    for conv in CONVS:
        assert LAYER_NAMES[LAYER_NAMES.index(conv) + 1] == conv.replace("conv", "relu")
    assert [LAYER_NAMES.index(f"pool{b}") for b in range(1, 6)] == [4, 9, 18, 27, 36]


def count_convs(net: VGG19Features) -> int:
    return sum(1 for m in net.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize(
    ("layers", "convs"),
    [
        (["conv1_1"], 1),
        (["relu1_1"], 1),
        (["pool1"], 2),
        (["relu2_1"], 3),
        (["relu4_2", "relu1_1"], 10),  # the deepest, not the last listed, decides
        (["relu3_1", "relu5_1", "relu2_1"], 13),
        (["relu5_4"], 16),
        (["pool5"], 16),
    ],
)
def test_the_network_is_truncated_after_the_deepest_requested_layer(layers: list[str], convs: int) -> None:
    net = VGG19Features(layers)
    assert count_convs(net) == convs


def test_forward_returns_exactly_the_requested_layers() -> None:
    net = VGG19Features(["relu3_1", "relu1_1", "relu1_1"])
    out = net(torch.rand(1, 3, 16, 16))
    assert set(out) == {"relu1_1", "relu3_1"}


def expected_shape(name: str, height: int, width: int) -> tuple[int, int, int, int]:
    block = block_of(name)
    pools = block - 1 + (1 if name.startswith("pool") else 0)
    return (1, CHANNELS[block], height >> pools, width >> pools)


def test_output_shape_of_every_layer_for_a_64x48_input(random_vgg: VGG19Features) -> None:
    out = random_vgg(torch.rand(1, 3, 48, 64))
    assert list(out) == list(LAYER_NAMES)  # in network order
    for name in LAYER_NAMES:
        assert tuple(out[name].shape) == expected_shape(name, 48, 64), name
    assert tuple(out["pool5"].shape) == (1, 512, 1, 2)
    assert tuple(out["relu3_3"].shape) == (1, 256, 12, 16)


def test_relu_outputs_are_non_negative_and_convs_are_not(random_vgg: VGG19Features) -> None:
    out = random_vgg(torch.rand(1, 3, 32, 32))
    assert float(out["relu2_1"].min()) >= 0.0
    assert float(out["conv2_1"].min()) < 0.0


def test_a_batch_gives_the_same_features_as_its_items() -> None:
    net = VGG19Features(["relu3_1"])
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    batched = net(images)["relu3_1"]
    single = net(images[1:2])["relu3_1"]
    torch.testing.assert_close(batched[1:2], single, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(3, 16, 16), (1, 1, 16, 16), (1, 4, 16, 16)])
def test_forward_rejects_non_rgb_batches(random_vgg: VGG19Features, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"expected an \(N, 3, H, W\) image, got"):
        random_vgg(torch.rand(*shape))


# --------------------------------------------------------------------------- #
# Layer names
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(("wrong", "suggestion"), [("relu4_3x", "relu4_3"), ("rleu1_1", "relu1_1")])
def test_an_unknown_layer_suggests_the_closest_name(wrong: str, suggestion: str) -> None:
    with pytest.raises(LayerNameError, match=f"unknown VGG19 layer '{wrong}'; did you mean '{suggestion}'"):
        VGG19Features(["relu1_1", wrong])


def test_a_hopeless_layer_name_lists_examples() -> None:
    with pytest.raises(LayerNameError, match=r"'fc7'; e\.g\. relu1_1"):
        VGG19Features(["fc7"])


def test_no_layers_and_an_unknown_pooling_are_rejected() -> None:
    with pytest.raises(LayerNameError, match="at least one layer"):
        VGG19Features([])
    with pytest.raises(LayerNameError, match="pooling: expected 'max' or 'avg', got 'min'"):
        VGG19Features(["relu1_1"], pooling="min")


# --------------------------------------------------------------------------- #
# Image sizes
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("layers", "side"),
    [(["conv1_1"], 1), (["relu1_2"], 1), (["pool1"], 2), (["relu2_1"], 2), (["relu5_1"], 16), (["pool5"], 32)],
)
def test_min_image_side(layers: list[str], side: int) -> None:
    assert min_image_side(layers) == side
    assert VGG19Features(layers).min_side == side


def test_an_image_below_the_minimum_raises_with_the_minimum_in_the_message() -> None:
    net = VGG19Features(["relu1_1", "relu5_1"])
    net.check_size(16, 40)  # exactly the minimum is fine
    with pytest.raises(
        ImageTooSmallError, match=r"content image is 40x15 px; layer relu5_1 needs at least 16 px on each side"
    ):
        net.check_size(15, 40, "content image")
    with pytest.raises(ImageTooSmallError, match="needs at least 16 px"):
        net(torch.rand(1, 3, 40, 8))


def test_pool5_needs_32_pixels_per_side(random_vgg: VGG19Features) -> None:
    with pytest.raises(ImageTooSmallError, match="at least 32 px"):
        random_vgg(torch.rand(1, 3, 31, 64))


# --------------------------------------------------------------------------- #
# Frozen parameters, pooling
# --------------------------------------------------------------------------- #


def test_parameters_are_frozen_but_the_image_gets_gradients(random_vgg: VGG19Features) -> None:
    params = list(random_vgg.parameters())
    assert len(params) == 32  # a weight and a bias per conv
    assert not any(p.requires_grad for p in params)
    assert not random_vgg.training
    image = torch.rand(1, 3, 32, 32, requires_grad=True)
    random_vgg(image)["relu2_1"].sum().backward()
    assert image.grad is not None
    assert float(image.grad.abs().sum()) > 0.0
    assert all(p.grad is None for p in params)


def test_max_and_avg_pooling_differ_after_the_first_pool() -> None:
    state = random_canonical_state(seed=5, layers=3)
    weights = VGGWeights(state, Preprocessing.imagenet(), "test")
    max_net = VGG19Features(["relu1_2", "pool1", "relu2_1"], weights, pooling="max")
    avg_net = VGG19Features(["relu1_2", "pool1", "relu2_1"], weights, pooling="avg")
    image = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    out_max, out_avg = max_net(image), avg_net(image)
    torch.testing.assert_close(out_max["relu1_2"], out_avg["relu1_2"])
    relu = out_max["relu1_2"]
    torch.testing.assert_close(out_max["pool1"], nn.functional.max_pool2d(relu, 2))
    torch.testing.assert_close(out_avg["pool1"], nn.functional.avg_pool2d(relu, 2))
    assert not torch.allclose(out_max["pool1"], out_avg["pool1"])
    assert not torch.allclose(out_max["relu2_1"], out_avg["relu2_1"])


# --------------------------------------------------------------------------- #
# Preprocessing and weights
# --------------------------------------------------------------------------- #


def solid(r: float, g: float, b: float) -> torch.Tensor:
    return torch.tensor([r, g, b]).view(1, 3, 1, 1).expand(1, 3, 2, 2).clone()


def small_weights(preprocessing: Preprocessing) -> VGGWeights:
    return VGGWeights(random_canonical_state(seed=1, layers=1), preprocessing, "test")


def test_caffe_preprocessing_flips_to_bgr_scales_to_255_and_subtracts_the_mean() -> None:
    net = VGG19Features(["conv1_1"], small_weights(Preprocessing.caffe()))
    out = net.normalize(solid(0.1, 0.5, 0.9))
    expected = [0.9 * 255 - 103.939, 0.5 * 255 - 116.779, 0.1 * 255 - 123.68]  # B, G, R
    for channel, value in enumerate(expected):
        assert float(out[0, channel, 0, 0]) == pytest.approx(value, abs=1e-3)


def test_imagenet_preprocessing_keeps_rgb_and_standardises() -> None:
    for net in (VGG19Features(["conv1_1"], small_weights(Preprocessing.imagenet())), VGG19Features(["conv1_1"])):
        out = net.normalize(solid(0.1, 0.5, 0.9))
        expected = [(0.1 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0.9 - 0.406) / 0.225]
        for channel, value in enumerate(expected):
            assert float(out[0, channel, 0, 0]) == pytest.approx(value, abs=1e-5)


def test_normalize_does_not_modify_its_input() -> None:
    net = VGG19Features(["conv1_1"], small_weights(Preprocessing.caffe()))
    image = solid(0.1, 0.5, 0.9)
    before = image.clone()
    net.normalize(image)
    torch.testing.assert_close(image, before)


def test_loading_weights_copies_the_tensors() -> None:
    state = random_canonical_state(seed=2, layers=3)
    net = VGG19Features(["relu2_1"], VGGWeights(state, Preprocessing.caffe(), "test"))
    conv = net.convs["conv2_1"]
    assert isinstance(conv, nn.Conv2d) and conv.bias is not None
    torch.testing.assert_close(conv.weight, state["conv2_1.weight"])
    torch.testing.assert_close(conv.bias, state["conv2_1.bias"])
    before = conv.weight.detach().clone()
    state["conv2_1.weight"].add_(1.0)  # the caller's tensors stay the caller's
    torch.testing.assert_close(conv.weight, before)
    assert conv.weight.data_ptr() != state["conv2_1.weight"].data_ptr()


def test_the_weights_decide_the_features() -> None:
    image = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    outputs = [
        VGG19Features(["relu1_2"], VGGWeights(random_canonical_state(seed=s, layers=2), Preprocessing.caffe(), "t"))(
            image
        )["relu1_2"]
        for s in (1, 1, 2)
    ]
    torch.testing.assert_close(outputs[0], outputs[1])
    assert not torch.allclose(outputs[0], outputs[2])


def test_weights_of_the_wrong_shape_raise_weights_error() -> None:
    state = random_canonical_state(seed=3, layers=2)
    state["conv1_2.weight"] = torch.zeros(64, 32, 3, 3)
    with pytest.raises(
        WeightsError, match=r"test: conv1_2 weight has shape \(64, 32, 3, 3\), expected \(64, 64, 3, 3\)"
    ):
        VGG19Features(["relu1_2"], VGGWeights(state, Preprocessing.caffe(), "test"))


def test_weights_missing_a_layer_raise_weights_error() -> None:
    state = random_canonical_state(seed=3, layers=1)  # conv1_2 is missing
    with pytest.raises(WeightsError, match="conv1_2"):
        VGG19Features(["relu1_2"], VGGWeights(state, Preprocessing.caffe(), "test"))
