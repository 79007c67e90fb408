"""What a batch is: its pictures, from a grid of photos and paintings or from a manifest.

``artstyle batch a.jpg photos/ 'trips/*.png' --styles starry.jpg scream.jpg -o out/``
makes every photo with every painting, each picture named
``out/<photo>__<painting>.png``; a directory gives its images, a glob its matches. A
manifest (``--manifest jobs.jsonl`` or ``jobs.csv``) lists pictures that are not a grid:
one per line or row, with ``content``, ``styles`` (a list, or names separated by ``;``),
optionally ``style_weights``, ``output`` and any still-image option (``size``,
``tv_weight``, ...). Paths in a manifest are relative to it; outputs to the output
directory.
"""

from __future__ import annotations

import csv
import glob
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from artstyle.config import Config
from artstyle.errors import ConfigError

#: The image files a directory given as CONTENT contributes.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
#: The manifest's own columns (the others are still-image options).
MANIFEST_KEYS = ("content", "styles", "style_weights", "output")


@dataclass(frozen=True)
class Item:
    """One picture of a batch: its photo, paintings, output path, the options of its own
    (over the batch's), and where it was listed (for messages)."""

    content: str
    styles: tuple[str, ...]
    output: str
    options: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def config(self, base: Config) -> Config:
        """The picture's options: the batch's, changed by its own (ConfigError if bad)."""
        return base.replace(**dict(self.options)) if self.options else base

    @property
    def style_key(self) -> tuple[str, ...]:
        """The pictures with the same paintings share style targets (and run one after another)."""
        return self.styles


@dataclass(frozen=True)
class Batch:
    """The pictures and what applies to all: the options (``config``, under each picture's
    own), the output format options, and whether finished pictures are made again."""

    items: list[Item]
    config: Config
    bit_depth: int = 8
    jpeg_quality: int = 95
    force: bool = False


def expand(sources: Iterable[str]) -> list[str]:
    """The image files of CONTENT arguments: a directory's images (sorted), a glob's
    matches (sorted), a file as it is. A directory or glob without images is an error."""
    files: list[str] = []
    for source in sources:
        if os.path.isdir(source):
            found = sorted(str(p) for p in Path(source).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif glob.has_magic(source):
            found = sorted(path for path in glob.glob(source) if os.path.isfile(path))
        else:
            found = [source]
        if not found:
            raise ConfigError(f"no images in '{source}'", option="content")
        files.extend(found)
    return files


def picture_name(content: str, styles: Iterable[str], extension: str) -> str:
    """``<photo>__<painting>[+<painting>...].<extension>``, from the files' stems."""
    return f"{Path(content).stem}__{'+'.join(Path(style).stem for style in styles)}.{extension}"


def unique(names: list[str]) -> list[str]:
    """The names with later duplicates made unique (``a__b.png``, ``a__b-2.png``, ...), in order."""
    seen: dict[str, int] = {}
    result = []
    taken = {name.lower() for name in names}
    for name in names:
        key = name.lower()
        count = seen.get(key, 0) + 1
        seen[key] = count
        if count == 1:
            result.append(name)
            continue
        stem, dot, suffix = name.rpartition(".")
        candidate = f"{stem}-{count}.{suffix}" if dot else f"{name}-{count}"
        while candidate.lower() in taken:
            count += 1
            candidate = f"{stem}-{count}.{suffix}" if dot else f"{name}-{count}"
        taken.add(candidate.lower())
        result.append(candidate)
    return result


def grid(contents: list[str], styles: list[str], outdir: str, extension: str) -> list[Item]:
    """Every photo with every painting, named by :func:`picture_name` (made :func:`unique`)."""
    pairs = [(content, style) for style in styles for content in contents]
    names = unique([picture_name(content, [style], extension) for content, style in pairs])
    return [
        Item(content, (style,), os.path.join(outdir, name), source=f"{Path(content).name} with {Path(style).name}")
        for (content, style), name in zip(pairs, names, strict=True)
    ]


def read_manifest(path: str, outdir: str, extension: str) -> list[Item]:
    """The pictures a JSON Lines (``.jsonl``, ``.json``) or CSV manifest lists."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read '{path}': {exc.strerror or exc}", option="manifest") from None
    rows = _csv_rows(text, path) if Path(path).suffix.lower() == ".csv" else _json_rows(text, path)
    if not rows:
        raise ConfigError(f"'{path}' lists no pictures", option="manifest")
    base = Path(path).parent
    items = [_item(row, where, base, outdir, extension) for where, row in rows]
    names = unique([item.output for item in items])
    return [Item(i.content, i.styles, n, i.options, i.source) for i, n in zip(items, names, strict=True)]


def _json_rows(text: str, path: str) -> list[tuple[str, dict[str, Any]]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"'{path}' line {number}: not JSON ({exc.msg})", option="manifest") from None
        if not isinstance(row, dict):
            raise ConfigError(f"'{path}' line {number}: expected an object, got {row!r}", option="manifest")
        rows.append((f"{Path(path).name} line {number}", row))
    return rows


def _csv_rows(text: str, path: str) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(text.splitlines())
    rows = []
    for number, row in enumerate(reader, start=2):
        values = {key.strip(): _cell(value) for key, value in row.items() if key and value not in (None, "")}
        rows.append((f"{Path(path).name} row {number}", values))
    return rows


def _cell(text: str) -> Any:
    """A CSV cell as the value it spells: a number, true/false, or the text."""
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _item(row: Mapping[str, Any], where: str, base: Path, outdir: str, extension: str) -> Item:
    if "content" not in row or "styles" not in row:
        raise ConfigError(f"{where}: a picture needs 'content' and 'styles'", option="manifest")
    styles = _names(row["styles"])
    options = {key: value for key, value in row.items() if key not in MANIFEST_KEYS}
    if "style_weights" in row:
        options["style_weights"] = tuple(float(w) for w in _names(row["style_weights"]))
    known = {f.name for f in fields(Config)}
    for key in options:
        if key not in known:
            raise ConfigError(f"{where}: unknown option '{key}'", option="manifest")
    content = str(base / str(row["content"]))
    output = str(row.get("output") or picture_name(content, styles, extension))
    return Item(content, tuple(str(base / s) for s in styles), os.path.join(outdir, output), options, where)


def _names(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [part.strip() for part in str(value).split(";") if part.strip()]
