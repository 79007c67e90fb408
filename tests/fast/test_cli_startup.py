"""The command line answers before PyTorch is imported: ``--help``, ``--version``, every
command's help, and every usage error (argparse's and the options' own checks).

Each case runs ``python -X importtime -m artstyle ...`` in a fresh process and reads
the modules it imported from ``-X importtime``'s lines on stderr: none of PyTorch, numpy,
Pillow, OpenCV, PyAV, Gradio or Ray may be among them. Nothing here is timed (the
figures are benchmarks/startup.py's); the import-linter contract on the command line's
modules (pyproject.toml) checks their import chains, this the processes themselves.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import artstyle
from artstyle import __version__
from artstyle.cli import serve

#: The packages that take seconds to import, or are extras: none may load before a job runs.
HEAVY = ("torch", "numpy", "PIL", "tifffile", "cv2", "av", "gradio", "ray")
#: The directory ``artstyle`` is imported from here, first on the children's path.
SOURCE = str(Path(artstyle.__file__).resolve().parents[1])


@dataclass(frozen=True)
class Answer:
    code: int
    out: str
    err: str
    modules: frozenset[str]


def artstyle_command(*argv: str, cwd: Path) -> Answer:
    """``python -X importtime -m artstyle ARGV`` in ``cwd``: its exit code, output, error
    lines without importtime's, and the top-level packages it imported."""
    path = os.pathsep.join(p for p in (SOURCE, os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "artstyle", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": path, "COLUMNS": "100"},
        timeout=120,
    )
    lines = done.stderr.splitlines()
    imported = [line.rsplit("|", 1)[-1].strip() for line in lines if line.startswith("import time:")]
    modules = frozenset(name.split(".")[0] for name in imported)
    err = "".join(line + "\n" for line in lines if not line.startswith("import time:"))
    return Answer(done.returncode, done.stdout, err, modules)


def heavy(answer: Answer) -> list[str]:
    return [name for name in HEAVY if name in answer.modules]


def test_the_importtime_reading_sees_what_a_process_imports(tmp_path: Path) -> None:
    """The checks below can fail: a package a process imports is among its modules."""
    answer = artstyle_command("--version", cwd=tmp_path)
    assert answer.modules and "artstyle" in answer.modules
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import numpy"], capture_output=True, text=True, timeout=120
    )
    seen = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "numpy" in seen


HELP = [
    ([], "usage: artstyle [-h]"),
    (["video"], "usage: artstyle video [-h]"),
    (["batch"], "usage: artstyle batch [-h]"),
    (["serve"], "usage: artstyle serve [-h]"),
    (["reproduce"], "usage: artstyle reproduce [-h]"),
]


@pytest.mark.parametrize(("command", "usage"), HELP, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_help_imports_no_pytorch(command: list[str], usage: str, tmp_path: Path) -> None:
    answer = artstyle_command(*command, "--help", cwd=tmp_path)
    assert (answer.code, answer.err) == (0, "")
    assert answer.out.startswith(usage)
    assert heavy(answer) == []


def test_version_imports_no_pytorch(tmp_path: Path) -> None:
    answer = artstyle_command("--version", cwd=tmp_path)
    assert (answer.code, answer.out, answer.err) == (0, f"artstyle {__version__}\n", "")
    assert heavy(answer) == []


STILL = ["content.png", "style.png", "-o", "out.png"]
VIDEO = ["video", "clip.mp4", "style.png", "-o", "out.mp4"]

#: A command line with a usage error, and the one line it gets (its start, or the whole).
USAGE_ERRORS = [
    ("unknown flag", [*STILL, "--bogus"], "artstyle: error: unrecognized arguments: --bogus"),
    ("typo in a flag", [*STILL, "--tv-wieght", "2"], "artstyle: error: unrecognized arguments: --tv-wieght 2"),
    ("missing output", ["content.png", "style.png"], "artstyle: error: the following arguments are required: -o"),
    ("not a number", [*STILL, "--save-every", "often"], "artstyle: error: argument --save-every: invalid int value"),
    ("not a choice", [*STILL, "--preset", "fast"], "artstyle: error: argument --preset: invalid choice: 'fast'"),
    ("video: not a choice", [*VIDEO, "--flow", "magic"], "artstyle video: error: argument --flow: invalid choice"),
    ("batch: unknown flag", ["batch", "-o", "out", "--bogus"], "artstyle batch: error: unrecognized arguments"),
    ("serve: not a number", ["serve", "--port", "http"], "artstyle serve: error: argument --port: invalid int"),
    ("reproduce: no file", ["reproduce"], "artstyle reproduce: error: the following arguments are required"),
    # The options' own checks, after parsing: still before PyTorch.
    ("size 0", [*STILL, "--size", "0"], "artstyle: error: --size: expected a whole number of at least 1, got 0"),
    ("a layer VGG19 lacks", [*STILL, "--style-layers", "relu9_1"], "artstyle: error: --style-layers: unknown"),
    ("not whole", [*STILL, "--min-size", "x"], "artstyle: error: --min-size: expected a whole number, got 'x'"),
    ("negative", [*STILL, "--checkpoint-every", "-1"], "artstyle: error: --checkpoint-every: expected a whole"),
    ("weights' count", [*STILL, "--style-weights", "1", "2"], "artstyle: error: --style-weights: 2 weights for 1"),
    ("masks' count", [*STILL, "--style-masks", "a.png", "b.png"], "artstyle: error: --style-masks: 2 masks for 1"),
    ("16 bits in a JPEG", ["c.png", "s.png", "-o", "o.jpg", "--bit-depth", "16"], "artstyle: error: --bit-depth 16"),
    ("JPEG quality", [*STILL, "--jpeg-quality", "0"], "artstyle: error: --jpeg-quality: expected a whole number"),
    ("pixel limit", [*STILL, "--max-pixels", "0"], "artstyle: error: --max-pixels: expected a whole number"),
    ("video: crf", [*VIDEO, "--crf", "99"], "artstyle: error: --crf: expected a whole number from 0 to 51, got 99"),
    ("video: chunks here", [*VIDEO, "--overlap", "2"], "artstyle: error: --overlap: only applies on a Ray cluster"),
    ("video: overlap", [*VIDEO, "--ray", "auto", "--chunk-frames", "4", "--overlap", "4"], "artstyle: error: --over"),
    ("video: an option", [*VIDEO, "--tv-weight", "-1"], "artstyle: error: --tv-weight: expected a finite number"),
    ("video: weights", [*VIDEO, "--style-weights", "1", "2"], "artstyle: error: --style-weights: 2 weights for 1"),
    ("batch: no CONTENT", ["batch", "--styles", "s.png", "-o", "out"], "artstyle: error: --styles: a grid needs"),
    ("batch: nothing", ["batch", "-o", "out"], "artstyle: error: --manifest: nothing to do"),
    ("batch: 16 bits", ["batch", "c.png", "--styles", "s.png", "-o", "out", "--format", "webp", "--bit-depth", "16"],
     "artstyle: error: --bit-depth 16: WEBP holds only 8 bits"),
    ("batch: cpus", ["batch", "c.png", "--styles", "s.png", "-o", "out", "--cpus-per-job", "0"],
     "artstyle: error: --cpus-per-job: expected a whole number of at least 1"),
    ("batch: ray address", ["batch", "c.png", "--styles", "s.png", "-o", "out", "--ray", "nowhere"],
     "artstyle: error: --ray: expected HOST:PORT or auto, got 'nowhere'"),
    ("video: ray address", [*VIDEO, "--ray", "host:port"], "artstyle: error: --ray: expected HOST:PORT or auto"),
    ("reproduce: limit", ["reproduce", "out.png", "--max-pixels", "0"], "artstyle: error: --max-pixels: expected"),
    ("serve: port", ["serve", "--port", "0"], "artstyle serve: error: --port: expected 1 to 65535, got 0"),
]  # fmt: skip
#: Checked after Gradio is found (without it, the line says so: exit code 1).
SERVE_ERRORS = [
    ("serve: device", ["serve", "--device", "tpu"], "artstyle serve: error: --device: expected one of auto, cpu"),
    ("serve: weights", ["serve", "--weights", ""], "artstyle serve: error: --weights: expected bundled"),
    ("serve: a limit", ["serve", "--max-megapixels", "1e-7"], "artstyle serve: error: a limit rounds to nothing"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "line"), [case[1:] for case in USAGE_ERRORS], ids=[case[0] for case in USAGE_ERRORS])
def test_a_usage_error_is_one_line_and_imports_no_pytorch(argv: list[str], line: str, tmp_path: Path) -> None:
    answer = artstyle_command(*argv, cwd=tmp_path)
    assert answer.code == 2
    assert answer.out == ""
    assert answer.err.count("\n") == 1 and answer.err.startswith(line), answer.err
    assert heavy(answer) == []
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize(("argv", "line"), [case[1:] for case in SERVE_ERRORS], ids=[case[0] for case in SERVE_ERRORS])
def test_a_serve_usage_error_is_one_line_and_imports_no_pytorch(argv: list[str], line: str, tmp_path: Path) -> None:
    answer = artstyle_command(*argv, cwd=tmp_path)
    code = 2
    if not serve.gradio_installed():  # the line says so first
        code, line = 1, "artstyle serve: error: the web page needs Gradio"
    assert answer.code == code
    assert answer.err.count("\n") == 1 and answer.err.startswith(line), answer.err
    assert heavy(answer) == []


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["batch", "empty", "--styles", "s.png", "-o", "out"], "artstyle: error: --content: no images in 'empty'"),
        (["batch", "--manifest", "none.jsonl", "-o", "out"], "artstyle: error: --manifest: 'none.jsonl' lists no"),
        (
            ["batch", "--manifest", "bad.jsonl", "-o", "out"],
            "artstyle: error: --manifest: 'bad.jsonl' line 1: not JSON",
        ),
    ],
    ids=["a folder without images", "a manifest without pictures", "a manifest that is not JSON"],
)
def test_a_batch_without_pictures_is_one_line_and_imports_no_pytorch(
    argv: list[str], line: str, tmp_path: Path
) -> None:
    """The grid's folders and the manifest are read before PyTorch is imported."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "none.jsonl").write_text("\n")
    (tmp_path / "bad.jsonl").write_text("{content: c.png}\n")
    answer = artstyle_command(*argv, cwd=tmp_path)
    assert answer.code == 2
    assert answer.err.count("\n") == 1 and answer.err.startswith(line), answer.err
    assert heavy(answer) == []
    assert not (tmp_path / "out").exists()


def test_a_run_imports_pytorch_after_the_checks(tmp_path: Path) -> None:
    """A command line that passes the checks goes on to the run, which imports PyTorch
    (here to fail on the missing content image: one line, exit code 1)."""
    answer = artstyle_command(*STILL, "--size", "32", cwd=tmp_path)
    assert answer.code == 1
    assert answer.err.count("\n") == 1 and answer.err.startswith("artstyle: error: "), answer.err
    assert "content.png" in answer.err
    assert "torch" in answer.modules


def test_a_serve_limit_that_rounds_to_nothing_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(serve, "gradio_installed", lambda: True)
    code = serve.serve_main(["--max-megapixels", "1e-7"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        "artstyle serve: error: a limit rounds to nothing (max_pixels: expected a whole number of at least 1, got 0)\n"
    )


def test_import_artstyle_imports_pytorch_only_for_a_name_that_needs_it(tmp_path: Path) -> None:
    script = (
        "import sys, artstyle\n"
        "from artstyle import Config, ConfigError, __version__\n"
        "Config(size=64)\n"
        "assert 'torch' not in sys.modules, 'import artstyle'\n"
        "from artstyle import Stylizer\n"
        "assert 'torch' in sys.modules and Stylizer.__module__ == 'artstyle.api'\n"
    )
    path = os.pathsep.join(p for p in (SOURCE, os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path}
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("package", ["artstyle", "artstyle.features", "artstyle.web"])
def test_a_lazy_package_has_every_public_name(package: str) -> None:
    module = importlib.import_module(package)
    assert set(module.__all__) <= set(dir(module))
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        module.not_a_name  # noqa: B018
    with pytest.raises(ImportError):
        exec(f"from {package} import not_a_name", {})
