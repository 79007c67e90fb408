"""The page as Gradio builds it (needs Gradio; no browser), and the core's independence from it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from artstyle import web
from artstyle.api import Stylizer
from artstyle.cli import serve
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
    assert {f"option-{c.name}-on" for c in CONTROLS if c.switch} == {"option-strength-on"} & ids
    api_names = {dependency.get("api_name") for dependency in config["dependencies"]}
    assert {"submit", "run", "stop"} <= api_names


def test_the_core_never_imports_gradio() -> None:
    code = "import sys, artstyle, artstyle.cli, artstyle.web; assert 'gradio' not in sys.modules, 'gradio imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr


def test_serve_on_a_taken_port_fails_in_one_line_and_leaves_no_files(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("GRADIO_TEMP_DIR", "GRADIO_ANALYTICS_ENABLED"):
        monkeypatch.delenv(name, raising=False)  # restored after the test
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = serve._serve("127.0.0.1", port, Stylizer(device="cpu"), web.Limits())
    assert code == 1
    err = capsys.readouterr().err
    assert err == (
        f"artstyle serve: error: cannot listen on 127.0.0.1:{port} (the port is taken, or the address is not "
        "this machine's); try another --port or --host\n"
    )
    private = Path(os.environ["GRADIO_TEMP_DIR"])
    assert private.name.startswith("artstyle-serve-") and not private.exists()
