"""Quality benchmark: artstyle's defaults on a broad set of pairs, against references.

The set (``PAIRS``; ``--pairs`` picks some):

* the Tuebingen photo (../shared/eval/) in the style of The Starry Night, The Scream,
  The Shipwreck of the Minotaur, Seated Nude, and an equal blend of the first two, at
  512 px, against jcjohnson/neural-style's published outputs; and the four single
  styles again with ``--preserve-color luminance`` against its ``-original_colors 1``
  outputs;
* pairs of our own from ../shared/images/ (other photos, other paintings, ``OWN``) at
  512 px, against a long, converged run of one of neural-style's recipes made by our own
  engine (``RECIPES``: noise start, one scale, 1000 L-BFGS iterations, its normalisation,
  layers and weights, its TV weight converted to ours), a stand-in for what neural-style
  would publish for them: ``--recipe defaults`` (the default: its defaults since
  2 September 2015) or ``--recipe first`` (the one of 1 September 2015, which made its
  published single-style Tuebingen pictures). These references are made once per recipe,
  when missing, into --out-dir/references/ (13-28 minutes each on 2 cores), and reused.
  ``--classic-check`` runs, for the pairs that have a published picture, the recipe that
  made it (``Pair.recipe``) and scores both, to see how well our engine stands in (for
  the luminance pairs by our luminance-only transfer, where neural-style swapped the
  chroma after a normal run).

For each pair it prints the fixed, relative evaluation of ``evaluation.py`` (content,
style: lower is better), the neighbour-difference noise figure and the palette figure
(the sliced Wasserstein distance of the picture's colours from the painting's in CIELAB,
relative to the photo's), ours beside the reference's, with the ratios; a pair passes
when neither evaluation number is more than 5% worse than the reference's
(``TOLERANCE``), the noise is no higher and the palette no further from the painting's
(except with ``preserve_color``, where both keep the photo's colours on purpose). The absolute
numbers of the earlier releases follow with ``--absolute``, the per-layer style errors
with ``--layers``. ``--config k=v ...`` runs other settings instead of the defaults.
``--sheet`` writes the contact sheet (style | ours | reference) and ``--crops`` a sheet
of 1:1 crops for the noise.

    python benchmarks/quality.py [--pairs starry scream ...] [--config iterations=30] \
        [--recipe first] [--sheet docs/quality.jpg] [--crops docs/crops.png] [--reuse]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))

from artstyle import Stylizer
from artstyle.api import make_config
from artstyle.device import native_cpu_bf16
from artstyle.imageio import read_image, resize_long_side
from evaluation import STYLE_LAYERS, Evaluator, Score

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
EVAL = SHARED / "eval"
IMAGES = SHARED / "images"
#: The styles of speed.py's time to quality: our file name -> neural-style's.
STYLES = {"starry_night": "starry", "the_scream": "scream", "shipwreck": "shipwreck"}
TOLERANCE = 1.05


@dataclass(frozen=True)
class Recipe:
    """One of neural-style's recipes (read in its history) as options of ours: noise start,
    one scale, 1000 L-BFGS iterations, its absolute normalisation, its layers and weights
    (a style weight per layer). Its TV weight is on half the sum of squared differences
    in 0-255 units; ours is on their means in [0, 1]: the same term is
    ``tv / 2 * 255^2 * 3*H*W`` of ours."""

    content_weight: float
    style_weight: float
    tv: float
    content_layers: str
    style_layers: str

    def options(self, content: Image.Image, size: int) -> dict[str, Any]:
        """The recipe's options for ``content`` at ``size``."""
        width, height = resize_long_side(content, size).size
        return {
            "pyramid": False,
            "init": "noise",
            "iterations": 1000,
            "normalization": "absolute",
            "content_weight": self.content_weight,
            "style_weight": self.style_weight,
            "content_layers": self.content_layers,
            "style_layers": self.style_layers,
            "tv_weight": self.tv / 2 * 255**2 * 3 * width * height,
            "size": size,
            "seed": 0,
        }


#: neural-style's recipes behind its published pictures. ``first``: its code of
#: 1 September 2015 (commits 5faf307, 833afce), which made the single-style Tuebingen
#: pictures: layers by index into Caffe's VGG19, i.e. content relu4_1 at weight 1, style
#: 10 x 10 on relu1_1, relu2_1, relu3_1, conv3_3 and relu4_1, TV 5e-4. (Its conv3_3 loss sat
#: before the in-place relu3_3, so its gradient used the rectified features; ours is the
#: exact gradient.) ``defaults``: its defaults from 2 September 2015 on (11f8313), which
#: made the blend and the ``-original_colors`` pictures: content relu4_2 at 5, style 100
#: on relu1_1 ... relu5_1, TV 1e-3.
RECIPES = {
    "first": Recipe(1, 100, 5e-4, "relu4_1", "relu1_1,relu2_1,relu3_1,conv3_3,relu4_1"),
    "defaults": Recipe(5, 100, 1e-3, "relu4_2", "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1"),
}


@dataclass(frozen=True)
class Pair:
    """One content image, its style images, the size, options, and the reference picture
    (None: made with one of neural-style's recipes by our own engine)."""

    name: str
    content: Path
    styles: tuple[Path, ...]
    size: int = 512
    options: dict[str, Any] = field(default_factory=dict)
    reference: Path | None = None
    recipe: str = "defaults"  # the recipe that made the published reference (see RECIPES)


def _tubingen_pairs() -> list[Pair]:
    tubingen = EVAL / "tubingen.jpg"
    styles = {
        "starry": IMAGES / "starry_night.jpg",
        "scream": IMAGES / "the_scream.jpg",
        "shipwreck": IMAGES / "shipwreck.jpg",
        "seated_nude": EVAL / "seated-nude.jpg",
    }
    pairs = [
        Pair(name, tubingen, (path,), reference=EVAL / f"ref_tubingen_{name}.png", recipe="first")
        for name, path in styles.items()
    ]
    blend = (styles["starry"], styles["scream"])
    pairs.append(Pair("starry_scream", tubingen, blend, reference=EVAL / "ref_tubingen_starry_scream.png"))
    for name, path in styles.items():
        reference = EVAL / f"ref_original_color_tubingen_{name}.png"
        pairs.append(Pair(f"{name}_luminance", tubingen, (path,), 512, {"preserve_color": "luminance"}, reference))
    return pairs


#: Our own pairs: other photos, other paintings (the photo's and the painting's files).
OWN = (
    ("chelsea.png", "great_wave.jpg"),
    ("astronaut.png", "woman-with-hat-matisse.jpg"),
    ("coffee.png", "udnie.jpg"),
    ("rocket.jpg", "the_scream.jpg"),
    # added later, to check a lever on pairs it was not chosen on (docs/decisions.md: the balance set
    # by the photo, chosen on the four above): the soft photo and the sharpest one with
    # other paintings
    ("chelsea.png", "the_scream.jpg"),
    ("astronaut.png", "starry_night.jpg"),
    # added unseen before the strength's default was chosen (issue 30): photos and paintings
    # not paired before
    ("coffee.png", "shipwreck.jpg"),
    ("rocket.jpg", "great_wave.jpg"),
    ("astronaut.png", "udnie.jpg"),
)


def _own_pairs() -> list[Pair]:
    pairs = []
    for content, style in OWN:
        name = f"{content.split('.')[0]}_{style.split('-')[0].split('.')[0]}"
        pairs.append(Pair(name, IMAGES / content, (IMAGES / style,)))
    return pairs


PAIRS = {pair.name: pair for pair in _tubingen_pairs() + _own_pairs()}


def reference_of(pair: Pair, stylizer: Stylizer, out_dir: Path, recipe: str) -> Image.Image:
    """The pair's reference: the published picture, or our run of ``recipe`` (made when missing)."""
    if pair.reference is not None:
        return read_image(pair.reference)
    return recipe_picture(pair, recipe, stylizer, out_dir)


def recipe_picture(pair: Pair, recipe: str, stylizer: Stylizer, out_dir: Path) -> Image.Image:
    """neural-style's ``recipe`` run on the pair by our engine, made once into out_dir/references/."""
    path = out_dir / "references" / f"{pair.name}_{pair.size}_{recipe}.png"
    if not path.exists():
        content = read_image(pair.content)
        config = make_config(**RECIPES[recipe].options(content, pair.size), **pair.options)
        what = f"the reference for {pair.name} by neural-style's {recipe} recipe"
        print(f"making {what} ({config.iterations} iterations)", flush=True)
        started = time.perf_counter()
        image = stylizer.run(content, [read_image(s) for s in pair.styles], config).image
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        print(f"  {time.perf_counter() - started:.0f} s -> {path}", flush=True)
    return read_image(path)


def parse_config(items: list[str]) -> dict[str, Any]:
    """``k=v`` strings -> options (values as make_config takes them: strings are parsed)."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--config: expected KEY=VALUE, got {item!r}")
        options[key.strip()] = value.strip()
    return options


@dataclass
class Row:
    pair: Pair
    ours: Score
    theirs: Score
    seconds: float
    images: tuple[Image.Image, Image.Image, Image.Image]  # style, ours, reference

    @property
    def ratios(self) -> tuple[float, float, float]:
        o, t = self.ours, self.theirs
        return o.content_rel / t.content_rel, o.style_rel / t.style_rel, o.noise / t.noise

    @property
    def palette_ratio(self) -> float:
        return self.ours.palette / self.theirs.palette

    @property
    def palette_counts(self) -> bool:
        """Whether the palette is judged: not where the photo's colours are kept on purpose
        (``preserve_color``), where both pictures have the photo's palette."""
        return self.pair.options.get("preserve_color", "none") == "none"

    @property
    def passes(self) -> bool:
        content, style, noise = self.ratios
        palette = self.palette_ratio <= 1.0 or not self.palette_counts
        return content <= TOLERANCE and style <= TOLERANCE and noise <= 1.0 and palette


def run_pair(pair: Pair, stylizer: Stylizer, options: dict[str, Any], args: argparse.Namespace) -> Row:
    content = read_image(pair.content)
    styles = [read_image(s) for s in pair.styles]
    reference = reference_of(pair, stylizer, args.out_dir, args.recipe)
    saved = args.out_dir / f"{pair.name}_{args.label}.png"
    if args.reuse and saved.exists():
        ours, seconds = read_image(saved), float("nan")
    else:
        config = make_config(**{"size": pair.size, "seed": 0, **pair.options, **options})
        started = time.perf_counter()
        ours = stylizer.run(content, styles, config).image
        seconds = time.perf_counter() - started
        ours.save(saved)
    evaluator = Evaluator(content, styles, size=pair.size)
    return Row(pair, evaluator.score(ours), evaluator.score(reference), seconds, (styles[0], ours, reference))


def print_header(args: argparse.Namespace) -> None:
    print(f"quality: {args.label} settings{' ' + ' '.join(args.config) if args.config else ''}")
    print(f"the pairs of our own against neural-style's {args.recipe} recipe run by our engine")
    print("relative evaluation (lower is better); ratio = ours / reference; pass: content and style")
    print(f"within {TOLERANCE:.2f}x of the reference, noise and palette at most the reference's")
    print(
        f"{'pair':<22}{'size':>5}{'content':>9}{'ref':>7}{'x':>6}{'style':>8}{'ref':>7}{'x':>6}"
        f"{'noise':>8}{'ref':>7}{'x':>6}{'palette':>8}{'ref':>7}{'x':>6}{'time':>7}"
    )


def print_row(row: Row, args: argparse.Namespace) -> None:
    o, t = row.ours, row.theirs
    c, s, n = row.ratios
    took = "saved" if row.seconds != row.seconds else f"{row.seconds:.0f}s"
    print(
        f"{row.pair.name:<22}{row.pair.size:>5}{o.content_rel:>9.3f}{t.content_rel:>7.3f}{c:>6.2f}"
        f"{o.style_rel:>8.3f}{t.style_rel:>7.3f}{s:>6.2f}{o.noise:>8.4f}{t.noise:>7.4f}{n:>6.2f}"
        f"{o.palette:>8.3f}{t.palette:>7.3f}{row.palette_ratio:>6.2f}{took:>7}  {'pass' if row.passes else 'FAIL'}",
        flush=True,
    )
    if args.layers:
        for name, mine, theirs in zip(STYLE_LAYERS, o.style_layers, t.style_layers, strict=True):
            print(f"{'':<4}{name:<18}{'':>5}{'':>22}{mine:>8.3f}{theirs:>7.3f}{mine / theirs:>6.2f}")
    if args.absolute:
        print(f"{'':<4}{'absolute':<23}{o.content:>9.4g}{t.content:>7.4g}{'':>6}{o.style:>8.4g}{t.style:>7.4g}")


def classic_check(pairs: list[Pair], stylizer: Stylizer, out_dir: Path) -> None:
    """For pairs with a published picture, our run of the recipe that made it, scored beside
    it: how well the references we make ourselves stand in for neural-style's."""
    print("\nneural-style's recipe (RECIPES) run by our engine against its published picture, same evaluation")
    print(
        f"{'pair':<22}{'recipe':>9}{'content':>9}{'ref':>7}{'x':>6}{'style':>8}{'ref':>7}{'x':>6}{'noise':>8}{'ref':>7}{'x':>6}"
    )
    for pair in pairs:
        if pair.reference is None:
            continue
        evaluator = Evaluator(read_image(pair.content), [read_image(s) for s in pair.styles], size=pair.size)
        ours = evaluator.score(recipe_picture(pair, pair.recipe, stylizer, out_dir))
        theirs = evaluator.score(read_image(pair.reference))
        cells = [(ours.content_rel, theirs.content_rel, 9, 3), (ours.style_rel, theirs.style_rel, 8, 3)]
        cells.append((ours.noise, theirs.noise, 8, 4))
        line = "".join(f"{a:>{w}.{p}f}{b:>7.{p}f}{a / b:>6.2f}" for a, b, w, p in cells)
        print(f"{pair.name:<22}{pair.recipe:>9}{line}", flush=True)
        per_layer = zip(STYLE_LAYERS, ours.style_layers, theirs.style_layers, strict=True)
        print(f"{'':<4}per layer, ours/published: " + ", ".join(f"{n} {a:.3f}/{b:.3f}" for n, a, b in per_layer))


def print_summary(rows: list[Row]) -> None:
    worst = sorted(rows, key=lambda row: -max(row.ratios[0], row.ratios[1]))
    failed = [row.pair.name for row in rows if not row.passes]
    timed = [row.seconds for row in rows if row.seconds == row.seconds and row.pair.size == 512]
    if timed:
        print(f"512-px runs: {min(timed):.0f}-{max(timed):.0f} s, mean {sum(timed) / len(timed):.0f} s")
    print("closest to failing: " + ", ".join(f"{r.pair.name} ({max(r.ratios[:2]):.2f}x)" for r in worst[:3]))
    print("every pair passes" if not failed else f"failing: {', '.join(failed)}")


def markdown_table(rows: list[Row], args: argparse.Namespace, argv: list[str] | None) -> str:
    """The rows as the documentation shows them (ours / reference (ratio), failures in bold),
    with the command, the date and the machine under them."""

    def cell(ours: float, theirs: float, digits: int, limit: float) -> str:
        ratio = ours / theirs
        shown = f"{ratio:.2f}x" if ratio <= limit else f"**{ratio:.2f}x**"
        return f"{ours:.{digits}f} / {theirs:.{digits}f} ({shown})"

    lines = [
        "| pair | reference | content | style | noise | palette | time |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        o, t = row.ours, row.theirs
        reference = "published" if row.pair.reference is not None else f"ours, {args.recipe} recipe"
        took = "saved" if row.seconds != row.seconds else f"{row.seconds:.0f} s"
        cells = [
            cell(o.content_rel, t.content_rel, 3, TOLERANCE),
            cell(o.style_rel, t.style_rel, 3, TOLERANCE),
            cell(o.noise, t.noise, 4, 1.0),
            cell(o.palette, t.palette, 3, 1.0 if row.palette_counts else float("inf")),
        ]
        lines.append(f"| {row.pair.name} | {reference} | {' | '.join(cells)} | {took} |")
    command = " ".join(argv if argv is not None else sys.argv[1:])
    machine = (
        f"{platform.machine()}, torch {torch.__version__}, {'bf16' if native_cpu_bf16() else 'fp32'} (precision auto)"
    )
    lines += ["", f"Made by `python benchmarks/quality.py {command}` on {time.strftime('%Y-%m-%d')} ({machine})."]
    return "\n".join(lines) + "\n"


def contact_sheet(rows: list[Row], cell: int = 200) -> Image.Image:
    """A grid: one row per pair, columns style | ours | reference, each row labelled."""
    header, label = 22, 16
    thumbs = [[resize_long_side(image, cell) for image in row.images] for row in rows]
    height = header + sum(label + max(t.height for t in row) for row in thumbs)
    sheet = Image.new("RGB", (3 * cell, height), "white")
    draw = ImageDraw.Draw(sheet)
    for column, title in enumerate(("style", "artstyle (defaults)", "reference")):
        draw.text((column * cell + 6, 5), title, fill="black")
    y = header
    for row, images in zip(rows, thumbs, strict=True):
        c, s, _ = row.ratios
        draw.text((6, y + 2), f"{row.pair.name}: content {c:.2f}x, style {s:.2f}x the reference's", fill="black")
        y += label
        for column, image in enumerate(images):
            sheet.paste(image, (column * cell + (cell - image.width) // 2, y))
        y += max(t.height for t in images)
    return sheet


def crop_sheet(rows: list[Row], side: int = 96) -> Image.Image:
    """1:1 crops (ours | reference) from the middle of each picture, side by side, a pair a row."""
    sheet = Image.new("RGB", (2 * side + 8, len(rows) * (side + 4)), "white")
    for index, row in enumerate(rows):
        for column, image in enumerate(row.images[1:]):
            image = image.convert("RGB")
            left, top = (image.width - side) // 2, (image.height - side) // 2
            sheet.paste(image.crop((left, top, left + side, top + side)), (column * (side + 8), index * (side + 4)))
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS), metavar="PAIR")
    parser.add_argument("--config", nargs="+", default=[], metavar="KEY=VALUE", help="settings other than the defaults")
    parser.add_argument("--label", default="defaults", help="name of these settings (in the saved files' names)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--sheet", type=Path, help="write the contact sheet (JPEG) here")
    parser.add_argument("--crops", type=Path, help="write the 1:1 crop sheet (PNG) here")
    parser.add_argument("--table", type=Path, help="write the rows as a Markdown table (for the docs) here")
    parser.add_argument("--layers", action="store_true", help="print each style layer's error")
    parser.add_argument("--absolute", action="store_true", help="print the earlier releases' absolute numbers")
    parser.add_argument("--reuse", action="store_true", help="score the pictures an earlier run saved in --out-dir")
    parser.add_argument(
        "--classic-check",
        action="store_true",
        help="only run, for the chosen pairs that have a published picture, the recipe that made it, and score both",
    )
    parser.add_argument(
        "--recipe",
        choices=list(RECIPES),
        default="defaults",
        help="neural-style's recipe for the references of the pairs of our own (default: defaults)",
    )
    args = parser.parse_args(argv)
    options = parse_config(args.config)
    make_config(**options)  # bad settings fail here, before any work
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stylizer = Stylizer()
    if args.classic_check:
        classic_check([PAIRS[name] for name in args.pairs], stylizer, args.out_dir)
        return 0
    print_header(args)
    rows = []
    for name in args.pairs:
        rows.append(run_pair(PAIRS[name], stylizer, options, args))
        print_row(rows[-1], args)
    print_summary(rows)
    if args.sheet:
        contact_sheet(rows).save(args.sheet, quality=80, optimize=True)
        print(f"wrote {args.sheet}")
    if args.crops:
        crop_sheet(rows).save(args.crops, optimize=True)
        print(f"wrote {args.crops}")
    if args.table:
        args.table.write_text(markdown_table(rows, args, argv), encoding="utf-8")
        print(f"wrote {args.table}")
    return 0 if all(row.passes for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
