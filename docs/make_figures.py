"""Regenerate the pictures of the README and the documentation under docs/ (small JPEGs).

    python docs/make_figures.py [demo gallery strength ... video]   # default: all of them
    python benchmarks/quality.py --sheet docs/quality.jpg     # the quality contact sheet

* demo.jpg: content | style | result, with the same settings as ``make demo``;
* gallery.jpg: six pairs of the example photos and paintings, photo | painting | artstyle,
  at 384 px with the default options (about 5 minutes on 2 CPU cores);
* strength.jpg: --strength 0.25, 0.5, 0.75 and 1 on two pairs;
* stroke_size.jpg, smoothness.jpg: one option at three values (--style-scale, --tv-weight),
  everything else at its default;
* presets.jpg: --preset draft, default and fine at 384 px, each with the time it took;
* color.jpg: colour preservation: none, luminance, histogram;
* masks.jpg: two styles, one per half of the picture, with feathered masks;
* pyramid.jpg: 1024 px, single scale against coarse to fine, both with the default
  iterations at the full size (coarse to fine adds those of the smaller scales), with
  a full-resolution crop of each (the slow one: about 20 minutes);
* video.jpg: two consecutive frames of Big Buck Bunny (CC BY 3.0, (c) 2008 Blender
  Foundation, www.bigbuckbunny.org) stylized each on its own and with the temporal
  term, and how much each pixel changed between them (about 2 minutes).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFilter

from artstyle import Config, stylize
from artstyle.imageio import read_image, resize_long_side

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "examples" / "content" / "chelsea.png"
STYLE = ROOT / "examples" / "styles" / "starry_night.jpg"
STYLES = ROOT / "examples" / "styles"
BUNNY = ROOT.parent / "shared" / "video" / "bigbuckbunny.mp4"  # CC BY 3.0, Blender Foundation
DOCS = ROOT / "docs"
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


def save(figure: Image.Image, name: str) -> None:
    out = DOCS / name
    figure.save(out, quality=85, optimize=True)
    print(f"wrote {out}", flush=True)


def demo() -> None:
    content, style = read_image(CONTENT), read_image(STYLE)
    result = stylize(content, style, **DEMO_OPTIONS)
    save(strip([content, resize_long_side(style, 512), result], ["content", "style", "artstyle"]), "demo.jpg")


#: The gallery's pairs: an example photo, an example painting and the painting's title.
GALLERY = (
    ("chelsea.png", "the_scream.jpg", "The Scream"),
    ("chelsea.png", "great_wave.jpg", "The Great Wave"),
    ("astronaut.png", "woman-with-hat-matisse.jpg", "Woman with a Hat"),
    ("astronaut.png", "udnie.jpg", "Udnie"),
    ("rocket.jpg", "starry_night.jpg", "The Starry Night"),
    ("rocket.jpg", "shipwreck.jpg", "The Shipwreck"),
)


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """The image scaled to fit a width x height cell, centred on white."""
    scale = min(width / image.width, height / image.height)
    scaled = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    cell = Image.new("RGB", (width, height), "white")
    cell.paste(scaled, ((width - scaled.width) // 2, (height - scaled.height) // 2))
    return cell


def gallery() -> None:
    triples = []
    for photo, painting, title in GALLERY:
        content, style = read_image(ROOT / "examples" / "content" / photo), read_image(STYLES / painting)
        result = stylize(content, style, size=384, seed=1)
        cells = [fit(image, 240, 180) for image in (content, style, result)]
        triples.append(strip(cells, ["photo", title, "artstyle"], height=180))
    gap = 16
    width, height = triples[0].size
    sheet = Image.new("RGB", (2 * width + gap, 3 * height + 2 * gap), "white")
    for index, triple in enumerate(triples):
        sheet.paste(triple, ((index % 2) * (width + gap), (index // 2) * (height + gap)))
    save(sheet, "gallery.jpg")


def sweep(name: str, photo: str, painting: str, size: int, option: str, values: list[Any]) -> None:
    """One option at a few values, everything else at its default: content | style | one picture per value."""
    content, style = read_image(ROOT / "examples" / "content" / photo), read_image(STYLES / painting)
    default = getattr(Config(), option)
    results, titles = [], []
    for value in values:
        results.append(stylize(content, style, size=size, seed=1, **{option: value}))
        titles.append(f"--{option.replace('_', '-')} {value}" + (" (default)" if value == default else ""))
    save(strip([content, resize_long_side(style, 512), *results], ["content", "style", *titles], height=200), name)


#: The strength figure's pairs (example photo, example painting): a soft photo with a
#: bold painting and a sharp one with a fine-grained painting.
STRENGTH_PAIRS = (("chelsea.png", "the_scream.jpg"), ("rocket.jpg", "great_wave.jpg"))


def strength() -> None:
    """--strength 0.25, 0.5, 0.75 and 1 on two pairs: a row each."""
    rows = []
    for photo, painting in STRENGTH_PAIRS:
        content, style = read_image(ROOT / "examples" / "content" / photo), read_image(STYLES / painting)
        results = [stylize(content, style, size=256, seed=1, strength=value) for value in (0.25, 0.5, 0.75, 1.0)]
        titles = ["content", "style", *(f"--strength {value}" for value in (0.25, 0.5, 0.75, 1))]
        rows.append(strip([content, resize_long_side(style, 512), *results], titles, height=160))
    gap = 6
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows) + gap), "white")
    for index, row in enumerate(rows):
        sheet.paste(row, (0, index * (rows[0].height + gap)))
    save(sheet, "strength.jpg")


def stroke_size() -> None:
    sweep("stroke_size.jpg", "rocket.jpg", "starry_night.jpg", 384, "style_scale", [0.5, 1.0, 2.0])


def smoothness() -> None:
    sweep("smoothness.jpg", "chelsea.png", "starry_night.jpg", 256, "tv_weight", [0.0, 5.7, 30.0])


def presets() -> None:
    content, style = read_image(CONTENT), read_image(STYLE)
    results, titles = [], []
    for preset in ("draft", "default", "fine"):
        started = time.perf_counter()
        results.append(stylize(content, style, size=384, seed=1, preset=preset))
        titles.append(f"--preset {preset}: {time.perf_counter() - started:.0f} s")
    sheet = strip([content, resize_long_side(style, 512), *results], ["content", "style", *titles], height=200)
    save(sheet, "presets.jpg")


def color() -> None:
    content = read_image(ROOT / "examples" / "content" / "astronaut.png")
    style = read_image(STYLES / "great_wave.jpg")
    results = [
        stylize(content, style, size=384, seed=1, preserve_color=mode) for mode in ("none", "luminance", "histogram")
    ]
    titles = ["content", "style", "--preserve-color none", "luminance", "histogram"]
    save(strip([content, resize_long_side(style, 512), *results], titles, height=200), "color.jpg")


def split_masks(width: int, height: int, feather: int = 12) -> tuple[Image.Image, Image.Image]:
    """A left and a right mask with a soft vertical seam in the middle."""
    left = Image.new("L", (width, height), 0)
    left.paste(255, (0, 0, width // 2, height))
    left = left.filter(ImageFilter.GaussianBlur(feather))
    return left, Image.eval(left, lambda v: 255 - v)


def masks() -> None:
    content = resize_long_side(read_image(CONTENT), 384)
    styles = [read_image(STYLES / "starry_night.jpg"), read_image(STYLES / "the_scream.jpg")]
    left, right = split_masks(*content.size)
    result = stylize(content, styles, style_masks=[left, right], size=384, seed=1)
    titles = ["content", "left style", "right style", "masks (left)", "artstyle"]
    images = [content, resize_long_side(styles[0], 512), resize_long_side(styles[1], 512), left, result]
    save(strip(images, titles, height=200), "masks.jpg")


def pyramid() -> None:
    content = read_image(ROOT / "examples" / "content" / "rocket.jpg")
    style = read_image(STYLES / "starry_night.jpg")
    options = {"size": 1024, "seed": 1}
    pictures, titles = [], []
    for label, pyramid in (("single scale", False), ("coarse to fine", True)):
        started = time.perf_counter()
        picture = stylize(content, style, pyramid=pyramid, **options)
        seconds = time.perf_counter() - started
        print(f"{label}: {seconds:.0f} s", flush=True)
        box = (picture.width // 2 - 200, picture.height // 2 - 150, picture.width // 2 + 200, picture.height // 2 + 150)
        pictures += [picture, picture.crop(box)]
        titles += [f"1024 px, {label}", "detail at full size"]
    save(strip(pictures, titles, height=240), "pyramid.jpg")


def video() -> None:
    import tempfile

    import numpy as np

    from artstyle.api import make_config
    from artstyle.files.video import read_frame_png
    from artstyle.video.job import TEMPORAL_WEIGHT, VideoJob
    from artstyle.video.run import run_video

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for weight, label in ((0.0, "each frame on its own"), (TEMPORAL_WEIGHT, "temporal term")):
            out = Path(scratch) / f"w{weight:g}"
            config = make_config(size=256, seed=0)
            job = VideoJob(str(BUNNY), [str(STYLE)], str(out), config, start=1.6, duration=0.2, temporal_weight=weight)
            outcome = run_video(job)
            assert outcome.ok, outcome.error
            frames = [read_frame_png(path) for path in sorted(out.glob("frame_*.png"))[-2:]]
            change = np.clip(np.abs(frames[1] - frames[0]).mean(-1, keepdims=True).repeat(3, -1) * 4, 0, 1)
            pictures = [Image.fromarray(np.rint(f * 255).astype(np.uint8)) for f in [*frames, change]]
            rows.append(strip(pictures, [f"{label}: frame t-1", "frame t", "change x4"], height=160))
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows) + 6), "white")
    sheet.paste(rows[0], (0, 0))
    sheet.paste(rows[1], (0, rows[0].height + 6))
    save(sheet, "video.jpg")


FIGURES: dict[str, Callable[[], None]] = {
    "demo": demo,
    "gallery": gallery,
    "strength": strength,
    "stroke_size": stroke_size,
    "smoothness": smoothness,
    "presets": presets,
    "color": color,
    "masks": masks,
    "pyramid": pyramid,
    "video": video,
}


def main(argv: list[str]) -> int:
    unknown = [name for name in argv if name not in FIGURES]
    if unknown:
        print(f"unknown figure {unknown[0]!r}; choose from {', '.join(FIGURES)}", file=sys.stderr)
        return 2
    for name in argv or list(FIGURES):
        FIGURES[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
