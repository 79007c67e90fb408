"""The example photos and paintings that ship with artstyle (their licences: ``LICENSES.md`` here).

They are package data, so they are there after ``pip install artstyle`` as in a source
checkout: the web page offers them, and ``python -m artstyle.examples`` prints their folder
for a first command::

    EX=$(python -m artstyle.examples)
    artstyle "$EX/content/chelsea.png" "$EX/styles/starry_night.jpg" -o cat.png --preset draft
"""

from __future__ import annotations

from pathlib import Path

#: The folder of the examples: ``content/`` (photos), ``styles/`` (paintings), ``LICENSES.md``.
DIRECTORY = Path(__file__).resolve().parent
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def images(folder: Path) -> list[Path]:
    """The images in ``folder``, sorted by name (none when it is missing)."""
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
