"""Quality benchmark: artstyle's defaults against jcjohnson/neural-style's published results.

Renders the Tuebingen photo (../shared/eval/tubingen.jpg) in the style of The Starry
Night, The Scream and The Shipwreck of the Minotaur at 512 px with artstyle's default
settings, and prints for each our content and style losses next to those of
neural-style's published 512-px outputs (../shared/eval/ref_tubingen_*.png), all under
one fixed evaluation (see evaluation.py). ``--rows`` adds rows for other settings:
``single`` (``--no-pyramid``) and ``meancov`` (``--style-loss meancov``). With
``--sheet`` it also writes the side-by-side contact sheet (style | ours | reference) of
the defaults shown in the README.

    python benchmarks/quality.py [--rows defaults single meancov] [--sheet docs/quality.jpg]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))

from artstyle import Stylizer
from artstyle.api import make_config
from artstyle.imageio import read_image, resize_long_side
from evaluation import Evaluator

ROOT = Path(__file__).resolve().parents[1]
STYLES = {"starry_night": "starry", "the_scream": "scream", "shipwreck": "shipwreck"}
ROWS: dict[str, dict[str, object]] = {
    "defaults": {},
    "single": {"pyramid": False},
    "meancov": {"style_loss": "meancov"},
}


def contact_sheet(rows: list[tuple[Image.Image, Image.Image, Image.Image]], cell: int = 320) -> Image.Image:
    """A grid: one row per style, columns style | ours | reference, with a header."""
    header = 22
    thumbs = [[resize_long_side(image, cell) for image in row] for row in rows]
    height = header + sum(max(t.height for t in row) for row in thumbs)
    sheet = Image.new("RGB", (3 * cell, height), "white")
    draw = ImageDraw.Draw(sheet)
    for column, title in enumerate(("style", "artstyle (defaults)", "neural-style (published)")):
        draw.text((column * cell + 6, 5), title, fill="black")
    y = header
    for row in thumbs:
        for column, image in enumerate(row):
            sheet.paste(image, (column * cell + (cell - image.width) // 2, y))
        y += max(t.height for t in row)
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--styles", nargs="+", default=list(STYLES), choices=list(STYLES))
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--sheet", type=Path, help="write the contact sheet (JPEG) here")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, help="override the default number of iterations")
    parser.add_argument("--rows", nargs="+", default=["defaults"], choices=list(ROWS), help="settings to compare")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="score the pictures an earlier run saved in --out-dir instead of re-making them",
    )
    args = parser.parse_args(argv)

    options: dict[str, object] = {"size": args.size, "seed": 0}
    if args.iterations:
        options["iterations"] = args.iterations
    content = read_image(args.eval_dir / "tubingen.jpg")
    stylizer = Stylizer()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    iterations = make_config(**options).iterations
    print(f"quality at {args.size} px, {iterations} iterations, other settings default except as the row says")
    print(
        f"{'style':<14}{'row':<10}{'ours: content':>15}{'ref: content':>14}{'ours: style':>13}{'ref: style':>12}"
        f"  {'time':>6}"
    )
    rows, ok = [], True
    for style_name in args.styles:
        style = read_image(ROOT / "examples" / "styles" / f"{style_name}.jpg")
        reference = read_image(args.eval_dir / f"ref_tubingen_{STYLES[style_name]}.png")
        evaluator = Evaluator(content, style, size=args.size)
        theirs = evaluator.score(reference)
        for row in args.rows:
            config = make_config(**options, **ROWS[row])
            saved = args.out_dir / f"tubingen_{style_name}_{row}.png"
            if args.reuse and saved.exists():
                ours, seconds = read_image(saved), float("nan")
            else:
                started = time.perf_counter()
                ours = stylizer.run(content, style, config).image
                seconds = time.perf_counter() - started
                ours.save(saved)
            mine = evaluator.score(ours)
            took = "saved" if math.isnan(seconds) else f"{seconds:>5.0f}s"
            better = mine.content <= theirs.content and mine.style <= theirs.style
            ok &= better
            print(
                f"{style_name:<14}{row:<10}{mine.content:>15.4g}{theirs.content:>14.4g}{mine.style:>13.4g}"
                f"{theirs.style:>12.4g}  {took}  {'at least as good' if better else 'WORSE'}",
                flush=True,
            )
            if row == args.rows[0]:
                rows.append((style, ours, reference))
    if args.sheet:
        contact_sheet(rows).save(args.sheet, quality=85, optimize=True)
        print(f"wrote {args.sheet}")
    print("ours is at least as good on both numbers everywhere" if ok else "ours is worse somewhere")
    return 0


if __name__ == "__main__":
    sys.exit(main())
