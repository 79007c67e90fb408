"""16-bit RGB TIFF files (Pillow has no 16-bit RGB mode)."""

from __future__ import annotations

import struct
import zlib
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from artstyle.files.color_profile import srgb_profile

# TIFF field types
_SHORT, _LONG, _RATIONAL, _UNDEFINED = 3, 4, 5, 7
_TIFF_STRIP_BYTES = 1 << 18

TiffField: TypeAlias = tuple[int, int, bytes]  # (type, count, value bytes)


def _tiff_field(kind: int, values: list[int] | bytes) -> TiffField:
    if isinstance(values, bytes):
        return kind, len(values), values
    if kind == _SHORT:
        return kind, len(values), struct.pack(f"<{len(values)}H", *values)
    count = len(values) // 2 if kind == _RATIONAL else len(values)
    return kind, count, struct.pack(f"<{len(values)}I", *values)  # LONGs; a RATIONAL is two


def encode_tiff16(pixels: npt.NDArray[np.uint16], text: str | None) -> bytes:
    """A little-endian 16-bit RGB TIFF: Deflate with horizontal differencing, the sRGB profile.

    Layout: header, the one IFD, the values that do not fit in an IFD entry, the
    strips. (``text`` goes into the JSON sidecar, as for every format but PNG.)
    """
    del text
    height, width, _ = pixels.shape
    rows_per_strip = max(1, _TIFF_STRIP_BYTES // (width * 6))
    predicted = np.array(pixels, dtype="<u2", order="C", copy=True)  # never the caller's array
    predicted[:, 1:] = pixels[:, 1:] - pixels[:, :-1]  # horizontal predictor, modulo 2**16
    strips = [zlib.compress(predicted[i : i + rows_per_strip].tobytes(), 6) for i in range(0, height, rows_per_strip)]
    fields: dict[int, TiffField] = {
        256: _tiff_field(_LONG, [width]),
        257: _tiff_field(_LONG, [height]),
        258: _tiff_field(_SHORT, [16, 16, 16]),
        259: _tiff_field(_SHORT, [8]),  # Adobe Deflate
        262: _tiff_field(_SHORT, [2]),  # RGB
        273: _tiff_field(_LONG, [0] * len(strips)),  # strip offsets: the real ones below
        277: _tiff_field(_SHORT, [3]),
        278: _tiff_field(_LONG, [rows_per_strip]),
        279: _tiff_field(_LONG, [len(strip) for strip in strips]),
        282: _tiff_field(_RATIONAL, [72, 1]),
        283: _tiff_field(_RATIONAL, [72, 1]),
        284: _tiff_field(_SHORT, [1]),  # interleaved samples
        296: _tiff_field(_SHORT, [2]),  # resolution in inches
        317: _tiff_field(_SHORT, [2]),  # horizontal differencing
        339: _tiff_field(_SHORT, [1, 1, 1]),  # unsigned integers
        34675: _tiff_field(_UNDEFINED, srgb_profile()),
    }
    extra_start = 8 + 2 + 12 * len(fields) + 4
    extra_size = sum(len(value) + len(value) % 2 for _, _, value in fields.values() if len(value) > 4)
    offsets = [extra_start + extra_size + sum(len(strip) for strip in strips[:i]) for i in range(len(strips))]
    if extra_start + extra_size + sum(len(strip) for strip in strips) >= 1 << 32:
        raise OverflowError("too large for a TIFF file (over 4 GiB)")
    fields[273] = _tiff_field(_LONG, offsets)

    entries, extra = bytearray(struct.pack("<H", len(fields))), bytearray()
    for tag in sorted(fields):
        kind, count, value = fields[tag]
        if len(value) <= 4:
            entries += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\x00")
        else:
            entries += struct.pack("<HHII", tag, kind, count, extra_start + len(extra))
            extra += value + b"\x00" * (len(value) % 2)  # values start on even offsets
    entries += struct.pack("<I", 0)  # no further IFD
    return b"II*\x00" + struct.pack("<I", 8) + bytes(entries) + bytes(extra) + b"".join(strips)
