"""Regenerate the README's pictures under docs/ (small JPEGs).

    python docs/make_figures.py            # docs/demo.jpg: content | style | result
    python benchmarks/quality.py --sheet docs/quality.jpg   # the quality contact sheet

The demo figure is made with the same settings as ``make demo``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

from artstyle import stylize
from artstyle.imageio import read_image, resize_long_side

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "examples" / "content" / "chelsea.png"
STYLE = ROOT / "examples" / "styles" / "starry_night.jpg"
DEMO_OPTIONS = {"size": 384, "seed": 1}  # as in the Makefile's demo target


def strip(images: list[Image.Image], titles: list[str], height: int = 220, gap: int = 6) -> Image.Image:
    """Images side by side at one height, each with a caption above it."""
    scaled = [
        image.resize((round(image.width * height / image.height), height), Image.Resampling.LANCZOS) for image in images
    ]
    caption = 20
    sheet = Image.new("RGB", (sum(i.width for i in scaled) + gap * (len(scaled) - 1), height + caption), "white")
    draw = ImageDraw.Draw(sheet)
    x = 0
    for image, title in zip(scaled, titles, strict=True):
        draw.text((x + 4, 4), title, fill="black")
        sheet.paste(image, (x, caption))
        x += image.width + gap
    return sheet


def main() -> int:
    content, style = read_image(CONTENT), read_image(STYLE)
    result = stylize(content, style, **DEMO_OPTIONS)
    figure = strip([content, resize_long_side(style, 512), result], ["content", "style", "artstyle"])
    out = ROOT / "docs" / "demo.jpg"
    figure.save(out, quality=85, optimize=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
