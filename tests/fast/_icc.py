"""Tiny ICC profiles built byte by byte for the tests (ICC.1 version 2 layout).

Pillow can only create sRGB, Lab and XYZ profiles, so the profiles photos and scans
carry (wide-gamut RGB, grey, CMYK) are made here from their definitions:

* :func:`rgb_profile` - a matrix/TRC display profile from D50 colorants and a gamma;
* :func:`grey_profile` - a grey profile with a gamma curve;
* :func:`cmyk_profile` - a CMYK output profile whose A2B0 table maps each of the 16
  corners of the CMYK cube to a chosen sRGB colour (through PCS Lab).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from PIL import Image, ImageCms

D50 = (0.9642, 1.0, 0.8249)


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(values: Sequence[float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in values)


def _curve(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"


def _description(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    return b"desc\0\0\0\0" + struct.pack(">I", len(ascii_text)) + ascii_text + bytes(4 + 4 + 2 + 1 + 67)


def _profile(device_class: bytes, space: bytes, pcs: bytes, tags: dict[bytes, bytes]) -> bytes:
    count = len(tags)
    offset = 128 + 4 + 12 * count
    table, data = [struct.pack(">I", count)], []
    for signature, body in tags.items():
        padded = body + b"\0" * (-len(body) % 4)
        table.append(signature + struct.pack(">II", offset, len(body)))
        data.append(padded)
        offset += len(padded)
    header = bytearray(128)
    struct.pack_into(">I", header, 0, offset)
    header[8:12] = bytes([2, 0x10, 0, 0])
    header[12:16] = device_class
    header[16:20] = space
    header[20:24] = pcs
    header[36:40] = b"acsp"
    header[68:80] = b"".join(_s15(v) for v in D50)
    return bytes(header) + b"".join(table) + b"".join(data)


def rgb_profile(red: Sequence[float], green: Sequence[float], blue: Sequence[float], gamma: float = 2.2) -> bytes:
    """An RGB display profile with these D50 colorants (XYZ of each full primary)."""
    curve = _curve(gamma)
    tags = {
        b"desc": _description("test RGB"),
        b"wtpt": _xyz(D50),
        b"rXYZ": _xyz(red),
        b"gXYZ": _xyz(green),
        b"bXYZ": _xyz(blue),
        b"rTRC": curve,
        b"gTRC": curve,
        b"bTRC": curve,
    }
    return _profile(b"mntr", b"RGB ", b"XYZ ", tags)


# The sRGB primaries adapted to D50, as in every sRGB ICC profile.
SRGB_RED = (0.4361, 0.2225, 0.0139)
SRGB_GREEN = (0.3851, 0.7169, 0.0971)
SRGB_BLUE = (0.1431, 0.0606, 0.7141)


def swapped_profile() -> bytes:
    """An RGB profile whose first channel is sRGB's green and second sRGB's red."""
    return rgb_profile(SRGB_GREEN, SRGB_RED, SRGB_BLUE)


def grey_profile(gamma: float = 1.0) -> bytes:
    return _profile(
        b"mntr", b"GRAY", b"XYZ ", {b"desc": _description("test grey"), b"wtpt": _xyz(D50), b"kTRC": _curve(gamma)}
    )


def _lab16(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """The Lab of an sRGB colour in the ICC version 2 16-bit encoding."""
    to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    lightness, a, b = to_lab.apply(Image.new("RGB", (1, 1), rgb)).getpixel((0, 0))  # type: ignore[misc]
    # Pillow's 8-bit Lab: L 0-255 for 0-100, a and b offset by 128.
    return round(lightness / 255 * 0xFF00), a * 256, b * 256


def cmyk_profile(colour: Callable[[int, int, int, int], tuple[int, int, int]]) -> bytes:
    """A CMYK profile mapping each corner (c, m, y, k in {0, 1}) to the sRGB ``colour(c, m, y, k)``."""
    identity = [0, 0xFFFF]
    grid = bytearray()
    for c in (0, 1):
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    grid += struct.pack(">3H", *_lab16(colour(c, m, y, k)))
    matrix = b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    lut = (
        b"mft2\0\0\0\0"
        + bytes([4, 3, 2, 0])
        + matrix
        + struct.pack(">HH", 2, 2)
        + struct.pack(">8H", *(identity * 4))
        + bytes(grid)
        + struct.pack(">6H", *(identity * 3))
    )
    tags = {b"desc": _description("test CMYK"), b"wtpt": _xyz(D50), b"A2B0": lut}
    return _profile(b"prtr", b"CMYK", b"Lab ", tags)
