"""Fast tests of artstyle.imageio: reading, converting, resizing and atomic writing."""

from __future__ import annotations

import io
import os
import stat
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from artstyle import imageio
from artstyle.errors import ArtstyleError, ConfigError, ImageReadError, ImageWriteError
from artstyle.files import read

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def pixels(image: Image.Image) -> npt.NDArray[np.uint8]:
    """The image as an H x W x C uint8 array (asserting it is RGB)."""
    assert image.mode == "RGB"
    return np.asarray(image, dtype=np.uint8)


def noise(width: int = 32, height: int = 24, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def write(path: Path, image: Image.Image, fmt: str | None = None, **options: Any) -> Path:
    image.save(path, format=fmt, **options)
    return path


def file_mode(path: Path) -> str:
    """The mode Pillow itself opens ``path`` with (to check the test input is what we think)."""
    with Image.open(path) as image:
        return image.mode


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".partial"))


# --------------------------------------------------------------------------- #
# read_image: formats and modes
# --------------------------------------------------------------------------- #


def test_read_rgb_png_is_exact_and_independent_of_the_file(tmp_path: Path) -> None:
    source = noise()
    path = write(tmp_path / "a.png", source)
    image = imageio.read_image(path)
    assert image.mode == "RGB"
    assert image.size == source.size
    np.testing.assert_array_equal(pixels(image), np.asarray(source))
    # Fully decoded: the file can disappear and the pixels are still there.
    path.unlink()
    assert image.getpixel((0, 0)) == source.getpixel((0, 0))


def test_read_accepts_str_and_pathlike(tmp_path: Path) -> None:
    path = write(tmp_path / "a.png", Image.new("RGB", (3, 2), RED))
    assert imageio.read_image(str(path)).size == (3, 2)
    assert imageio.read_image(path).size == (3, 2)


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (4, 1), (255, 0, 0, 255))
    rgba.putpixel((1, 0), (255, 0, 0, 0))  # fully transparent red -> white
    rgba.putpixel((2, 0), (0, 0, 0, 128))  # half transparent black -> mid grey
    rgba.putpixel((3, 0), (0, 0, 255, 0))
    image = imageio.read_image(write(tmp_path / "a.png", rgba))
    data = pixels(image)
    assert tuple(data[0, 0]) == RED
    assert tuple(data[0, 1]) == WHITE
    assert all(abs(int(v) - 127) <= 1 for v in data[0, 2])
    assert tuple(data[0, 3]) == WHITE


def test_la_is_composited_on_white(tmp_path: Path) -> None:
    la = Image.new("LA", (2, 1), (0, 255))
    la.putpixel((1, 0), (0, 0))
    image = imageio.read_image(write(tmp_path / "a.png", la))
    assert [tuple(v) for v in pixels(image)[0]] == [(0, 0, 0), WHITE]


def test_palette_with_transparency_is_composited_on_white(tmp_path: Path) -> None:
    palette_image = Image.new("P", (3, 1), 0)
    palette_image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    palette_image.putpixel((1, 0), 1)
    palette_image.putpixel((2, 0), 2)
    palette_image.info["transparency"] = 1  # green is transparent
    for name in ("p.png", "p.gif"):
        path = write(tmp_path / name, palette_image, transparency=1)
        assert file_mode(path) == "P"
        image = imageio.read_image(path)
        assert [tuple(v) for v in pixels(image)[0]] == [RED, WHITE, BLUE], name


def test_palette_without_transparency(tmp_path: Path) -> None:
    palette_image = Image.new("RGB", (2, 1), RED)
    palette_image.putpixel((1, 0), BLUE)
    palette_image = palette_image.convert("P", palette=Image.Palette.ADAPTIVE, colors=2)
    image = imageio.read_image(write(tmp_path / "p.png", palette_image))
    assert [tuple(v) for v in pixels(image)[0]] == [RED, BLUE]


def test_grey_and_bilevel(tmp_path: Path) -> None:
    grey = Image.fromarray(np.array([[0, 100, 255]], dtype=np.uint8))
    image = imageio.read_image(write(tmp_path / "l.png", grey))
    assert [tuple(v) for v in pixels(image)[0]] == [(0, 0, 0), (100,) * 3, WHITE]

    bilevel = Image.new("1", (2, 1), 0)
    bilevel.putpixel((1, 0), 1)
    image = imageio.read_image(write(tmp_path / "b.png", bilevel))
    assert [tuple(v) for v in pixels(image)[0]] == [(0, 0, 0), WHITE]


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 257 * 100, 257 * 200, 65535]], dtype=np.uint16)
    path = write(tmp_path / "g16.png", Image.fromarray(values))
    assert file_mode(path).startswith("I")
    image = imageio.read_image(path)
    assert [int(v[0]) for v in pixels(image)[0]] == [0, 100, 200, 255]


def test_32_bit_integer_grey_is_scaled_from_16_bits(tmp_path: Path) -> None:
    values = np.array([[0, 257 * 100, 65535, 10**6, -5]], dtype=np.int32)
    path = write(tmp_path / "i.tif", Image.fromarray(values))
    assert file_mode(path) == "I"
    image = imageio.read_image(path)
    assert [int(v[0]) for v in pixels(image)[0]] == [0, 100, 255, 255, 0]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.0, 0.5, 1.0], [0, 128, 255]),  # 0-1 floats
        ([0.0, 100.0, 300.0], [0, 100, 255]),  # 0-255 floats, clipped
        ([-1.0, 0.25, float("nan")], [0, 64, 0]),
    ],
)
def test_float_grey(tmp_path: Path, values: list[float], expected: list[int]) -> None:
    path = write(tmp_path / "f.tif", Image.fromarray(np.array([values], dtype=np.float32)))
    assert file_mode(path) == "F"
    image = imageio.read_image(path)
    assert [int(v[0]) for v in pixels(image)[0]] == expected


def test_cmyk(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (2, 1), (0, 0, 0, 0))  # no ink: white
    cmyk.putpixel((1, 0), (0, 0, 0, 255))  # full black ink
    for name in ("c.tif", "c.jpg"):
        path = write(tmp_path / name, cmyk)
        assert file_mode(path) == "CMYK"
        data = pixels(imageio.read_image(path)).astype(int)
        assert (data[0, 0] >= 250).all(), name
        assert (data[0, 1] <= 5).all(), name


def test_animated_gif_gives_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (4, 4), colour) for colour in (RED, BLUE, (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    with Image.open(path) as animated:
        assert getattr(animated, "n_frames", 1) == 3
    image = imageio.read_image(path)
    assert image.size == (4, 4)
    assert {tuple(v) for v in pixels(image).reshape(-1, 3)} == {RED}


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # 16 x 8, left half red, right half blue. Orientation 6 means "rotate 90 degrees
    # clockwise to display", which moves the left half to the top.
    image = Image.new("RGB", (16, 8), BLUE)
    image.paste(RED, (0, 0, 8, 8))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = write(tmp_path / "rotated.jpg", image, exif=exif.tobytes(), quality=95)
    with Image.open(path) as stored:
        assert stored.size == (16, 8)
        assert stored.getexif().get(0x0112) == 6

    result = imageio.read_image(path)
    assert result.size == (8, 16)
    data = pixels(result).astype(int)
    top, bottom = data[2, 4], data[13, 4]
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom
    # The orientation tag is consumed, so a second pass cannot rotate twice.
    assert imageio.as_image(result).size == (8, 16)


def test_load_truncated_images_stays_false(tmp_path: Path) -> None:
    imageio.read_image(write(tmp_path / "a.png", noise()))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# --------------------------------------------------------------------------- #
# read_image: errors
# --------------------------------------------------------------------------- #


def read_error(path: Path) -> str:
    with pytest.raises(ImageReadError) as info:
        imageio.read_image(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    assert read_error(tmp_path / "missing.png").endswith("no such file")


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "folder.png"
    folder.mkdir()
    assert read_error(folder).endswith("is a directory, not an image")


def test_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert read_error(tmp_path / "file" / "a.png").endswith("not a directory")


def test_path_with_nul_character(tmp_path: Path) -> None:
    assert "invalid path" in read_error(tmp_path / "a\0b.png")


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    assert read_error(path).endswith("not an image file (unknown format)")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert read_error(path).endswith("file is empty")


@pytest.mark.parametrize(("fmt", "name"), [("JPEG", "cut.jpg"), ("PNG", "cut.png")])
def test_truncated_file(tmp_path: Path, fmt: str, name: str) -> None:
    data = encoded(noise(64, 64), fmt)
    path = tmp_path / name
    path.write_bytes(data[: len(data) // 2])
    assert read_error(path).endswith("file is truncated or corrupt")


def test_corrupt_png_checksum(tmp_path: Path) -> None:
    data = bytearray(encoded(noise(16, 16), "PNG"))
    start = data.index(b"IDAT") + 10
    data[start : start + 20] = bytes(20)
    path = tmp_path / "corrupt.png"
    path.write_bytes(bytes(data))
    assert read_error(path).endswith("file is truncated or corrupt")


def test_too_many_pixels(tmp_path: Path) -> None:
    path = write(tmp_path / "big.png", Image.new("RGB", (16, 16), RED))
    with pytest.raises(ImageReadError, match=r"image too large \(16x16 px, 256 pixels; the limit is 255, see --max"):
        imageio.read_image(path, max_pixels=255)
    assert imageio.read_image(path, max_pixels=256).size == (16, 16)


@pytest.mark.skipif(IS_ROOT or sys.platform == "win32", reason="root can read anything")
def test_permission_denied(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.png", Image.new("RGB", (2, 2)))
    path.chmod(0)
    try:
        assert read_error(path).endswith("permission denied")
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_permission_denied_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Also runs as root, where chmod cannot take read access away.
    path = write(tmp_path / "secret.png", Image.new("RGB", (2, 2)))

    def denied(file: Any, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(read, "open", denied, raising=False)  # where the file is opened
    assert read_error(path).endswith("permission denied")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    assert read_error(path).endswith("not a regular file")


_PNG = encoded(noise(8, 8, seed=1), "PNG")
_JPEG = encoded(noise(8, 8, seed=2), "JPEG")
_GIF = encoded(noise(8, 8, seed=3).convert("P"), "GIF")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    original=st.sampled_from([_PNG, _JPEG, _GIF]),
    position=st.floats(0.0, 1.0),
    garbage=st.binary(min_size=1, max_size=16),
    cut=st.booleans(),
)
def test_damaged_files_raise_only_image_read_error(
    tmp_path: Path, original: bytes, position: float, garbage: bytes, cut: bool
) -> None:
    at = int(position * (len(original) - 1))
    damaged = original[:at] + garbage + (b"" if cut else original[at + len(garbage) :])
    path = tmp_path / "damaged.img"
    path.write_bytes(damaged)
    try:
        image = imageio.read_image(path)
    except ImageReadError as exc:
        assert "damaged.img" in str(exc)
    else:
        assert image.mode == "RGB"


# --------------------------------------------------------------------------- #
# as_image
# --------------------------------------------------------------------------- #


def test_as_image_path(tmp_path: Path) -> None:
    path = write(tmp_path / "a.png", Image.new("RGB", (3, 2), RED))
    assert pixels(imageio.as_image(path)).shape == (2, 3, 3)
    assert pixels(imageio.as_image(str(path))).shape == (2, 3, 3)
    with pytest.raises(ImageReadError):
        imageio.as_image(tmp_path / "missing.png")


def test_as_image_pil_rgba_does_not_modify_the_original() -> None:
    rgba = Image.new("RGBA", (2, 1), (255, 0, 0, 0))
    result = imageio.as_image(rgba)
    assert result.mode == "RGB"
    assert [tuple(v) for v in pixels(result)[0]] == [WHITE, WHITE]
    assert rgba.mode == "RGBA"
    assert rgba.getpixel((0, 0)) == (255, 0, 0, 0)


def test_as_image_pil_rgb_returns_a_copy() -> None:
    original = Image.new("RGB", (2, 2), RED)
    result = imageio.as_image(original)
    assert result is not original
    result.putpixel((0, 0), BLUE)
    assert original.getpixel((0, 0)) == RED


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("L", 100, (100, 100, 100)),
        ("1", 1, WHITE),
        ("I;16", 65535, WHITE),
        ("I", 257 * 10, (10, 10, 10)),
        ("F", 0.5, (128, 128, 128)),
        ("PA", (0, 0), WHITE),
        ("La", (0, 0), WHITE),
        ("RGBa", (0, 0, 0, 0), WHITE),
        ("CMYK", (0, 0, 0, 0), WHITE),
        ("YCbCr", (255, 128, 128), WHITE),
    ],
)
def test_as_image_pil_modes(mode: str, value: Any, expected: tuple[int, int, int]) -> None:
    result = imageio.as_image(Image.new(mode, (2, 2), value))
    data = pixels(result).astype(int)
    assert data.shape == (2, 2, 3)
    assert np.abs(data - np.array(expected)).max() <= 1, (mode, data[0, 0])


def test_as_image_truncated_lazy_pil_image(tmp_path: Path) -> None:
    data = encoded(noise(64, 64), "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with Image.open(path) as lazy, pytest.raises(ImageReadError, match="truncated or corrupt"):
        imageio.as_image(lazy)


def test_as_image_uint8_arrays() -> None:
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[0, 0] = RED
    np.testing.assert_array_equal(pixels(imageio.as_image(rgb)), rgb)

    grey = np.array([[0, 7, 255]], dtype=np.uint8)
    expected = np.repeat(grey[..., None], 3, axis=2)
    np.testing.assert_array_equal(pixels(imageio.as_image(grey)), expected)
    np.testing.assert_array_equal(pixels(imageio.as_image(grey[..., None])), expected)

    rgba = np.array([[[255, 0, 0, 255], [255, 0, 0, 0]]], dtype=np.uint8)
    assert [tuple(v) for v in pixels(imageio.as_image(rgba))[0]] == [RED, WHITE]


def test_as_image_non_contiguous_array() -> None:
    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    view = rgb[:, ::2]
    np.testing.assert_array_equal(pixels(imageio.as_image(view)), view)


def test_as_image_uint16_array() -> None:
    values = np.array([[[0, 257 * 200, 65535], [65280, 128, 129]]], dtype=np.uint16)
    result = pixels(imageio.as_image(values))
    assert [tuple(v) for v in result[0]] == [(0, 200, 255), (254, 0, 1)]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_as_image_float_array_is_clipped(dtype: Any) -> None:
    values = np.array([[[0.0, 0.5, 1.0], [-3.0, 2.0, 0.25]]], dtype=dtype)
    result = pixels(imageio.as_image(values))
    assert [tuple(v) for v in result[0]] == [(0, 128, 255), (0, 255, 64)]


def test_as_image_float_array_with_nan() -> None:
    values = np.full((2, 2, 3), np.nan, dtype=np.float32)
    with pytest.raises(ConfigError, match="NaN"):
        imageio.as_image(values, "content image")


@pytest.mark.parametrize("shape", [(3, 4, 5, 6), (4, 4, 2), (4, 4, 5), (12,), (), (3, 4, 3, 1)])
def test_as_image_bad_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError) as info:
        imageio.as_image(np.zeros(shape, dtype=np.uint8), "style image")
    message = str(info.value)
    assert message.startswith("style image: expected an H x W x 3 array")
    assert message.endswith(f"got shape {shape}")


def test_as_image_empty_array() -> None:
    with pytest.raises(ConfigError, match="empty"):
        imageio.as_image(np.zeros((0, 4, 3), dtype=np.uint8))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_, np.complex64, np.int8])
def test_as_image_bad_dtypes(dtype: Any) -> None:
    with pytest.raises(ConfigError, match=r"^content image: .*got dtype"):
        imageio.as_image(np.zeros((2, 2, 3), dtype=dtype), "content image")


@pytest.mark.parametrize("obj", [None, 42, b"a.png", [[1, 2]], {"a": 1}])
def test_as_image_bad_types(obj: Any) -> None:
    with pytest.raises(ConfigError) as info:
        imageio.as_image(obj, "style image")
    assert str(info.value).startswith("style image: ")
    assert type(obj).__name__ in str(info.value)


# --------------------------------------------------------------------------- #
# Tensors
# --------------------------------------------------------------------------- #


def test_image_to_tensor() -> None:
    image = Image.new("RGB", (3, 2), (255, 0, 51))
    tensor = imageio.image_to_tensor(image)
    assert tensor.shape == (1, 3, 2, 3)
    assert tensor.dtype == torch.float32
    assert tensor.is_contiguous()
    assert torch.allclose(tensor[0, :, 1, 2], torch.tensor([1.0, 0.0, 0.2]))


def test_image_to_tensor_converts_other_modes() -> None:
    tensor = imageio.image_to_tensor(Image.new("RGBA", (2, 2), (0, 0, 0, 0)))
    assert tensor.shape == (1, 3, 2, 2)
    assert torch.equal(tensor, torch.ones_like(tensor))
    tensor = imageio.image_to_tensor(Image.new("L", (2, 2), 255))
    assert torch.equal(tensor, torch.ones(1, 3, 2, 2))


def test_tensor_round_trip_is_exact() -> None:
    image = noise(7, 5)
    back = imageio.tensor_to_image(imageio.image_to_tensor(image))
    assert back.size == image.size
    np.testing.assert_array_equal(pixels(back), np.asarray(image))


def test_tensor_to_image_three_dims_any_dtype_clamped() -> None:
    tensor = torch.tensor([[[-0.5, 0.5]], [[1.5, 0.2]], [[float("nan"), 1.0]]], dtype=torch.float64)
    assert tensor.shape == (3, 1, 2)
    image = imageio.tensor_to_image(tensor)
    assert image.size == (2, 1)
    assert [tuple(v) for v in pixels(image)[0]] == [(0, 255, 0), (128, 51, 255)]


def test_tensor_to_image_does_not_modify_or_need_grad() -> None:
    tensor = torch.full((1, 3, 2, 2), 2.0, requires_grad=True)
    image = imageio.tensor_to_image(tensor)
    assert pixels(image).min() == 255
    assert float(tensor.detach().max()) == 2.0
    half = torch.full((1, 3, 2, 2), 0.5, dtype=torch.float16)
    assert pixels(imageio.tensor_to_image(half)).max() == 128


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (1, 4, 4, 4), (4, 4), (1, 1, 3, 4, 4), (3, 0, 4)])
def test_tensor_to_image_bad_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError, match="shape"):
        imageio.tensor_to_image(torch.zeros(shape))


# --------------------------------------------------------------------------- #
# resize_long_side
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("size", "target", "expected"),
    [
        ((400, 300), 200, (200, 150)),
        ((300, 400), 200, (150, 200)),
        ((100, 100), 37, (37, 37)),
        ((10, 7), 40, (40, 28)),
        ((1000, 1), 10, (10, 1)),
        ((1, 1000), 10, (1, 10)),
        ((333, 100), 100, (100, 30)),
        ((300, 199), 200, (200, 133)),
    ],
)
def test_resize_long_side(size: tuple[int, int], target: int, expected: tuple[int, int]) -> None:
    result = imageio.resize_long_side(Image.new("RGB", size, RED), target)
    assert result.size == expected
    assert result.mode == "RGB"


def test_resize_long_side_same_size_returns_same_object() -> None:
    image = Image.new("RGB", (30, 20))
    assert imageio.resize_long_side(image, 30) is image
    assert imageio.resize_long_side(image, 20) is not image


def test_resize_long_side_uses_lanczos() -> None:
    image = noise(40, 20)
    expected = image.resize((20, 10), Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(pixels(imageio.resize_long_side(image, 20)), np.asarray(expected))


@pytest.mark.parametrize("size", [0, -5, 2.5, True, "100", None])
def test_resize_long_side_bad_size(size: Any) -> None:
    with pytest.raises(ConfigError):
        imageio.resize_long_side(Image.new("RGB", (4, 4)), size)


# --------------------------------------------------------------------------- #
# check_output_path
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("out.png", "PNG"),
        ("out.jpg", "JPEG"),
        ("out.JPEG", "JPEG"),
        ("out.webp", "WEBP"),
        ("out.tif", "TIFF"),
        ("out.Tiff", "TIFF"),
    ],
)
def test_check_output_path_ok(tmp_path: Path, name: str, fmt: str) -> None:
    assert imageio.check_output_path(tmp_path / name) == fmt
    assert imageio.check_output_path(str(tmp_path / name)) == fmt
    assert list(tmp_path.iterdir()) == []  # created nothing


def test_check_output_path_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert imageio.check_output_path("out.png") == "PNG"


@pytest.mark.parametrize("name", ["out.bmp", "out", "out.png.txt", "out."])
def test_check_output_path_bad_extension(tmp_path: Path, name: str) -> None:
    with pytest.raises(ImageWriteError) as info:
        imageio.check_output_path(tmp_path / name)
    message = str(info.value)
    assert name in message
    for extension in (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"):
        assert extension in message


def test_check_output_path_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageWriteError, match="does not exist"):
        imageio.check_output_path(tmp_path / "nope" / "out.png")
    assert not (tmp_path / "nope").exists()


def test_check_output_path_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ImageWriteError, match="is not a directory"):
        imageio.check_output_path(tmp_path / "file" / "out.png")


def test_check_output_path_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "out.png").mkdir()
    with pytest.raises(ImageWriteError, match="is a directory"):
        imageio.check_output_path(tmp_path / "out.png")


@pytest.mark.skipif(IS_ROOT or sys.platform == "win32", reason="root can write anything")
def test_check_output_path_read_only_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(ImageWriteError, match="not writable"):
            imageio.check_output_path(locked / "out.png")
        with pytest.raises(ImageWriteError, match="not writable"):
            imageio.save_image(Image.new("RGB", (2, 2)), locked / "out.png")
    finally:
        locked.chmod(stat.S_IRWXU)


def test_check_output_path_not_writable_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Also runs as root, for whom os.access always says yes.
    calls: list[str] = []

    def no_access(path: Any, mode: int) -> bool:
        calls.append(os.fspath(path))
        return False

    monkeypatch.setattr(os, "access", no_access)
    with pytest.raises(ImageWriteError, match="is not writable"):
        imageio.check_output_path(tmp_path / "out.png")
    assert calls == [str(tmp_path)]


# --------------------------------------------------------------------------- #
# save_image: round trips
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("name", "fmt", "tolerance"),
    [
        ("out.png", "PNG", 0),
        ("out.tif", "TIFF", 0),
        ("out.tiff", "TIFF", 0),
        ("out.jpg", "JPEG", 40),
        ("out.jpeg", "JPEG", 40),
        ("out.webp", "WEBP", 40),
    ],
)
def test_save_round_trip(tmp_path: Path, name: str, fmt: str, tolerance: int) -> None:
    image = Image.new("RGB", (16, 8), RED)
    image.paste(BLUE, (8, 0, 16, 8))
    path = tmp_path / name
    imageio.save_image(image, path)
    with Image.open(path) as written:
        assert written.format == fmt
    back = imageio.read_image(path)
    assert back.size == (16, 8)
    difference = np.abs(pixels(back).astype(int) - np.asarray(image).astype(int))
    # Compare away from the red/blue edge, where lossy codecs bleed colours.
    assert difference[:, [0, 1, 2, 13, 14, 15]].max() <= tolerance
    assert leftovers(tmp_path) == []
    assert not imageio.sidecar_path(path).exists()


def test_save_converts_rgba_for_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "out.jpg"
    imageio.save_image(Image.new("RGBA", (8, 8), (0, 0, 0, 0)), path)
    assert pixels(imageio.read_image(path)).min() >= 250


def test_jpeg_quality_is_used(tmp_path: Path) -> None:
    image = noise(64, 64)
    for name in ("low.jpg", "high.jpg", "low.webp", "high.webp"):
        quality = 10 if name.startswith("low") else 95
        imageio.save_image(image, tmp_path / name, jpeg_quality=quality)
    assert (tmp_path / "low.jpg").stat().st_size < (tmp_path / "high.jpg").stat().st_size
    assert (tmp_path / "low.webp").stat().st_size < (tmp_path / "high.webp").stat().st_size


@pytest.mark.parametrize("quality", [0, 101, 9.5, True, "95"])
def test_bad_jpeg_quality(tmp_path: Path, quality: Any) -> None:
    with pytest.raises(ConfigError, match="quality"):
        imageio.save_image(Image.new("RGB", (2, 2)), tmp_path / "out.jpg", jpeg_quality=quality)
    assert list(tmp_path.iterdir()) == []


def test_save_bad_extension_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ImageWriteError, match="supported"):
        imageio.save_image(Image.new("RGB", (2, 2)), tmp_path / "out.bmp")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("thing", ["picture.png", [[1, 2]], np.zeros((2, 2, 5), np.uint8), torch.zeros(2, 3, 4, 4)])
def test_save_rejects_non_images(tmp_path: Path, thing: Any) -> None:
    with pytest.raises(ConfigError):
        imageio.save_image(thing, tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_save_replaces_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    imageio.save_image(Image.new("RGB", (2, 2), RED), path)
    imageio.save_image(Image.new("RGB", (3, 3), BLUE), path)
    back = imageio.read_image(path)
    assert back.size == (3, 3)
    assert tuple(pixels(back)[0, 0]) == BLUE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_save_permissions(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.png"
        imageio.save_image(Image.new("RGB", (2, 2)), fresh)
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644  # not mkstemp's 0600

        existing = tmp_path / "existing.png"
        existing.write_bytes(b"old")
        existing.chmod(0o640)
        imageio.save_image(Image.new("RGB", (2, 2)), existing)
        assert stat.S_IMODE(existing.stat().st_mode) == 0o640
    finally:
        os.umask(old_umask)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_save_through_symlink_updates_the_target(tmp_path: Path) -> None:
    real = tmp_path / "real.png"
    imageio.save_image(Image.new("RGB", (2, 2), RED), real)
    link = tmp_path / "link.png"
    link.symlink_to(real)
    imageio.save_image(Image.new("RGB", (2, 2), BLUE), link)
    assert link.is_symlink()
    assert tuple(pixels(imageio.read_image(real))[0, 0]) == BLUE


# --------------------------------------------------------------------------- #
# save_image: atomicity
# --------------------------------------------------------------------------- #


def _failing_save(self: Image.Image, fp: Any, format: str | None = None, **kwargs: Any) -> None:
    """Write some bytes as a real encoder would, then fail half way."""
    fp.write(b"\x89PNG\r\n\x1a\n partial garbage")
    fp.flush()
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("name", ["out.png", "out.jpg"])
def test_failed_save_leaves_existing_file_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    path = tmp_path / name
    imageio.save_image(Image.new("RGB", (4, 4), RED), path, {"run": 1})
    before = path.read_bytes()
    sidecar_before = imageio.sidecar_path(path).read_bytes() if name.endswith(".jpg") else None

    monkeypatch.setattr(Image.Image, "save", _failing_save)
    with pytest.raises(ImageWriteError) as info:
        imageio.save_image(Image.new("RGB", (4, 4), BLUE), path, {"run": 2})
    assert str(path) in str(info.value)
    assert "no space left on device" in str(info.value)

    assert path.read_bytes() == before
    if sidecar_before is not None:
        assert imageio.sidecar_path(path).read_bytes() == sidecar_before
    assert leftovers(tmp_path) == []


def test_failed_first_save_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image.Image, "save", _failing_save)
    with pytest.raises(ImageWriteError):
        imageio.save_image(Image.new("RGB", (4, 4)), tmp_path / "out.webp", {"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_interrupted_save_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.png"
    path.write_bytes(b"previous")

    def interrupted(self: Image.Image, fp: Any, format: str | None = None, **kw: Any) -> None:
        fp.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        imageio.save_image(Image.new("RGB", (4, 4)), path)
    assert path.read_bytes() == b"previous"
    assert leftovers(tmp_path) == []


def test_failed_replace_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.png"
    path.write_bytes(b"previous")

    def broken_replace(src: Any, dst: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(ImageWriteError, match="permission denied"):
        imageio.save_image(Image.new("RGB", (4, 4)), path)
    assert path.read_bytes() == b"previous"
    assert leftovers(tmp_path) == []


def test_temp_file_is_in_the_target_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        seen.append((Path(src), Path(dst)))
        assert Path(src).read_bytes().startswith(b"\x89PNG")  # complete before the move
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    imageio.save_image(Image.new("RGB", (2, 2)), tmp_path / "out.png")
    [(src, dst)] = seen
    assert src.parent == dst.parent == tmp_path
    assert src.name.startswith(".out.png.") and src.name.endswith(".partial")
    assert dst.name == "out.png"


def test_atomic_write_bytes(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    imageio.atomic_write_bytes(path, b"one")
    assert path.read_bytes() == b"one"
    imageio.atomic_write_bytes(str(path), b"two")
    assert path.read_bytes() == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.bin"]
    with pytest.raises(FileNotFoundError):
        imageio.atomic_write_bytes(tmp_path / "missing" / "x.bin", b"x")


def test_atomic_path_body_failure_keeps_target(tmp_path: Path) -> None:
    path = tmp_path / "cache.bin"
    path.write_bytes(b"good")
    with pytest.raises(RuntimeError, match="download failed"), imageio.atomic_path(path) as temp:
        assert temp.parent == tmp_path and temp.exists()
        temp.write_bytes(b"partial")
        raise RuntimeError("download failed")
    assert path.read_bytes() == b"good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.bin"]


# --------------------------------------------------------------------------- #
# Metadata
# --------------------------------------------------------------------------- #

METADATA: dict[str, object] = {
    "style": "Starry Night — ünïcode",
    "steps": 300,
    "weights": {"content": 1.0, "style": 1e6},
    "layers": ["conv1_1", "conv2_1"],
    "seed": None,
}


def test_png_metadata_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    imageio.save_image(Image.new("RGB", (4, 4)), path, METADATA)
    assert imageio.read_metadata(path) == METADATA
    assert not imageio.sidecar_path(path).exists()
    with Image.open(path) as written:
        raw = written.info["artstyle"]
    assert raw == '{"layers": ["conv1_1", "conv2_1"], "seed": null, "steps": 300, ' + (
        '"style": "Starry Night — ünïcode", "weights": {"content": 1.0, "style": 1000000.0}}'
    )


@pytest.mark.parametrize("name", ["out.jpg", "out.webp", "out.tif"])
def test_sidecar_metadata_round_trip(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    imageio.save_image(Image.new("RGB", (4, 4)), path, METADATA)
    sidecar = imageio.sidecar_path(path)
    assert sidecar == tmp_path / f"{name}.json"
    assert sidecar.exists()
    assert imageio.read_metadata(path) == METADATA
    assert leftovers(tmp_path) == []


def test_metadata_absent(tmp_path: Path) -> None:
    for name in ("plain.png", "plain.jpg"):
        imageio.save_image(Image.new("RGB", (4, 4)), tmp_path / name)
        assert imageio.read_metadata(tmp_path / name) is None
    write(tmp_path / "foreign.png", Image.new("RGB", (2, 2)))
    assert imageio.read_metadata(tmp_path / "foreign.png") is None


def test_metadata_in_a_chunk_after_the_image_data(tmp_path: Path) -> None:
    from PIL.PngImagePlugin import PngInfo

    # Pillow writes text chunks before IDAT; other tools may put them after it.
    data = encoded(Image.new("RGB", (2, 2)), "PNG")
    info = PngInfo()
    info.add_itxt("artstyle", '{"late": true}')
    chunk_source = encoded(Image.new("RGB", (2, 2)), "PNG", pnginfo=info)
    start = chunk_source.index(b"iTXt") - 4
    length = int.from_bytes(chunk_source[start : start + 4], "big")
    chunk = chunk_source[start : start + 12 + length]
    end = data.index(b"IEND") - 4
    path = tmp_path / "late.png"
    path.write_bytes(data[:end] + chunk + data[end:])
    assert imageio.read_metadata(path) == {"late": True}


def test_stale_sidecar_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "out.jpg"
    imageio.save_image(Image.new("RGB", (4, 4)), path, {"run": 1})
    imageio.save_image(Image.new("RGB", (4, 4)), path)
    assert not imageio.sidecar_path(path).exists()
    assert imageio.read_metadata(path) is None


def test_metadata_with_non_json_values(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    imageio.save_image(Image.new("RGB", (2, 2)), path, {"model": Path("/w/vgg.pth"), "n": (1, 2)})
    assert imageio.read_metadata(path) == {"model": str(Path("/w/vgg.pth")), "n": [1, 2]}


def test_metadata_that_cannot_be_encoded_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ImageWriteError, match="metadata"):
        imageio.save_image(Image.new("RGB", (2, 2)), tmp_path / "out.png", {"k": {1: 1, "a": 2}})
    assert list(tmp_path.iterdir()) == []


def test_read_metadata_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="no such file"):
        imageio.read_metadata(tmp_path / "missing.png")
    with pytest.raises(ImageReadError, match="no such file"):
        imageio.read_metadata(tmp_path / "missing.jpg")
    (tmp_path / "text.png").write_text("not a png")
    with pytest.raises(ImageReadError, match="unknown format"):
        imageio.read_metadata(tmp_path / "text.png")

    path = tmp_path / "out.jpg"
    imageio.save_image(Image.new("RGB", (2, 2)), path)
    imageio.sidecar_path(path).write_text("{broken")
    with pytest.raises(ImageReadError, match="not valid JSON"):
        imageio.read_metadata(path)
    imageio.sidecar_path(path).write_text("[1, 2]")
    with pytest.raises(ImageReadError, match="not a JSON object"):
        imageio.read_metadata(path)


def test_sidecar_path() -> None:
    assert imageio.sidecar_path("out.jpg") == Path("out.jpg.json")
    assert imageio.sidecar_path(Path("a") / "b.TIFF") == Path("a") / "b.TIFF.json"


def test_output_formats_table() -> None:
    assert imageio.OUTPUT_FORMATS == {
        ".png": "PNG",
        ".jpg": "JPEG",
        ".jpeg": "JPEG",
        ".webp": "WEBP",
        ".tif": "TIFF",
        ".tiff": "TIFF",
    }


def test_all_errors_are_artstyle_errors() -> None:
    for error in (ConfigError, ImageReadError, ImageWriteError):
        assert issubclass(error, ArtstyleError)
