"""The page as Gradio builds it (needs Gradio; no browser), and the core's independence from it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from artstyle import web
from artstyle.api import Stylizer
from artstyle.web import CONTROLS, Studio


def test_the_page_is_built_with_every_control(tmp_path: Path) -> None:
    photo, painting = tmp_path / "photo.png", tmp_path / "painting.png"
    Image.new("RGB", (40, 30), "grey").save(photo)
    Image.new("RGB", (30, 30), "blue").save(painting)
    studio = Studio(Stylizer(device="cpu"), upload_root=tmp_path)
    config = web.build_app(studio, ([str(photo)], [str(painting)])).get_config_file()
    ids = {component.get("props", {}).get("elem_id") for component in config["components"]}
    expected = {"content", "styles", "preview", "status", "start", "stop", "download"}
    assert expected | {f"option-{c.name}" for c in CONTROLS} | {"example-photos", "example-paintings"} <= ids
    api_names = {dependency.get("api_name") for dependency in config["dependencies"]}
    assert {"submit", "run", "stop"} <= api_names


def test_the_core_never_imports_gradio() -> None:
    code = "import sys, artstyle, artstyle.cli, artstyle.web; assert 'gradio' not in sys.modules, 'gradio imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
