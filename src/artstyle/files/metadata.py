"""The JSON metadata stored with every output: in a PNG text chunk, else in a sidecar file.

:func:`~artstyle.files.write.save_image` stores it inside PNG files, in an iTXt chunk
with key :data:`METADATA_KEY`; for other formats in the sidecar ``<path>.json``
(:func:`sidecar_path`). :func:`read_metadata` reads it back from either place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from artstyle.errors import ImageReadError
from artstyle.files import limits
from artstyle.files.problems import StrPath, os_problem, path_text, write_error
from artstyle.files.read import check_regular_file, open_image

__all__ = ["METADATA_KEY", "read_metadata", "sidecar_path"]

#: Key of the PNG text chunk (and nothing else) that carries artstyle's metadata.
METADATA_KEY = "artstyle"


def sidecar_path(path: StrPath) -> Path:
    """Return the metadata sidecar of a non-PNG output: ``out.jpg`` -> ``out.jpg.json``."""
    return Path(os.fspath(path) + ".json")


def encode_metadata(name: str, metadata: Mapping[str, object]) -> str:
    """``metadata`` as JSON text (UTF-8, keys sorted); ImageWriteError naming ``name`` when it cannot be."""
    try:
        # default=str: a Path or similar must never make a finished run unsavable.
        return json.dumps(dict(metadata), sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError) as exc:
        raise write_error(name, f"metadata cannot be stored as JSON ({exc})") from exc


def ascii_metadata(text: str) -> str:
    """The JSON ``text`` of :func:`encode_metadata` with every non-ASCII character escaped,
    for fields that hold only 7-bit ASCII (a TIFF ImageDescription)."""
    return json.dumps(json.loads(text), sort_keys=True, ensure_ascii=True)


def _decode_metadata(source: str, text: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ImageReadError(f"cannot read metadata of '{source}': not valid JSON") from exc
    if not isinstance(value, dict):
        raise ImageReadError(f"cannot read metadata of '{source}': not a JSON object")
    return value


def read_metadata(path: StrPath) -> dict[str, object] | None:
    """Return the metadata stored by :func:`~artstyle.files.write.save_image`, or None when there is none.

    For ``.png`` files it is read from the ``"artstyle"`` text chunk, for other
    files from the sidecar ``<path>.json``.

    Raises ImageReadError when the image (or an existing sidecar) cannot be read
    or the stored metadata is not a JSON object.
    """
    name = path_text(path, "image path")
    if Path(name).suffix.lower() == ".png":
        return _png_metadata(name)
    check_regular_file(name)
    sidecar = sidecar_path(name)
    try:
        data = sidecar.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ImageReadError(f"cannot read metadata file '{sidecar}': {os_problem(exc)}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImageReadError(f"cannot read metadata file '{sidecar}': not UTF-8 text") from exc
    return _decode_metadata(str(sidecar), text)


def _png_metadata(name: str) -> dict[str, object] | None:
    with open_image(name, limits.max_pixels()) as image:
        text = image.info.get(METADATA_KEY)
        if text is None and hasattr(image, "text"):
            # Chunks after the image data are only seen once it is decoded.
            text = image.text.get(METADATA_KEY)
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return _decode_metadata(name, str(text))
