"""Images from the wild (issue 5): colour profiles, orientations, odd modes, bombs, 16-bit
outputs, --no-clobber, and a fuzzer that feeds the loader random and damaged files.

Every input must end either in a correct RGB image or in artstyle's own ImageReadError.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import struct
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _icc
import numpy as np
import numpy.typing as npt
import pytest
import tifffile
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from artstyle import imageio
from artstyle.errors import ArtstyleWarning, ConfigError, ImageReadError, ImageWriteError
from artstyle.files import atomic, write

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def pixels(image: Image.Image) -> npt.NDArray[np.int32]:
    assert image.mode == "RGB"
    return np.asarray(image, dtype=np.int32)


def encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def artstyle_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, ArtstyleWarning)]


@contextlib.contextmanager
def recorded_warnings() -> Iterator[list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def blocks(*colours: tuple[int, int, int], side: int = 16, mode: str = "RGB") -> Image.Image:
    """Side-by-side squares of flat colour (big enough for JPEG's chroma subsampling)."""
    image = Image.new(mode, (side * len(colours), side))
    for i, colour in enumerate(colours):
        image.paste(colour, (i * side, 0, (i + 1) * side, side))
    return image


def centres(image: Image.Image, count: int, side: int = 16) -> list[tuple[int, ...]]:
    data = pixels(image)
    return [tuple(int(v) for v in data[side // 2, i * side + side // 2]) for i in range(count)]


def close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


# --------------------------------------------------------------------------- #
# ICC colour profiles
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(("name", "tolerance"), [("a.png", 2), ("a.tif", 2), ("a.jpg", 8), ("a.webp", 12)])
def test_an_rgb_profile_is_converted_to_srgb(tmp_path: Path, name: str, tolerance: int) -> None:
    # The profile's first channel is sRGB's green and its second sRGB's red.
    path = tmp_path / name
    blocks(RED, GREEN, BLUE, WHITE).save(path, icc_profile=_icc.swapped_profile(), quality=100)
    with recorded_warnings() as caught:
        image = imageio.read_image(path)
    assert artstyle_warnings(caught) == []
    expected = [GREEN, RED, BLUE, WHITE]
    for got, want in zip(centres(image, 4), expected, strict=True):
        assert close(got, want, tolerance), (got, want)
    assert image.info == {}  # nothing left that a second pass could apply again
    np.testing.assert_array_equal(pixels(imageio.as_image(image)), pixels(image))


def test_a_pil_image_with_a_profile_is_converted_by_as_image() -> None:
    image = blocks(RED, GREEN)
    image.info["icc_profile"] = _icc.swapped_profile()
    assert centres(imageio.as_image(image), 2) == [GREEN, RED]
    assert image.info["icc_profile"] == _icc.swapped_profile()  # the caller's image is untouched


def test_alpha_survives_the_profile_and_is_composited_on_white(tmp_path: Path) -> None:
    rgba = blocks(RED, RED, mode="RGBA")
    rgba.paste((255, 0, 0, 0), (16, 0, 32, 16))  # the second block fully transparent
    path = tmp_path / "a.png"
    rgba.save(path, icc_profile=_icc.swapped_profile())
    assert centres(imageio.read_image(path), 2) == [GREEN, WHITE]


def test_a_palette_image_with_a_profile(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    blocks(RED, BLUE).convert("P", palette=Image.Palette.ADAPTIVE, colors=2).save(
        path, icc_profile=_icc.swapped_profile()
    )
    assert centres(imageio.read_image(path), 2) == [GREEN, BLUE]


@pytest.mark.parametrize("mode", ["L", "LA", "I;16"])
def test_a_grey_profile(tmp_path: Path, mode: str) -> None:
    # A linear (gamma 1) grey profile: linear mid grey is sRGB 188.
    values = np.array([[0, 128, 255]], dtype=np.uint8)
    image = Image.fromarray(values).convert(mode) if mode != "I;16" else Image.fromarray(values.astype(np.uint16) * 257)
    path = tmp_path / "g.png"
    image.save(path, icc_profile=_icc.grey_profile(1.0))
    result = pixels(imageio.read_image(path))[0]
    assert [int(v[0]) for v in result] == [0, 188, 255]
    assert (result[:, 0] == result[:, 1]).all() and (result[:, 1] == result[:, 2]).all()


@pytest.mark.parametrize("name", ["c.tif", "c.jpg"])
def test_a_cmyk_profile(tmp_path: Path, name: str) -> None:
    # A profile that makes cyan ink print magenta: proof that the profile was used.
    def colour(c: int, m: int, y: int, k: int) -> tuple[int, int, int]:
        return (0, 0, 0) if k else (255 * (1 - m), 255 * (1 - c), 255 * (1 - y))

    cmyk = blocks((255, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 255), mode="CMYK")  # type: ignore[arg-type]
    path = tmp_path / name
    cmyk.save(path, icc_profile=_icc.cmyk_profile(colour), quality=100)
    got = centres(imageio.read_image(path), 3)
    for actual, want in zip(got, [(255, 0, 255), WHITE, (0, 0, 0)], strict=True):
        assert close(actual, want, 3), got


def test_an_unreadable_profile_is_ignored_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    blocks(RED, BLUE).save(path, icc_profile=b"this is no ICC profile" * 8)
    with recorded_warnings() as caught:
        image = imageio.read_image(path)
    assert centres(image, 2) == [RED, BLUE]
    assert artstyle_warnings(caught) == [f"'{path}': ignored its unreadable ICC colour profile; colours taken as sRGB"]


def test_a_profile_that_does_not_fit_the_mode_is_ignored_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "mismatch.png"
    blocks(RED, BLUE).save(path, icc_profile=_icc.grey_profile())
    with recorded_warnings() as caught:
        image = imageio.read_image(path)
    assert centres(image, 2) == [RED, BLUE]
    (message,) = artstyle_warnings(caught)
    assert message == f"'{path}': ignored its ICC colour profile, made for GRAY colours, not RGB pixels"


@pytest.mark.parametrize("mode", ["L", "I;16"])
def test_grey_pixels_with_an_rgb_profile(tmp_path: Path, mode: str) -> None:
    # Some programs tag grey images with an RGB profile; the grey is taken as R = G = B.
    linear = _icc.rgb_profile(_icc.SRGB_RED, _icc.SRGB_GREEN, _icc.SRGB_BLUE, gamma=1.0)
    values = np.array([[0, 128, 255]], dtype=np.uint8)
    image = Image.fromarray(values) if mode == "L" else Image.fromarray(values.astype(np.uint16) * 257)
    path = tmp_path / "g.png"
    image.save(path, icc_profile=linear)
    with recorded_warnings() as caught:
        result = pixels(imageio.read_image(path))[0]
    assert artstyle_warnings(caught) == []
    assert [tuple(int(c) for c in v) for v in result] == [(0, 0, 0), (188, 188, 188), WHITE]


def test_the_embedded_srgb_profile_reads_back_exactly(tmp_path: Path) -> None:
    source = Image.fromarray(np.random.default_rng(3).integers(0, 256, (9, 11, 3), dtype=np.uint8))
    for name in ("a.png", "a.tif"):
        imageio.save_image(source, tmp_path / name)
        np.testing.assert_array_equal(pixels(imageio.read_image(tmp_path / name)), np.asarray(source))


def test_the_srgb_profile_is_valid_and_always_the_same_bytes() -> None:
    data = imageio.srgb_profile()
    assert data == imageio.srgb_profile()
    assert struct.unpack(">6H", data[24:36]) == (2000, 1, 1, 0, 0, 0)
    profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
    assert profile.profile.xcolor_space.strip() == "RGB"
    assert "sRGB" in profile.profile.profile_description


# --------------------------------------------------------------------------- #
# Orientation and modes
# --------------------------------------------------------------------------- #

# What each EXIF orientation asks a viewer to do, in numpy terms.
UPRIGHT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("orientation", sorted(UPRIGHT))
def test_every_exif_orientation(tmp_path: Path, orientation: int) -> None:
    stored = np.random.default_rng(orientation).integers(0, 256, (2, 3, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    Image.fromarray(stored).save(path, exif=exif.tobytes())
    np.testing.assert_array_equal(pixels(imageio.read_image(path)), UPRIGHT[orientation](stored))


@pytest.mark.parametrize("orientation", sorted(UPRIGHT))
def test_every_exif_orientation_of_a_tiff_file(tmp_path: Path, orientation: int) -> None:
    # In a TIFF file the orientation is a tag of the image's own IFD, not a separate EXIF block.
    stored = np.random.default_rng(orientation).integers(0, 256, (2, 3, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.tif"
    Image.fromarray(stored).save(path, exif=exif)
    np.testing.assert_array_equal(pixels(imageio.read_image(path)), UPRIGHT[orientation](stored))


@pytest.mark.parametrize("orientation", sorted(UPRIGHT))
def test_every_exif_orientation_of_a_pil_image_leaves_the_callers_image_as_it_was(
    tmp_path: Path, orientation: int
) -> None:
    stored = np.random.default_rng(orientation).integers(0, 256, (2, 3, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    Image.fromarray(stored).save(path, exif=exif.tobytes())
    with Image.open(path) as opened:
        np.testing.assert_array_equal(pixels(imageio.as_image(opened)), UPRIGHT[orientation](stored))
        assert opened.size == (3, 2) and opened.getexif().get(0x0112) == orientation
        np.testing.assert_array_equal(np.asarray(opened), stored)


@pytest.mark.parametrize("value", [0, 9, 65535])
def test_an_unknown_orientation_is_ignored(tmp_path: Path, value: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = value
    path = tmp_path / "o.png"
    Image.new("RGB", (3, 2), RED).save(path, exif=exif.tobytes())
    assert imageio.read_image(path).size == (3, 2)


def test_unreadable_exif_is_ignored_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "bad-exif.png"
    Image.new("RGB", (3, 2), RED).save(path, exif=b"Exif\x00\x00garbage, not TIFF")
    with recorded_warnings() as caught:
        assert imageio.read_image(path).size == (3, 2)
    assert artstyle_warnings(caught) == [f"'{path}': ignored its unreadable EXIF data (the orientation is not known)"]


def test_sixteen_bit_rgb_files(tmp_path: Path) -> None:
    values = np.zeros((2, 3, 3), dtype=np.uint16)
    values[0, 0] = (65535, 0, 0)
    values[0, 1] = (257 * 100, 257 * 200, 65535)
    values[1] = 257 * 50
    original = values.copy()
    for name in ("rgb16.png", "rgb16.tif"):
        imageio.save_image(values, tmp_path / name, bit_depth=16)
        np.testing.assert_array_equal(values, original)  # the caller's array is not touched
        result = pixels(imageio.read_image(tmp_path / name))
        np.testing.assert_array_equal(result, values // 257)


def test_lab_tiff(tmp_path: Path) -> None:
    source = blocks(RED, GREEN, BLUE, WHITE)
    to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    path = tmp_path / "lab.tif"
    to_lab.apply(source).save(path)
    with Image.open(path) as stored:
        assert stored.mode == "LAB"
    for got, want in zip(centres(imageio.read_image(path), 4), [RED, GREEN, BLUE, WHITE], strict=True):
        assert close(got, want, 24), (got, want)  # 8-bit Lab is coarse


@pytest.mark.parametrize(("mode", "value"), [("HSV", (0, 255, 255)), ("PA", (1, 255)), ("RGBX", (255, 0, 0, 0))])
def test_more_pil_modes(mode: str, value: Any) -> None:
    image = Image.new(mode, (2, 2), value)
    if mode == "PA":
        image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    assert pixels(imageio.as_image(image))[0, 0].tolist() == list(RED)


@pytest.mark.parametrize(
    ("head", "found"),
    [
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC/HEIF"),
        (b"\x00\x00\x00\x0cJXL \r\n\x87\n\x00\x00", "JPEG XL"),
        (b"%PDF-1.7\n%\xe2\xe3", "PDF"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg">', "SVG"),
    ],
)
def test_formats_people_try_are_named(tmp_path: Path, head: bytes, found: str) -> None:
    path = tmp_path / "photo.img"
    path.write_bytes(head + bytes(200))
    with pytest.raises(ImageReadError) as info:
        imageio.read_image(path)
    assert str(info.value) == (
        f"cannot read image '{path}': a {found} file, which artstyle cannot read; convert it to PNG or JPEG first"
    )


# --------------------------------------------------------------------------- #
# The pixel limit, from the header, before decoding
# --------------------------------------------------------------------------- #


def png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def gif_header_only(width: int, height: int) -> bytes:
    screen = struct.pack("<HHBBB", width, height, 0, 0, 0)
    descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    return b"GIF89a" + screen + descriptor + b"\x02\x02\x44\x01\x00\x3b"


def bmp_header_only(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 16, 0, 0, 54) + info + bytes(16)


def tiff_header_only(width: int, height: int) -> bytes:
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1)]
    entries += [(273, 4, 1, 8 + 2 + 12 * 8 + 4), (277, 3, 1, 1), (279, 4, 1, 16)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + bytes(4)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + bytes(16)


def jpeg_header_only(width: int, height: int) -> bytes:
    data = encoded(Image.new("L", (8, 8)), "JPEG")
    at = data.index(b"\xff\xc0") + 5
    return data[:at] + struct.pack(">HH", height, width) + data[at + 4 :]


BOMBS = {
    "bomb.png": png_header_only(100_000, 100_000),
    "bomb.gif": gif_header_only(65_535, 65_535),
    "bomb.bmp": bmp_header_only(200_000, 100_000),
    "bomb.tif": tiff_header_only(100_000, 100_000),
    "bomb.jpg": jpeg_header_only(65_000, 65_000),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_a_decompression_bomb_is_refused_from_its_header(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(BOMBS[name])
    with recorded_warnings() as caught, pytest.raises(ImageReadError) as info:
        imageio.read_image(path)
    message = str(info.value)
    assert message.startswith(f"cannot read image '{path}': image too large (")
    assert message.endswith("; the limit is 200,000,000, see --max-pixels)")
    assert caught == []  # no DecompressionBombWarning either


def test_one_limit_applies_whatever_pillows_own_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow's own check warns above MAX_IMAGE_PIXELS and refuses above twice that.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    path = tmp_path / "a.png"
    Image.new("RGB", (30, 10), RED).save(path)  # 300 pixels: Pillow alone would refuse it
    with recorded_warnings() as caught:
        assert imageio.read_image(path, max_pixels=300).size == (30, 10)
        Image.new("RGB", (15, 10), RED).save(path)  # 150 pixels: Pillow alone would warn
        assert imageio.read_image(path, max_pixels=300).size == (15, 10)
    assert caught == []
    with pytest.raises(ImageReadError, match=r"\(15x10 px, 150 pixels; the limit is 149"):
        imageio.read_image(path, max_pixels=149)
    bomb = tmp_path / "bomb.png"  # over twice the limit: Pillow's own check refuses it, in the same words
    bomb.write_bytes(png_header_only(1000, 1000))
    with pytest.raises(ImageReadError, match=r"image too large \(1,000,000 pixels; the limit is 10, see --max-pixels"):
        imageio.read_image(bomb, max_pixels=10)
    assert Image.MAX_IMAGE_PIXELS == 100  # Pillow's setting is restored


def test_pixel_limit_sets_the_default_for_every_read(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.new("RGB", (10, 10)).save(path)
    assert imageio.max_pixels() == imageio.DEFAULT_MAX_PIXELS
    with imageio.pixel_limit(99):
        assert imageio.max_pixels() == 99
        with pytest.raises(ImageReadError, match="the limit is 99"):
            imageio.read_image(path)
        with pytest.raises(ImageReadError, match="the limit is 99"):
            imageio.as_image(str(path))
        assert imageio.read_image(path, max_pixels=100).size == (10, 10)
    assert imageio.read_image(path).size == (10, 10)


@pytest.mark.parametrize("value", [0, -5, 2.5, "100", True, None])
def test_a_bad_pixel_limit_is_a_config_error(value: Any) -> None:
    with pytest.raises(ConfigError, match="pixels"):
        imageio.check_max_pixels(value)


def test_an_image_without_pixels(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(png_header_only(0, 5))
    with pytest.raises(ImageReadError):
        imageio.read_image(path)


# --------------------------------------------------------------------------- #
# 16-bit outputs, decoded here independently of artstyle and Pillow
# --------------------------------------------------------------------------- #


def decode_png16(data: bytes) -> tuple[npt.NDArray[np.uint16], dict[bytes, bytes]]:
    """A 16-bit RGB PNG's pixels and chunks, by the PNG specification (CRCs checked)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks, idat = 8, {}, b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind, body = data[position + 4 : position + 8], data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        if kind == b"IDAT":
            idat += body
        else:
            chunks[kind] = body
        position += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour, interlace) == (16, 2, 0)
    raw = zlib.decompress(idat)
    stride, bpp = width * 6, 6
    rows, previous = [], [0] * stride
    for y in range(height):
        kind, line = raw[y * (stride + 1)], list(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = previous[x]
            c = previous[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) % 256
            elif kind == 2:
                line[x] = (line[x] + b) % 256
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) % 256
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) % 256
            else:
                assert kind == 0
        rows.append(line)
        previous = line
    pixels16 = np.frombuffer(b"".join(bytes(row) for row in rows), dtype=">u2").reshape(height, width, 3)
    return pixels16.astype(np.uint16), chunks


def decode_tiff16(data: bytes) -> tuple[npt.NDArray[np.uint16], dict[int, Any]]:
    """A little-endian, Deflate + horizontal-predictor 16-bit RGB TIFF, by the TIFF 6 specification."""
    assert data[:4] == b"II*\x00"
    (ifd,) = struct.unpack("<I", data[4:8])
    (count,) = struct.unpack("<H", data[ifd : ifd + 2])
    sizes = {2: 1, 3: 2, 4: 4, 5: 8, 7: 1}  # ASCII, SHORT, LONG, RATIONAL, UNDEFINED
    tags: dict[int, Any] = {}
    for i in range(count):
        tag, kind, n, value = struct.unpack("<HHII", data[ifd + 2 + 12 * i : ifd + 14 + 12 * i])
        size = sizes[kind] * n
        raw = data[ifd + 10 + 12 * i : ifd + 10 + 12 * i + size] if size <= 4 else data[value : value + size]
        tags[tag] = (
            raw
            if kind in (2, 7)
            else list(struct.unpack(f"<{n * (2 if kind == 5 else 1)}{'H' if kind == 3 else 'I'}", raw))
        )
    width, height = tags[256][0], tags[257][0]
    assert tags[258] == [16, 16, 16] and tags[259] == [8] and tags[262] == [2] and tags[317] == [2]
    strips = b"".join(
        zlib.decompress(data[offset : offset + length]) for offset, length in zip(tags[273], tags[279], strict=True)
    )
    values = np.frombuffer(strips, dtype="<u2").reshape(height, width, 3).astype(np.uint64)
    return (np.cumsum(values, axis=1) % 65536).astype(np.uint16), tags


def test_sixteen_bit_png_is_quantised_from_the_float_image(tmp_path: Path) -> None:
    tensor = torch.rand(1, 3, 21, 300, generator=torch.Generator().manual_seed(1))
    tensor[0, :, 0, :3] = torch.tensor([0.0, 1.0, 0.5])
    path = tmp_path / "deep.png"
    imageio.save_image(tensor, path, {"answer": 42}, bit_depth=16)
    values, chunks = decode_png16(path.read_bytes())
    expected = np.rint(tensor[0].permute(1, 2, 0).numpy().astype(np.float64) * 65535).astype(np.uint16)
    np.testing.assert_array_equal(values, expected)
    assert len(np.unique(values)) > 256 * 4  # finer than 8 bits
    assert zlib.decompress(chunks[b"iCCP"].split(b"\x00", 1)[1][1:]) == imageio.srgb_profile()
    assert imageio.read_metadata(path) == {"answer": 42}
    with Image.open(path) as image:  # Pillow reads it too (as 8-bit)
        image.load()
        assert image.size == (300, 21) and image.info["icc_profile"] == imageio.srgb_profile()


def test_sixteen_bit_tiff_is_quantised_from_the_float_image(tmp_path: Path) -> None:
    array = np.random.default_rng(2).random((700, 70, 3)).astype(np.float32)  # several strips
    path = tmp_path / "deep.tif"
    imageio.save_image(array, path, {"answer": 42}, bit_depth=16)
    values, tags = decode_tiff16(path.read_bytes())
    np.testing.assert_array_equal(values, np.rint(array.astype(np.float64) * 65535).astype(np.uint16))
    assert len(tags[273]) > 1
    assert tags[34675] == imageio.srgb_profile()
    assert imageio.read_metadata(path) == {"answer": 42}  # in the sidecar
    with Image.open(path) as image:
        image.load()
        assert image.size == (70, 700)
        assert np.abs(np.asarray(image.convert("RGB"), dtype=np.int32) - (values >> 8)).max() <= 1


def test_sixteen_bit_tiff_embeds_the_profile_and_the_metadata_as_its_description(tmp_path: Path) -> None:
    tensor = torch.rand(1, 3, 5, 7, generator=torch.Generator().manual_seed(4))
    metadata = {"answer": 42, "style": "café ☕.png"}
    path = tmp_path / "deep.tif"
    imageio.save_image(tensor, path, metadata, bit_depth=16)
    with Image.open(path) as image:  # Pillow
        assert image.info["icc_profile"] == imageio.srgb_profile()
        description = image.tag_v2[270]
    assert description.isascii() and json.loads(description) == metadata
    assert imageio.read_metadata(path) == metadata  # from the sidecar, as before
    with tifffile.TiffFile(path) as tiff:  # and tifffile: 16 bits per channel, exactly
        page = tiff.pages[0]
        assert page.tags["InterColorProfile"].value == imageio.srgb_profile()
        assert page.description == description
        expected = np.rint(tensor[0].permute(1, 2, 0).numpy().astype(np.float64) * 65535).astype(np.uint16)
        np.testing.assert_array_equal(page.asarray(), expected)


def test_sixteen_bit_tiff_without_metadata_has_no_description(tmp_path: Path) -> None:
    path = tmp_path / "deep.tif"
    imageio.save_image(np.zeros((2, 3, 3), dtype=np.uint16), path, bit_depth=16)
    with Image.open(path) as image:
        assert 270 not in image.tag_v2
        assert image.info["icc_profile"] == imageio.srgb_profile()
    assert not imageio.sidecar_path(path).exists()


def test_sixteen_bits_from_an_eight_bit_image_scales_by_257(tmp_path: Path) -> None:
    image = Image.new("RGB", (2, 1), (1, 128, 255))
    imageio.save_image(image, tmp_path / "a.png", bit_depth=16)
    values, _ = decode_png16((tmp_path / "a.png").read_bytes())
    assert values[0, 0].tolist() == [257, 128 * 257, 65535]


@pytest.mark.parametrize(
    ("name", "bit_depth", "message"),
    [
        ("a.jpg", 16, "--bit-depth 16: JPEG holds only 8 bits per channel; write a .png or .tif file"),
        ("a.webp", 16, "--bit-depth 16: WEBP holds only 8 bits"),
        ("a.png", 12, "--bit-depth: expected 8 or 16, got 12"),
        ("a.png", True, "--bit-depth: expected 8 or 16, got True"),
        ("a.png", 16.0, "--bit-depth: expected 8 or 16, got 16.0"),
    ],
)
def test_bad_bit_depths(tmp_path: Path, name: str, bit_depth: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        imageio.save_image(Image.new("RGB", (2, 2)), tmp_path / name, bit_depth=bit_depth)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "bit_depth"), [("a.png", 8), ("a.png", 16), ("a.tif", 8), ("a.tif", 16), ("a.jpg", 8), ("a.webp", 8)]
)
def test_every_output_embeds_srgb_and_is_the_same_bytes_every_time(tmp_path: Path, name: str, bit_depth: int) -> None:
    tensor = torch.rand(1, 3, 12, 17, generator=torch.Generator().manual_seed(5))
    first, second = tmp_path / name, tmp_path / f"again-{name}"
    for path in (first, second):
        imageio.save_image(tensor, path, {"k": "v"}, bit_depth=bit_depth)
    assert first.read_bytes() == second.read_bytes()
    with Image.open(first) as image:
        assert image.info["icc_profile"] == imageio.srgb_profile()


def test_a_failed_sixteen_bit_save_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(b"old")

    def no_memory(*args: Any) -> bytes:
        raise MemoryError

    monkeypatch.setattr(write, "encode_png16", no_memory)  # as save_image sees it
    with pytest.raises(ImageWriteError, match="not enough memory to encode it"):
        imageio.save_image(torch.zeros(1, 3, 2, 2), path, bit_depth=16)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


# --------------------------------------------------------------------------- #
# Never overwrite with overwrite=False (--no-clobber)
# --------------------------------------------------------------------------- #


def test_no_clobber_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(b"mine")
    with pytest.raises(ImageWriteError, match=r"'.*a\.png': the file already exists \(not overwritten: --no-clobber\)"):
        imageio.save_image(Image.new("RGB", (2, 2)), path, overwrite=False)
    assert path.read_bytes() == b"mine"
    imageio.save_image(Image.new("RGB", (2, 2)), tmp_path / "b.png", overwrite=False)
    assert (tmp_path / "b.png").exists()


def test_no_clobber_refuses_an_existing_sidecar(tmp_path: Path) -> None:
    (tmp_path / "a.jpg.json").write_text("{}")
    with pytest.raises(ImageWriteError, match=r"metadata file .*a\.jpg\.json' already exists"):
        imageio.save_image(Image.new("RGB", (2, 2)), tmp_path / "a.jpg", {"x": 1}, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg.json"]


@pytest.mark.parametrize("hard_links", [True, False])
def test_no_clobber_holds_against_a_file_created_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hard_links: bool
) -> None:
    if not hard_links:

        def no_link(*args: Any) -> None:
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_link)
    path = tmp_path / "a.bin"
    with pytest.raises(FileExistsError), atomic.atomic_path(path, overwrite=False) as temp:
        temp.write_bytes(b"new")
        path.write_bytes(b"someone else's")
    assert path.read_bytes() == b"someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]
    fresh = tmp_path / "fresh.bin"
    atomic.atomic_write_bytes(fresh, b"data", overwrite=False)
    assert fresh.read_bytes() == b"data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "fresh.bin"]


# --------------------------------------------------------------------------- #
# Fuzzing the loader
# --------------------------------------------------------------------------- #

# Pillow writers and the modes each takes (checked to round-trip).
WRITABLE: dict[str, tuple[str, ...]] = {
    "PNG": ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"),
    "TIFF": ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "LAB", "YCbCr"),
    "JPEG": ("L", "RGB", "CMYK"),
    "GIF": ("L", "P", "RGB"),
    "BMP": ("1", "L", "P", "RGB"),
    "WEBP": ("RGB", "RGBA"),
    "PPM": ("1", "L", "RGB", "I;16", "F"),
    "TGA": ("L", "LA", "P", "RGB", "RGBA"),
    "ICO": ("RGBA",),
    "IM": ("CMYK", "YCbCr", "F"),
}
WITH_PROFILES = {"PNG", "TIFF", "JPEG", "WEBP"}
WITH_EXIF = {"PNG", "TIFF", "JPEG", "WEBP"}
PROFILES = {
    "none": None,
    "rgb": _icc.swapped_profile(),
    "grey": _icc.grey_profile(2.2),
    "cmyk": _icc.cmyk_profile(lambda c, m, y, k: (0, 0, 0) if k else (255 * (1 - c), 255 * (1 - m), 255 * (1 - y))),
    "garbage": b"\x00\x00\x01\x00not a profile" * 4,
}


def random_image(mode: str, width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    if mode == "I":
        return Image.fromarray(rng.integers(-(2**20), 2**20, (height, width), dtype=np.int32))
    if mode == "F":
        values = rng.normal(0.5, 2.0, (height, width)).astype(np.float32)
        values.flat[0] = np.nan
        return Image.fromarray(values)
    size = len(Image.new(mode, (width, height)).tobytes())
    image = Image.frombytes(mode, (width, height), rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    if mode in ("P", "PA"):
        image.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tobytes())
    return image


class Hang(BaseException):
    """Raised by the watchdog when one example takes absurdly long (a hang, not slowness)."""


@contextlib.contextmanager
def watchdog(seconds: int) -> Iterator[None]:
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def alarm(signum: int, frame: object) -> None:
        raise Hang

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@st.composite
def image_files(draw: st.DrawFn) -> tuple[bytes, tuple[int, int], int]:
    """An encoded image of a random format, mode, size, profile and orientation."""
    fmt = draw(st.sampled_from(sorted(WRITABLE)))
    mode = draw(st.sampled_from(WRITABLE[fmt]))
    width, height = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    image = random_image(mode, width, height, draw(st.integers(0, 2**16)))
    options: dict[str, Any] = {}
    if fmt in WITH_PROFILES:
        profile = PROFILES[draw(st.sampled_from(sorted(PROFILES)))]
        if profile is not None:
            options["icc_profile"] = profile
    orientation = 1
    if fmt in WITH_EXIF and draw(st.booleans()):
        orientation = draw(st.integers(0, 9))
        exif = Image.Exif()
        exif[0x0112] = orientation
        options["exif"] = exif.tobytes()
    if mode == "P" and fmt in ("PNG", "GIF") and draw(st.booleans()):
        options["transparency"] = 0
    if fmt == "ICO":
        options["sizes"] = [(width, height)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = encoded(image, fmt, **options)
    upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    return data, upright, orientation


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    file=image_files(),
    damage=st.sampled_from(["none", "truncate", "overwrite", "insert"]),
    where=st.floats(0.0, 1.0),
    garbage=st.binary(min_size=1, max_size=24),
)
def test_fuzz_every_file_is_an_rgb_image_or_an_image_read_error(
    tmp_path: Path, file: tuple[bytes, tuple[int, int], int], damage: str, where: float, garbage: bytes
) -> None:
    data, upright, _ = file
    at = int(where * (len(data) - 1))
    if damage == "truncate":
        data = data[: max(1, at)]
    elif damage == "overwrite":
        data = data[:at] + garbage + data[at + len(garbage) :]
    elif damage == "insert":
        data = data[:at] + garbage + data[at:]
    path = tmp_path / "fuzz.img"
    path.write_bytes(data)
    with watchdog(60), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            image = imageio.read_image(path)
        except ImageReadError as exc:
            message = str(exc)
            assert message.startswith(f"cannot read image '{path}': ") and "\n" not in message
            assert damage != "none", message  # an intact file must be read
            return
    assert image.mode == "RGB"
    assert image.width >= 1 and image.height >= 1
    assert image.info == {}
    if damage == "none":
        assert image.size == upright


def test_fuzz_covers_every_writable_mode() -> None:
    # The table above is what the fuzzer draws from; each entry must really encode.
    for fmt, modes in WRITABLE.items():
        for mode in modes:
            image = random_image(mode, 5, 4, 0)
            options = {"sizes": [(5, 4)]} if fmt == "ICO" else {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. Pillow's deprecation of the IM format
                with Image.open(io.BytesIO(encoded(image, fmt, **options))) as back:
                    assert back.size == (5, 4), (fmt, mode)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_ycbcr_tiff_read_by_tifffile_is_turned_as_pillow_turns_tiffs(tmp_path: Path, orientation: int) -> None:
    # Pillow turns a TIFF upright while it decodes it; tifffile, which reads the YCbCr TIFFs
    # Pillow cannot, gives the pixels as stored: the same picture either way.
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 13
    exif = Image.Exif()
    exif[0x0112] = orientation
    pictures = []
    for mode in ("RGB", "YCbCr"):
        path = tmp_path / f"{mode}.tif"
        Image.fromarray(pixels, "RGB").convert(mode).save(path, exif=exif.tobytes())
        pictures.append(np.asarray(imageio.read_image(path), dtype=np.int16))
    assert pictures[0].shape == pictures[1].shape
    assert np.abs(pictures[0] - pictures[1]).max() <= 3  # YCbCr's rounding


@pytest.mark.parametrize("size", [(1, 1), (5, 4), (24, 17)])
def test_an_uncompressed_ycbcr_tiff_as_pillow_writes_it_is_read(tmp_path: Path, size: tuple[int, int]) -> None:
    # Pillow 12 writes these (no chroma subsampling) and its own reader takes them for truncated.
    path = tmp_path / "ycbcr.tif"
    Image.new("YCbCr", size, (100, 120, 130)).save(path)
    picture = imageio.read_image(path)
    assert picture.size == size and picture.mode == "RGB"
    assert picture.getpixel((0, 0)) == Image.new("YCbCr", (1, 1), (100, 120, 130)).convert("RGB").getpixel((0, 0))
    path.write_bytes(path.read_bytes()[:-2])  # and one cut short is still an error
    with pytest.raises(ImageReadError, match="truncated or corrupt"):
        imageio.read_image(path)
