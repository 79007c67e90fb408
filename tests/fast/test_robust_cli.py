"""The command line on bad and unusual inputs (issue 5), signals, determinism and ``artstyle reproduce``.

Most cases call ``artstyle.cli.main`` in-process with random weights (``fake_bundled``) on
images of a few dozen pixels. A few run a real child process: Ctrl-C, SIGTERM, and one
bad input end to end (tracebacks and exit codes are only really seen there).
"""

from __future__ import annotations

import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _icc
import numpy as np
import pytest
import torch
from _support import FakeBundled, Poisoned, random_rgb, smooth_rgb
from PIL import Image

from artstyle import __version__, api, cli, imageio
from artstyle.engine import Progress, optimize_stages
from artstyle.errors import ArtstyleWarning, ImageReadError, ImageTooSmallError
from artstyle.imageio import read_image, read_metadata, save_image, srgb_profile

FAST_FLAGS = ["--content-layers", "relu2_2", "--style-layers", "relu1_1,relu2_1"]
HERE = Path(__file__).parent

CaptureFixture = pytest.CaptureFixture[str]


@pytest.fixture(autouse=True)
def _restore_global_torch_state() -> Iterator[None]:
    """--deterministic and reproduce change process-wide PyTorch settings; undo them."""
    threads = torch.get_num_threads()
    yield
    if torch.are_deterministic_algorithms_enabled():  # (the first call to switch costs a second or two)
        torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic = False
    torch.set_num_threads(threads)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    smooth_rgb(48, 40, seed=1).save(content)
    random_rgb(40, 40, seed=2).save(style)
    return {"content": content, "style": style}


def run_cli(argv: Sequence[str | Path], capsys: CaptureFixture) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def options(*extra: str | Path) -> list[str | Path]:
    return ["--size", "32", "--iterations", "2", "-q", "--device", "cpu", "--seed", "3", *FAST_FLAGS, *extra]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*.partial"))


# --------------------------------------------------------------------------- #
# Unusual input files
# --------------------------------------------------------------------------- #


def png_bomb(path: Path) -> Path:
    """A PNG whose header claims 100000 x 100000 pixels (with almost no data)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def gif_bomb(path: Path) -> Path:
    screen = struct.pack("<HHBBB", 65_535, 65_535, 0, 0, 0)
    descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, 65_535, 65_535, 0)
    path.write_bytes(b"GIF89a" + screen + descriptor + b"\x02\x02\x44\x01\x00\x3b")
    return path


def truncated_png(path: Path) -> Path:
    smooth_rgb(48, 40).save(path)
    path.write_bytes(path.read_bytes()[:200])
    return path


def empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def text_file(path: Path) -> Path:
    path.write_text("not a picture\n")
    return path


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def cmyk_jpeg_with_profile(path: Path) -> Path:
    profile = _icc.cmyk_profile(lambda c, m, y, k: (0, 0, 0) if k else (255 * (1 - c), 255 * (1 - m), 255 * (1 - y)))
    Image.new("CMYK", (48, 40), (30, 100, 200, 10)).save(path, icc_profile=profile, quality=90)
    return path


def grey16_png(path: Path) -> Path:
    ramp = np.linspace(0, 65535, 48 * 40).reshape(40, 48).astype(np.uint16)
    Image.fromarray(ramp).save(path)
    return path


def rgb16_tiff(path: Path) -> Path:
    save_image(np.random.default_rng(4).random((40, 48, 3)), path, bit_depth=16)
    return path


def palette_with_transparency(path: Path) -> Path:
    image = smooth_rgb(48, 40).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    image.save(path, transparency=3)
    return path


def grey_alpha(path: Path) -> Path:
    Image.new("LA", (48, 40), (90, 128)).save(path)
    return path


def animated_gif(path: Path) -> Path:
    frames = [random_rgb(48, 40, seed=i).convert("P") for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=40, loop=0)
    return path


def rotated_jpeg(path: Path) -> Path:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display: 48 x 40 shows as 40 x 48
    smooth_rgb(48, 40).save(path, exif=exif.tobytes(), quality=90)
    return path


def broken_profile(path: Path) -> Path:
    smooth_rgb(48, 40).save(path, icc_profile=b"no colour profile at all" * 4)
    return path


# With the table's layers (relu2_2 at the deepest) the network needs 2 px on a side.


def heic(path: Path) -> Path:
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(100))
    return path


def tiny(path: Path) -> Path:
    Image.new("RGB", (1, 1), (200, 30, 30)).save(path)
    return path


def sliver(path: Path) -> Path:
    smooth_rgb(64, 1).save(path)  # 32 x 1 after resizing
    return path


# --------------------------------------------------------------------------- #
# The table
# --------------------------------------------------------------------------- #


@dataclass
class Setup:
    tmp: Path
    files: dict[str, Path]
    output: Path
    capsys: CaptureFixture

    def made(self, maker: Callable[[Path], Path], name: str) -> Path:
        return maker(self.tmp / name)

    def original(self, *extra: str) -> Path:
        """An image made by a first, quiet run: the subject of the reproduce cases."""
        original = self.tmp / "original.png"
        argv = [self.files["content"], self.files["style"], "-o", original, *options(*extra)]
        assert cli.main([str(a) for a in argv]) == 0
        self.capsys.readouterr()
        return original


Build = Callable[[Setup], list[str | Path]]


def content(maker: Callable[[Path], Path], name: str, *extra: str) -> Build:
    def build(s: Setup) -> list[str | Path]:
        return [s.made(maker, name), s.files["style"], "-o", s.output, *options(*extra)]

    return build


def style(maker: Callable[[Path], Path], name: str) -> Build:
    def build(s: Setup) -> list[str | Path]:
        return [s.files["content"], s.made(maker, name), "-o", s.output, *options()]

    return build


def flags(*extra: str, output: str | None = None) -> Build:
    def build(s: Setup) -> list[str | Path]:
        target = s.tmp / output if output else s.output
        return [s.files["content"], s.files["style"], "-o", target, *options(*extra)]

    return build


def sidecar_exists(s: Setup) -> list[str | Path]:
    (s.tmp / "out.jpg.json").write_text("{}")
    return [s.files["content"], s.files["style"], "-o", s.tmp / "out.jpg", *options("--no-clobber")]


def reproduce_plain_image(s: Setup) -> list[str | Path]:
    return ["reproduce", s.output]  # out.png exists but was not made by artstyle


def reproduce_onto_the_original(s: Setup) -> list[str | Path]:
    original = s.original()
    return ["reproduce", original, "-o", original, "-q"]


def reproduce_changed_content(s: Setup) -> list[str | Path]:
    original = s.original()
    smooth_rgb(48, 40, seed=9).save(s.files["content"])  # same name, other pixels
    return ["reproduce", original, "-o", s.output, "-q"]


def reproduce_missing_style(s: Setup) -> list[str | Path]:
    original = s.original()
    s.files["style"].unlink()
    return ["reproduce", original, "-o", s.output, "-q"]


def reproduce_wrong_style_count(s: Setup) -> list[str | Path]:
    original = s.original()
    return ["reproduce", original, "--style", s.files["style"], "--style", s.files["style"], "-o", s.output]


def out_of_memory(exc: BaseException) -> Callable[..., torch.Tensor]:
    def optimize_that_runs_out(*args: Any, **kwargs: Any) -> torch.Tensor:
        raise exc

    return optimize_that_runs_out


def real_cpu_allocation_failure(*args: Any, **kwargs: Any) -> torch.Tensor:
    return torch.empty(10**14)  # PyTorch's own "can't allocate memory" RuntimeError


def out_of_memory_after(step: int) -> Callable[..., torch.Tensor]:
    """The run runs out of memory once iteration ``step`` is done."""

    def optimize_that_runs_out_later(*args: Any, callback: Any = None, **kwargs: Any) -> torch.Tensor:
        def relay(progress: Progress) -> None:
            callback(progress)
            if progress.step == step:
                raise torch.OutOfMemoryError("CUDA out of memory")

        return optimize_stages(*args, callback=relay, **kwargs)

    return optimize_that_runs_out_later


def diverging(at: int) -> Callable[..., torch.Tensor]:
    """The style loss at relu1_1 becomes NaN in iteration ``at``."""

    def optimize_that_diverges(stages: Any, objective_for: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        return optimize_stages(stages, lambda i, s: Poisoned(objective_for(i, s), at), *args, **kwargs)

    return optimize_that_diverges


def earlier_checkpoint(output: str, *extra: str) -> Build:
    def build(s: Setup) -> list[str | Path]:
        (s.tmp / f"{output}.ckpt").write_bytes(b"not a checkpoint")
        return [s.files["content"], s.files["style"], "-o", s.tmp / output, *options(*extra)]

    return build


@dataclass
class Case:
    name: str
    build: Build
    code: int
    message: str | None  # in the one stderr line (an error, or a warning for a run that succeeds)
    output: str  # what becomes of an existing out.png: "untouched" or "written"
    optimize: Callable[..., torch.Tensor] | None = None


OOM_MESSAGE = "out of memory stylizing at 32x27 px on cpu; try a smaller --size (now 32), or --optimizer adam"
CASES = [
    # Inputs that are refused
    Case(
        "PNG bomb header",
        content(png_bomb, "bomb.png"),
        1,
        "bomb.png': image too large (10,000,000,000 pixels; the limit",
        "untouched",
    ),
    Case("GIF bomb header as style", style(gif_bomb, "bomb.gif"), 1, "the limit is 200,000,000", "untouched"),
    Case(
        "over --max-pixels",
        flags("--max-pixels", "1000"),
        1,
        "content.png': image too large (48x40 px, 1,920 pixels; the limit is 1,000, see --max-pixels)",
        "untouched",
    ),
    Case(
        "--max-pixels 0", flags("--max-pixels", "0"), 2, "--max-pixels: expected a whole number of pixels", "untouched"
    ),
    Case(
        "--max-pixels not a number", flags("--max-pixels", "lots"), 2, "argument --max-pixels: invalid int", "untouched"
    ),
    Case("truncated PNG", content(truncated_png, "cut.png"), 1, "cut.png': file is truncated or corrupt", "untouched"),
    Case("empty file", content(empty, "empty.jpg"), 1, "empty.jpg': file is empty", "untouched"),
    Case("text file as style", style(text_file, "notes.png"), 1, "notes.png': not an image file", "untouched"),
    Case("HEIC photo", content(heic, "IMG_0001.HEIC"), 1, "a HEIC/HEIF file, which artstyle cannot read", "untouched"),
    Case("FIFO as content", content(fifo, "pipe.png"), 1, "pipe.png': not a regular file", "untouched"),
    Case(
        "too thin after resizing",
        content(sliver, "sliver.png"),
        1,
        "content image (after resizing) is 32x1 px; layer relu2_2 needs at least 2 px on each side",
        "untouched",
    ),
    # Inputs from the wild that work
    Case("CMYK JPEG with a profile", content(cmyk_jpeg_with_profile, "cmyk.jpg"), 0, None, "written"),
    Case("16-bit grey PNG", content(grey16_png, "grey16.png"), 0, None, "written"),
    Case("16-bit RGB TIFF", content(rgb16_tiff, "rgb16.tif"), 0, None, "written"),
    Case("palette with transparency", content(palette_with_transparency, "p.png"), 0, None, "written"),
    Case("grey with alpha", content(grey_alpha, "la.png"), 0, None, "written"),
    Case("animated GIF", content(animated_gif, "anim.gif"), 0, None, "written"),
    Case("EXIF-rotated JPEG", content(rotated_jpeg, "phone.jpg"), 0, None, "written"),
    Case(
        "broken colour profile",
        content(broken_profile, "odd.png"),
        0,
        "artstyle: warning: '{tmp}/odd.png': ignored its unreadable ICC colour profile; colours taken as sRGB",
        "written",
    ),
    Case(
        "tiny content image",
        content(tiny, "icon.png"),
        0,
        "artstyle: warning: content image is only 1x1 px, smaller than the 2 px the network needs; "
        "upscaled to 32x32 (expect a soft result)",
        "written",
    ),
    # Output options
    Case(
        "--no-clobber", flags("--no-clobber"), 1, "the file already exists (not overwritten: --no-clobber)", "untouched"
    ),
    Case("--no-clobber and a sidecar", sidecar_exists, 1, "out.jpg.json' already exists", "untouched"),
    Case("--bit-depth 16 JPEG", flags("--bit-depth", "16", output="o.jpg"), 2, "JPEG holds only 8 bits", "untouched"),
    Case("--bit-depth 12", flags("--bit-depth", "12"), 2, "--bit-depth: expected 8 or 16, got 12", "untouched"),
    Case(
        "--jpeg-quality 0",
        flags("--jpeg-quality", "0"),
        2,
        "--jpeg-quality: expected a whole number from 1",
        "untouched",
    ),
    Case("--bit-depth 16 PNG", flags("--bit-depth", "16"), 0, None, "written"),
    Case("--bit-depth 16 TIFF", flags("--bit-depth", "16", output="o.tif"), 0, None, "untouched"),
    Case("--deterministic", flags("--deterministic"), 0, None, "written"),
    # Runs that fail
    Case("out of memory (CUDA)", flags(), 1, OOM_MESSAGE, "untouched", out_of_memory(torch.OutOfMemoryError("x"))),
    Case("out of memory (CPU)", flags(), 1, OOM_MESSAGE, "untouched", real_cpu_allocation_failure),
    Case("MemoryError", flags(), 1, OOM_MESSAGE, "untouched", out_of_memory(MemoryError())),
    Case(
        "out of memory, --keep-partial",
        flags("--keep-partial"),
        1,
        "(L-BFGS keeps 100 steps of history); wrote the last image (iteration 1) to {tmp}/out.png",
        "written",
        out_of_memory_after(1),
    ),
    Case(
        "loss turns NaN",
        flags(),
        1,
        "the optimisation diverged at iteration 2/2: the style loss at relu1_1 became NaN; try a lower "
        "--learning-rate (now 1), --optimizer adam, or a smaller --style-weight; "
        "nothing written (--keep-partial writes the last good image)",
        "untouched",
        diverging(2),
    ),
    Case(
        "loss turns NaN, --keep-partial",
        flags("--keep-partial"),
        1,
        "smaller --style-weight; wrote the last good image (iteration 1) to {tmp}/out.png",
        "written",
        diverging(2),
    ),
    Case(
        "loss NaN at once, --keep-partial",
        flags("--keep-partial"),
        1,
        "iteration 1/2: the style loss at relu1_1 became NaN; try a smaller --style-weight; "
        "no iteration had finished, nothing written",
        "untouched",
        diverging(1),
    ),
    # Checkpoints
    Case(
        "--resume without a checkpoint",
        flags("--resume"),
        1,
        "--resume: there is no checkpoint '{tmp}/out.png.ckpt' to resume from (a run writes one with --checkpoint",
        "untouched",
    ),
    Case(
        "--checkpoint-every -1",
        flags("--checkpoint-every", "-1"),
        2,
        "--checkpoint-every: expected a whole number of at least 0, got -1",
        "untouched",
    ),
    Case(
        "--resume from a corrupt checkpoint",
        earlier_checkpoint("out.png", "--resume"),
        1,
        "'{tmp}/out.png.ckpt' is not a readable artstyle checkpoint (truncated or corrupt)",
        "untouched",
    ),
    Case(
        "an earlier checkpoint is replaced",
        earlier_checkpoint("out.png", "--checkpoint-every", "1"),
        0,
        "artstyle: warning: '{tmp}/out.png.ckpt' holds an earlier run and will be replaced "
        "(--resume continues that run instead)",
        "written",
    ),
    Case(
        "--no-clobber and an earlier checkpoint",
        earlier_checkpoint("new.png", "--checkpoint-every", "1", "--no-clobber"),
        1,
        "cannot write the checkpoint '{tmp}/new.png.ckpt': the file already exists (--no-clobber)",
        "untouched",
    ),
    # artstyle reproduce
    Case("reproduce: no metadata", reproduce_plain_image, 1, "no artstyle parameters found", "untouched"),
    Case("reproduce onto the original", reproduce_onto_the_original, 2, "add --overwrite to replace it", "untouched"),
    Case("reproduce: changed input", reproduce_changed_content, 1, "is not the content image it was made", "untouched"),
    Case(
        "reproduce: missing input", reproduce_missing_style, 1, "cannot find the style image 'style.png'", "untouched"
    ),
    Case("reproduce: --style count", reproduce_wrong_style_count, 2, "--style: given 2 times", "untouched"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_unusual_input_from_the_command_line(
    fake_bundled: FakeBundled,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    case: Case,
) -> None:
    output = tmp_path / "out.png"
    random_rgb(20, 10, seed=8).save(output)
    before = output.read_bytes()
    if case.optimize is not None:
        monkeypatch.setattr(api, "optimize_stages", case.optimize)
    argv = case.build(Setup(tmp_path, files, output, capsys))
    code, out, err = run_cli(argv, capsys)

    assert code == case.code, err
    assert out == "" and "Traceback" not in err
    lines = err.splitlines()
    if case.message is None:
        assert lines == []
    else:
        assert len(lines) == 1, err
        expected = case.message.format(tmp=tmp_path)
        assert lines[0].startswith("artstyle: warning: " if code == 0 else "artstyle: error: ")
        assert expected in lines[0]
    if case.output == "untouched":
        assert output.read_bytes() == before
    else:
        assert output.read_bytes() != before
        assert read_image(output).size[0] in (27, 32)
        assert read_metadata(output) is not None
    assert leftovers(tmp_path) == []


def test_the_table_covers_at_least_twenty_bad_or_unusual_inputs() -> None:
    assert len(CASES) >= 20


def test_outputs_written_by_the_table_are_what_was_asked(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path, capsys: CaptureFixture
) -> None:
    rotated = rotated_jpeg(tmp_path / "phone.jpg")
    assert run_cli([rotated, files["style"], "-o", tmp_path / "r.png", *options()], capsys)[0] == 0
    assert read_image(tmp_path / "r.png").size == (27, 32)  # portrait, as the phone showed it
    for name in ("deep.png", "deep.tif"):
        assert run_cli([files["content"], files["style"], "-o", tmp_path / name, *options("--bit-depth", "16")], capsys)
        with Image.open(tmp_path / name) as image:
            assert image.info["icc_profile"] == srgb_profile()
    assert (tmp_path / "deep.png").read_bytes()[24] == 16  # IHDR bit depth
    meta = read_metadata(tmp_path / "deep.tif")
    assert meta is not None and meta["output"] == {"bit_depth": 16, "jpeg_quality": 95}


def test_a_runtime_error_that_is_not_about_memory_is_not_hidden(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "optimize_stages", out_of_memory(RuntimeError("a genuine bug")))
    with pytest.raises(RuntimeError, match="a genuine bug"):
        cli.main([str(files["content"]), str(files["style"]), "-o", str(tmp_path / "o.png"), *map(str, options())])


def test_no_clobber_also_protects_intermediate_images(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path, capsys: CaptureFixture
) -> None:
    (tmp_path / "out.00001.png").write_bytes(b"an earlier run")
    argv = [files["content"], files["style"], "-o", tmp_path / "out.png", *options("--no-clobber", "--save-every", "1")]
    code, _, err = run_cli(argv, capsys)
    assert code == 1 and "out.00001.png': the file already exists" in err
    assert not (tmp_path / "out.png").exists()


def test_intermediate_images_carry_their_step(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path, capsys: CaptureFixture
) -> None:
    argv = [files["content"], files["style"], "-o", tmp_path / "out.tif", *options("--save-every", "1")]
    argv[argv.index("--iterations") + 1] = "3"
    assert run_cli(argv, capsys)[0] == 0
    assert json.loads((tmp_path / "out.00002.tif.json").read_text())["step"] == 2
    assert "step" not in json.loads((tmp_path / "out.tif.json").read_text())


# --------------------------------------------------------------------------- #
# The same cases through the Python API
# --------------------------------------------------------------------------- #

API_OPTIONS: dict[str, Any] = {
    "size": 32,
    "iterations": 2,
    "device": "cpu",
    "seed": 3,
    "content_layers": "relu2_2",
    "style_layers": "relu1_1,relu2_1",
}


def test_the_api_refuses_a_bomb_and_warns_about_a_tiny_image(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(ImageReadError, match="image too large"):
        api.stylize(png_bomb(tmp_path / "bomb.png"), files["style"], **API_OPTIONS)
    with imageio.pixel_limit(1000), pytest.raises(ImageReadError, match="the limit is 1,000"):
        api.stylize(files["content"], files["style"], **API_OPTIONS)
    with pytest.warns(ArtstyleWarning, match=r"style image is only 1x1 px, .* upscaled to 32x32"):
        api.stylize(files["content"], tiny(tmp_path / "dot.png"), **API_OPTIONS)
    with pytest.raises(ImageTooSmallError, match="needs at least 2 px"):
        api.stylize(sliver(tmp_path / "line.png"), files["style"], **API_OPTIONS)


def test_the_api_result_carries_the_float_image_and_deterministic_runs_repeat(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path
) -> None:
    stylizer = api.Stylizer(device="cpu")
    config = api.make_config(**API_OPTIONS, init="noise", deterministic=True)
    first = stylizer.run(files["content"], files["style"], config)
    second = stylizer.run(files["content"], files["style"], config)
    assert first.tensor is not None and second.tensor is not None
    assert first.tensor.dtype == torch.float32 and tuple(first.tensor.shape) == (1, 3, 27, 32)
    assert torch.equal(first.tensor, second.tensor)
    np.testing.assert_array_equal(np.asarray(first.image), np.asarray(imageio.tensor_to_image(first.tensor)))
    imageio.save_image(first.tensor, tmp_path / "deep.png", first.metadata(), bit_depth=16)
    assert read_metadata(tmp_path / "deep.png") == json.loads(json.dumps(first.metadata()))


# --------------------------------------------------------------------------- #
# Determinism and reproduce
# --------------------------------------------------------------------------- #


def noise_run(files: dict[str, Path], output: Path, *extra: str) -> list[str | Path]:
    return [files["content"], files["style"], "-o", output, *options("--init", "noise", "--deterministic", *extra)]


def test_deterministic_runs_are_bit_identical_and_reproduce_confirms_it(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path, capsys: CaptureFixture
) -> None:
    first, second = tmp_path / "first.png", tmp_path / "second.png"
    assert run_cli(noise_run(files, first), capsys)[0] == 0
    assert run_cli(noise_run(files, second), capsys)[0] == 0
    assert first.read_bytes() == second.read_bytes()

    code, _, err = run_cli(["reproduce", first, "--check"], capsys)
    again = tmp_path / "first.reproduced.png"
    assert code == 0, err
    assert err.splitlines()[-1] == f"artstyle: {again} is identical to the original, byte for byte"
    assert again.read_bytes() == first.read_bytes()
    meta = read_metadata(first)
    assert meta is not None and meta["parameters"]["deterministic"] is True  # type: ignore[index]


def test_reproduce_a_sixteen_bit_tiff_with_inputs_given_elsewhere(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path, capsys: CaptureFixture
) -> None:
    original = tmp_path / "made" / "art.tif"
    original.parent.mkdir()
    assert run_cli(noise_run(files, original, "--bit-depth", "16"), capsys)[0] == 0
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    content, style = moved / "photo.png", moved / "painting.png"
    files["content"].rename(content)
    files["style"].rename(style)
    new = tmp_path / "new.tif"
    argv = ["reproduce", original, "-o", new, "--content", content, "--style", style, "--check", "-q"]
    assert run_cli(argv, capsys) == (0, "", "")
    assert new.read_bytes() == original.read_bytes()
    assert (tmp_path / "new.tif.json").read_bytes() == (tmp_path / "made" / "art.tif.json").read_bytes()


def test_reproduce_finds_inputs_in_the_current_directory(
    fake_bundled: FakeBundled,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = tmp_path / "sub" / "art.png"
    original.parent.mkdir()
    init = tmp_path / "start.png"
    random_rgb(30, 30, seed=5).save(init)
    assert run_cli(noise_run(files, original, "--init", str(init)), capsys)[0] == 0
    meta = read_metadata(original)
    assert meta is not None and meta["inputs"]["init"]["file"] == "start.png"  # type: ignore[index]
    monkeypatch.chdir(tmp_path)
    assert run_cli(["reproduce", original, "--check", "-q"], capsys)[0] == 0
    assert (tmp_path / "sub" / "art.reproduced.png").read_bytes() == original.read_bytes()


def test_reproduce_an_interrupted_run_stops_where_it_stopped(
    fake_bundled: FakeBundled,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupted(*args: Any, callback: Any = None, **kwargs: Any) -> torch.Tensor:
        def relay(progress: Progress) -> None:
            callback(progress)
            if progress.step == 2:
                raise KeyboardInterrupt

        return optimize_stages(*args, callback=relay, **kwargs)

    original = tmp_path / "cut.png"
    argv = noise_run(files, original)
    argv[argv.index("--iterations") + 1] = "6"
    with monkeypatch.context() as patch:
        patch.setattr(api, "optimize_stages", interrupted)
        assert run_cli(argv, capsys)[0] == 130
    assert read_metadata(original)["interrupted_at"] == 2  # type: ignore[index]
    code, _, err = run_cli(["reproduce", original, "--check"], capsys)
    assert code == 0, err
    assert "stopped at iteration 2, as the original" in err
    assert (tmp_path / "cut.reproduced.png").read_bytes() == original.read_bytes()


def test_reproduce_reports_a_difference(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path, capsys: CaptureFixture
) -> None:
    original = tmp_path / "art.png"
    assert run_cli(noise_run(files, original), capsys)[0] == 0
    meta = read_metadata(original)
    tampered = np.asarray(read_image(original)).copy()
    tampered[0, :4] = 0
    save_image(Image.fromarray(tampered), original, meta)
    code, _, err = run_cli(["reproduce", original], capsys)
    assert code == 0
    assert "differs from the original in 0.5% of its pixels, by up to" in err.splitlines()[-1]
    assert run_cli(["reproduce", original, "--check", "-q"], capsys)[0] == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"parameters": {"size": 32, "sharpness": 3}}, "option 'sharpness' (from artstyle 9.9) is unknown"),
        ({"parameters": {"size": -4}}, "its recorded parameters are invalid (--size: expected a whole number"),
        ({"inputs": {"content": {"file": "content.png"}}}, "its metadata records no content image"),
        ({"output": {"bit_depth": "deep"}}, "its recorded output option bit_depth is not a whole number"),
        ({"interrupted_at": -1}, "its recorded interrupted_at is not a positive whole number"),
    ],
)
def test_reproduce_refuses_unusable_metadata(
    fake_bundled: FakeBundled,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: CaptureFixture,
    change: dict[str, Any],
    message: str,
) -> None:
    original = tmp_path / "art.png"
    assert run_cli(noise_run(files, original), capsys)[0] == 0
    meta = read_metadata(original)
    assert meta is not None
    save_image(read_image(original), original, {**meta, **change, "artstyle": "9.9"})
    code, _, err = run_cli(["reproduce", original, "-q"], capsys)
    assert code == 1
    (line,) = err.splitlines()
    assert line.startswith(f"artstyle: error: cannot reproduce '{original}': ") and message in line


def test_reproduce_warns_about_another_version(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path, capsys: CaptureFixture
) -> None:
    original = tmp_path / "art.png"
    assert run_cli(noise_run(files, original), capsys)[0] == 0
    meta = read_metadata(original)
    save_image(read_image(original), original, {**(meta or {}), "artstyle": "0.0.1"})
    code, _, err = run_cli(["reproduce", original, "-q"], capsys)
    assert code == 0
    assert (
        err
        == f"artstyle: warning: '{original}' was made by artstyle 0.0.1, this is {__version__}: the result may differ\n"
    )


# --------------------------------------------------------------------------- #
# Real processes: signals and a traceback-free failure
# --------------------------------------------------------------------------- #


def child_environment(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "ARTSTYLE_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}


def default_sigint() -> None:
    # A child of a non-interactive shell's background job inherits an ignored SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(path: Path, process: subprocess.Popen[str], limit: float = 120.0) -> None:
    """Wait until ``path`` exists (a hang guard with a generous limit, not a speed test)."""
    give_up = time.monotonic() + limit
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < give_up, "the child never got going"
        time.sleep(0.05)


def signal_child(argv: list[str | Path], cwd: Path, ready: Path, signum: int) -> tuple[int, str, str]:
    """Run ``artstyle ARGV`` in a child (random weights), send it ``signum`` once ``ready``
    exists; its exit code, stdout and stderr."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / "_cli_child.py"), *map(str, argv)],
        cwd=cwd,
        env=child_environment(cwd),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        wait_for(ready, process)
        process.send_signal(signum)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, out, err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(
    ("signum", "code", "words"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "stopped by SIGTERM")]
)
def test_a_signal_writes_the_current_image(
    files: dict[str, Path], tmp_path: Path, signum: int, code: int, words: str
) -> None:
    output = tmp_path / "out.png"
    argv = [files["content"], files["style"], "-o", output, *options("--save-every", "1")]
    argv[argv.index("--iterations") + 1] = "100000"
    returncode, out, err = signal_child(argv, tmp_path, tmp_path / "out.00001.png", signum)
    assert returncode == code, err
    assert out == "" and "Traceback" not in err
    (line,) = err.splitlines()
    match = re.fullmatch(f"artstyle: {words} at iteration (\\d+)/100000; wrote the current image to (.*)", line)
    assert match is not None and match[2] == str(output), line
    meta = read_metadata(output)
    assert meta is not None and meta["interrupted_at"] == int(match[1])
    assert read_image(output).size == (32, 27)
    assert leftovers(tmp_path) == []


def test_a_bad_input_in_a_real_process_is_one_line_without_traceback(files: dict[str, Path], tmp_path: Path) -> None:
    bomb = png_bomb(tmp_path / "bomb.png")
    argv = [sys.executable, "-m", "artstyle", bomb, files["style"], "-o", tmp_path / "out.png", "-q"]
    done = subprocess.run(
        [str(a) for a in argv], env=child_environment(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"artstyle: error: cannot read image '{bomb}': image too large (10,000,000,000 pixels; "
        "the limit is 200,000,000, see --max-pixels)\n"
    )
    assert not (tmp_path / "out.png").exists()


def test_a_picture_made_before_the_upsample_option_is_reproduced_with_plain_upsampling() -> None:
    from artstyle.runs.reproduce import _Recorded

    inputs = {"content": {"file": "photo.png", "sha256": "0" * 64}, "styles": [{"file": "art.png", "sha256": "1" * 64}]}
    before = _Recorded("old.png", {"inputs": inputs, "parameters": {"size": 64}})
    assert before.config().upsample == "bicubic"
    now = _Recorded("new.png", {"inputs": inputs, "parameters": {"size": 64, "upsample": "guided"}})
    assert now.config().upsample == "guided"
