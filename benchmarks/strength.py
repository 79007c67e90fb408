"""Strength benchmark: does the same ``--strength`` give the same degree on every pair?

The degree is the style share (:mod:`artstyle.engine.strength`): the picture's style loss
over its start's (the photo recoloured to the painting's palette), at the output size,
with the run's style layers and weights. For every pair of the quality set
(``quality.PAIRS``; ``--pairs`` picks some) it runs today's fixed weights
(``--style-weight 2``, no strength) and each ``--strengths`` value, and measures the
share of each picture. The table gives the shares, and for each column their geometric
mean and spread: the largest distance of a pair's share from the mean, in percent of the
mean (the target: within 15% at every strength, against the spread of the fixed
weights). ``found w`` is the mean style weight the calibration found.

Every result is appended to ``--results`` (JSON lines) as it comes and reused by a
later call with the same size and settings, so a stopped sweep goes on where it was;
the pictures are saved beside it, in ``strength/``.

    python benchmarks/strength.py [--size 256] [--pairs starry scream ...] \
        [--strengths 0.25 0.5 0.75 1] [--table docs/tables/strength.md]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from artstyle import Stylizer
from artstyle.api import make_config
from artstyle.device import native_cpu_bf16
from artstyle.engine.strength import target_share
from quality import PAIRS, ROOT, Pair, parse_config

FIXED = "fixed"
#: What the share divides by (rows of an earlier measure, the photo's own loss, are not reused).
MEASURE = "start"
BAND = 0.15


def run_one(
    stylizer: Stylizer, pair: Pair, setting: str, size: int, options: dict[str, Any], saved: Path
) -> dict[str, Any]:
    """One picture of ``pair`` at ``setting`` (``fixed`` or a strength), saved as ``saved``;
    its share and the style weight it was made with."""
    chosen = {} if setting == FIXED else {"strength": float(setting)}
    config = make_config(**{**pair.options, "size": size, "seed": 0, **options, **chosen})
    plan = stylizer.prepare(str(pair.content), [str(path) for path in pair.styles], config)
    began = time.perf_counter()
    result = stylizer.run(plan)
    seconds = time.perf_counter() - began
    assert result.tensor is not None
    share = stylizer.style_share(plan, result.tensor)
    result.image.save(saved)
    return {"share": share, "style_weight": result.style_weight, "seconds": seconds}


def sweep(args: argparse.Namespace, options: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every (pair, setting) result: read from ``--results`` where there, run otherwise."""
    key = {"size": args.size, "options": options, "measure": MEASURE}
    found: dict[tuple[str, str], dict[str, Any]] = {}
    if args.results.exists():
        for line in args.results.read_text().splitlines():
            row = json.loads(line)
            if row["key"] == key:
                found[(row["pair"], row["setting"])] = row
    stylizer = Stylizer()
    for name in args.pairs:
        for setting in [FIXED, *args.strengths]:
            if (name, setting) in found:
                continue
            picture = args.results.parent / "strength" / f"{args.size}_{name}_{setting}.png"
            picture.parent.mkdir(parents=True, exist_ok=True)
            row = {
                "key": key,
                "pair": name,
                "setting": setting,
                **run_one(stylizer, PAIRS[name], setting, args.size, options, picture),
            }
            print(
                f"{name:22s} {setting:>6s}: share {row['share']:.4f}, "
                f"style weight {row['style_weight']:.3g}, {row['seconds']:.0f} s",
                flush=True,
            )
            with args.results.open("a") as out:
                out.write(json.dumps(row) + "\n")
            found[(name, setting)] = row
    return found


def spread(values: list[float]) -> tuple[float, float]:
    """The geometric mean and the largest distance from it, as a fraction of it."""
    mean = math.exp(sum(math.log(v) for v in values) / len(values))
    return mean, max(abs(v / mean - 1) for v in values)


def table(args: argparse.Namespace, found: dict[tuple[str, str], dict[str, Any]]) -> str:
    settings = [FIXED, *args.strengths]
    heads = ["fixed weights (2)", *(f"S = {s} (asks {target_share(float(s)):.3f})" for s in args.strengths)]
    lines = ["| pair | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(settings)]
    for name in args.pairs:
        lines.append(f"| {name} | " + " | ".join(f"{found[(name, s)]['share']:.3f}" for s in settings) + " |")
    columns = [[found[(name, s)]["share"] for name in args.pairs] for s in settings]
    stats = [spread(values) for values in columns]
    lines.append("| **geometric mean** | " + " | ".join(f"{mean:.3f}" for mean, _ in stats) + " |")
    marks = [
        f"**±{100 * far:.0f}%**" if far > BAND and s != FIXED else f"±{100 * far:.0f}%"
        for (_, far), s in zip(stats, settings, strict=True)
    ]
    lines.append("| **spread** | " + " | ".join(marks) + " |")
    weights = [spread([found[(name, s)]["style_weight"] for name in args.pairs])[0] for s in settings]
    lines.append("| found w (geometric mean) | " + " | ".join(f"{w:.3g}" for w in weights) + " |")
    precision = "bf16" if native_cpu_bf16() else "fp32"
    command = " ".join(sys.argv[1:])
    lines += [
        "",
        f"Made by `python benchmarks/strength.py {command}` on {time.strftime('%Y-%m-%d')} "
        f"({platform.machine()}, torch {torch.__version__}, {precision}, precision auto).",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS), metavar="PAIR")
    parser.add_argument("--strengths", nargs="+", default=["0.25", "0.5", "0.75", "1"], metavar="S")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--config", nargs="+", default=[], metavar="KEY=VALUE", help="settings other than the defaults")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "out" / "strength.jsonl")
    parser.add_argument("--table", type=Path, help="write the Markdown table (for the docs) here")
    args = parser.parse_args()
    options = parse_config(args.config)
    make_config(**options)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    found = sweep(args, options)
    text = table(args, found)
    print(text)
    if args.table:
        args.table.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
