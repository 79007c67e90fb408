"""A 16-bit RGB PNG encoder, written by hand because no maintained library writes one
with both an ``iCCP`` chunk (the sRGB profile) and a text chunk of our own key.

Checked in December 2026, against the releases current then:

* Pillow 12.3: no 16-bit RGB mode at all (``Image.fromarray`` refuses an
  H x W x 3 uint16 array, ``frombytes`` knows no ``RGB;16B`` mode, and its PNG
  writer's modes are ``1``, ``L``, ``LA``, ``P``, ``RGB``, ``RGBA`` at 8 bits and
  grey ``I``/``I;16`` at 16); raw ``RGB;16B`` data is decoded down to 8-bit RGB.
* pypng 0.20220715.0 (its latest release): ``png.Writer`` writes 16-bit RGB but
  takes only gAMA, sBIT, tRNS, bKGD and pHYs chunks, no ``iCCP`` nor text; adding
  them means assembling the chunks by hand anyway (``png.write_chunks``).
* imagecodecs 2026.3.6: ``png_encode``, ``apng_encode`` and ``spng_encode`` take the
  pixels and compression settings only, no profile or text.
* OpenCV 5.0 (opencv-python-headless 5.0.0.93): ``cv2.imencodeWithMetadata`` writes
  16-bit RGB with ``iCCP``, but its only text is XMP under the fixed key
  ``XML:com.adobe.xmp``, so not the ``artstyle`` chunk that
  :func:`~artstyle.files.metadata.read_metadata` reads; and it is a 60 MB wheel.
* imageio 2.38.2: writes PNG through Pillow or OpenCV (above), or FreeImage, a
  binary library it downloads at run time.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import numpy.typing as npt

from artstyle.files.color_profile import srgb_profile
from artstyle.files.metadata import METADATA_KEY

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IDAT_CHUNK = 1 << 20
_PNG_FILTER_ROWS = 256  # rows filtered at a time, to bound the memory used


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _paeth(a: npt.NDArray[np.int16], b: npt.NDArray[np.int16], c: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _png_filtered(rows: npt.NDArray[np.uint8], bpp: int) -> bytes:
    """Scanlines with the PNG filter type byte, each row filtered by whichever of the five
    standard filters gives the smallest sum of absolute (signed) values."""
    height = rows.shape[0]
    out = bytearray()
    for start in range(0, height, _PNG_FILTER_ROWS):
        raw = rows[start : start + _PNG_FILTER_ROWS].astype(np.int16)
        above = np.zeros_like(raw)
        above[1:] = raw[:-1]
        if start:
            above[0] = rows[start - 1]
        left = np.zeros_like(raw)
        left[:, bpp:] = raw[:, :-bpp]
        upper_left = np.zeros_like(raw)
        upper_left[:, bpp:] = above[:, :-bpp]
        candidates = np.stack(
            [raw, raw - left, raw - above, raw - (left + above) // 2, raw - _paeth(left, above, upper_left)]
        ).astype(np.uint8)  # wraps modulo 256, as PNG specifies
        cost = np.abs(candidates.view(np.int8).astype(np.int32)).sum(axis=2)
        best = cost.argmin(axis=0)
        chosen = candidates[best, np.arange(raw.shape[0])]
        block = np.concatenate([best.astype(np.uint8)[:, None], chosen], axis=1)
        out += block.tobytes()
    return bytes(out)


def encode_png16(pixels: npt.NDArray[np.uint16], text: str | None) -> bytes:
    """A 16-bit RGB PNG (colour type 2) of H x W x 3 ``pixels``, with the sRGB profile
    and, unless ``text`` is None, the metadata text in an ``artstyle`` iTXt chunk."""
    height, width, _ = pixels.shape
    rows = np.ascontiguousarray(pixels, dtype=">u2").view(np.uint8).reshape(height, width * 6)
    data = zlib.compress(_png_filtered(rows, 6), 6)
    chunks = [
        _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)),
        _png_chunk(b"iCCP", b"sRGB\x00\x00" + zlib.compress(srgb_profile())),
    ]
    if text is not None:
        chunks.append(_png_chunk(b"iTXt", METADATA_KEY.encode("latin-1") + b"\x00\x00\x00\x00\x00" + text.encode()))
    chunks += [_png_chunk(b"IDAT", data[i : i + _PNG_IDAT_CHUNK]) for i in range(0, len(data), _PNG_IDAT_CHUNK)]
    chunks.append(_png_chunk(b"IEND", b""))
    return _PNG_SIGNATURE + b"".join(chunks)
