"""The example images that ship in the package: where they are, and their licences beside them."""

from __future__ import annotations

import subprocess
import sys

from artstyle import examples


def test_the_examples_are_in_the_package_with_their_licences() -> None:
    photos, paintings = examples.images(examples.DIRECTORY / "content"), examples.images(examples.DIRECTORY / "styles")
    assert {p.name for p in photos} >= {"chelsea.png", "astronaut.png", "rocket.jpg"}
    assert {p.name for p in paintings} >= {"starry_night.jpg", "the_scream.jpg"}
    licences = (examples.DIRECTORY / "LICENSES.md").read_text(encoding="utf-8")
    unlisted = [p.name for p in photos + paintings if f"| {p.name} |" not in licences]
    assert unlisted == []


def test_python_m_artstyle_examples_prints_their_folder() -> None:
    done = subprocess.run([sys.executable, "-m", "artstyle.examples"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(examples.DIRECTORY)
    assert done.stderr == ""
