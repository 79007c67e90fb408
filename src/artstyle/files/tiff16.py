"""16-bit RGB TIFF files, written with tifffile (Pillow has no 16-bit RGB mode)."""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt

from artstyle.files.color_profile import srgb_profile
from artstyle.files.metadata import ascii_metadata

_TIFF_STRIP_BYTES = 1 << 18


def encode_tiff16(pixels: npt.NDArray[np.uint16], text: str | None) -> bytes:
    """A little-endian 16-bit RGB TIFF of H x W x 3 ``pixels``: Deflate with horizontal
    differencing, in strips of about 256 KiB, with the sRGB profile (tag 34675).

    Unless ``text`` is None, the metadata is also kept in the ImageDescription, as
    ASCII JSON; :func:`~artstyle.files.metadata.read_metadata` reads the sidecar, as
    for every format but PNG. The same pixels and text always give the same bytes.
    """
    import tifffile  # here, not at the top: importing it takes a noticeable time

    width = pixels.shape[1]
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        pixels,
        photometric="rgb",
        planarconfig="contig",
        rowsperstrip=max(1, _TIFF_STRIP_BYTES // (width * 6)),
        compression="zlib",
        compressionargs={"level": 6},
        predictor=True,
        iccprofile=srgb_profile(),
        description=None if text is None else ascii_metadata(text),
        metadata=None,  # no tifffile shape description of its own
        software=False,
        resolution=(72, 72),
        resolutionunit="inch",
    )
    return buffer.getvalue()
