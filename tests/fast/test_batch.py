"""``artstyle batch``: the grid and the manifest, naming, skip and force, failures among
good pictures, style targets computed once, and the Ray path (a local Ray, and a real
two-node cluster whose worker node is killed while it runs a picture).

The network is the fast tier's random one: ``fake_bundled`` in this process, and for Ray
workers (other processes) a random VGG19 written to a file once (``random_weights``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from _support import RAY_TEST_ENVIRONMENT, FakeBundled, ray_environment, smooth_rgb

from artstyle import api
from artstyle.api import make_config
from artstyle.batch.jobs import Batch, Item, expand, grid, picture_name, read_manifest, unique
from artstyle.batch.run import SKIPPED, BatchReporter, Done, run_batch
from artstyle.cli import main
from artstyle.errors import ConfigError
from artstyle.files.metadata import read_metadata
from artstyle.files.read import read_image
from artstyle.runs import FAILED, WRITTEN

CaptureFixture = pytest.CaptureFixture[str]
FAST = ["--size", "32", "--iterations", "2", "--coarse-iterations", "1", "--content-layers", "relu2_2",
        "--style-layers", "relu1_1,relu2_1", "--device", "cpu", "-q"]  # fmt: skip


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "photos").mkdir()
    paths = {}
    for name, seed in (("photos/a.png", 1), ("photos/b.jpg", 2), ("c.png", 3), ("starry.png", 4), ("scream.png", 5)):
        paths[name] = tmp_path / name
        smooth_rgb(40, 30, seed=seed).save(paths[name])
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    return paths


def config(**options: Any) -> Any:
    base = {"size": 32, "iterations": 2, "coarse_iterations": 1, "content_layers": "relu2_2",
            "style_layers": "relu1_1,relu2_1", "device": "cpu", "seed": 1}  # fmt: skip
    return make_config(**{**base, **options})


# --------------------------------------------------------------------------- #
# The pictures of a batch
# --------------------------------------------------------------------------- #


def test_directories_and_globs_give_their_images(images: dict[str, Path], tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    assert expand([str(photos)]) == [str(photos / "a.png"), str(photos / "b.jpg")]
    assert expand([str(tmp_path / "*.png")]) == [str(tmp_path / n) for n in ("c.png", "scream.png", "starry.png")]
    with pytest.raises(ConfigError, match="no images in"):
        expand([str(tmp_path / "*.gif")])


def test_the_grid_names_every_picture_and_makes_collisions_unique() -> None:
    items = grid(["x/photo.jpg", "y/photo.png", "z/cat.png"], ["art/starry.jpg"], "out", "png")
    assert [Path(i.output).name for i in items] == ["photo__starry.png", "photo__starry-2.png", "cat__starry.png"]
    assert unique(["a.png", "A.png", "a-2.png"]) == ["a.png", "A-3.png", "a-2.png"]
    assert picture_name("p/cat.jpg", ["s/a.jpg", "s/b.png"], "jpg") == "cat__a+b.jpg"


def test_a_json_lines_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "jobs.jsonl"
    rows = [
        {"content": "photos/a.png", "styles": ["starry.png", "scream.png"], "style_weights": [3, 1], "size": 64},
        {"content": "c.png", "styles": "starry.png", "output": "mine.png", "tv_weight": 2.5},
    ]
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n# a comment\n\n")
    first, second = read_manifest(str(manifest), "out", "png")
    assert first.content == str(tmp_path / "photos/a.png") and first.output == os.path.join(
        "out", "a__starry+scream.png"
    )
    assert first.styles == (str(tmp_path / "starry.png"), str(tmp_path / "scream.png"))
    assert first.config(config()).style_weights == (3.0, 1.0) and first.config(config()).size == 64
    assert second.output == os.path.join("out", "mine.png") and second.config(config()).tv_weight == 2.5


def test_a_csv_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "jobs.csv"
    manifest.write_text("content,styles,style_weights,iterations,preserve_color\nc.png,a.png;b.png,1;1,7,luminance\n")
    (item,) = read_manifest(str(manifest), "out", "jpg")
    assert item.styles == (str(tmp_path / "a.png"), str(tmp_path / "b.png")) and item.output.endswith("c__a+b.jpg")
    picture = item.config(config())
    assert (picture.iterations, picture.preserve_color, picture.style_weights) == (7, "luminance", (1.0, 1.0))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"content": "a.png"}\n', "line 1: a picture needs 'content' and 'styles'"),
        ('{"content": "a.png", "styles": "b.png", "szie": 3}\n', "line 1: unknown option 'szie'"),
        ('{"content": "a.png", "styles": "b.png"}\nnot json\n', "line 2: not JSON"),
        ("\n", "lists no pictures"),
    ],
)
def test_a_bad_manifest_says_where(tmp_path: Path, text: str, problem: str) -> None:
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text(text)
    with pytest.raises(ConfigError, match=problem):
        read_manifest(str(manifest), "out", "png")


# --------------------------------------------------------------------------- #
# Running a batch here
# --------------------------------------------------------------------------- #


@pytest.mark.usefixtures("fake_bundled")
def test_the_command_makes_the_grid_then_skips_it_then_forces_it(
    images: dict[str, Path], tmp_path: Path, capsys: CaptureFixture
) -> None:
    out = tmp_path / "out"
    argv = ["batch", str(tmp_path / "photos"), str(images["c.png"]), "--styles", str(images["starry.png"]),
            str(images["scream.png"]), "-o", str(out), "--seed", "4", *FAST]  # fmt: skip
    assert main(argv) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{c}__{s}.png" for c in "abc" for s in ("starry", "scream"))
    assert capsys.readouterr().err.startswith("artstyle: batch: 6 written, 0 skipped, 0 failed")
    metadata = read_metadata(out / "a__starry.png")
    assert metadata is not None and metadata["parameters"]["seed"] == 4
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(argv) == 0
    assert capsys.readouterr().err.startswith("artstyle: batch: 0 written, 6 skipped, 0 failed")
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    assert main([*argv, "--tv-weight", "3"]) == 0  # other options: made again
    assert capsys.readouterr().err.startswith("artstyle: batch: 6 written, 0 skipped")
    assert main([*argv, "--tv-weight", "3", "--force"]) == 0
    assert capsys.readouterr().err.startswith("artstyle: batch: 6 written, 0 skipped")


@pytest.mark.usefixtures("fake_bundled")
def test_a_picture_with_a_changed_input_is_made_again(images: dict[str, Path], tmp_path: Path) -> None:
    batch = Batch(grid([str(images["c.png"])], [str(images["starry.png"])], str(tmp_path), "png"), config())
    assert [d.kind for d in run_batch(batch).done] == [WRITTEN]
    assert [d.kind for d in run_batch(batch).done] == [SKIPPED]
    smooth_rgb(40, 30, seed=99).save(images["starry.png"])
    assert [d.kind for d in run_batch(batch).done] == [WRITTEN]


@pytest.mark.usefixtures("fake_bundled")
def test_a_failing_picture_is_reported_and_the_others_go_on(
    images: dict[str, Path], tmp_path: Path, capsys: CaptureFixture
) -> None:
    manifest = tmp_path / "jobs.jsonl"
    rows = [
        {"content": "c.png", "styles": "starry.png"},
        {"content": "missing.png", "styles": "starry.png"},
        {"content": "c.png", "styles": "scream.png", "size": -3},
        {"content": "photos/notes.txt", "styles": "scream.png"},
        {"content": "photos/a.png", "styles": "scream.png"},
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    assert main(["batch", "--manifest", str(manifest), "-o", str(out), *FAST]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("artstyle: batch: 2 written, 0 skipped, 3 failed")
    assert len(err) == 4 and all(line.startswith("artstyle:   failed: ") for line in err[1:])
    assert any("missing.png': no such file" in line for line in err)
    assert any("jobs.jsonl line 3: --size" in line for line in err)
    assert any("notes.txt" in line for line in err)
    assert sorted(p.name for p in out.iterdir()) == ["a__scream.png", "c__starry.png"]


def test_style_targets_are_computed_once_per_painting_set(
    images: dict[str, Path], tmp_path: Path, fake_bundled: FakeBundled, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = api.compute_stats
    monkeypatch.setattr(api, "compute_stats", lambda *a, **k: calls.append(1) or real(*a, **k))
    photos = [str(images[n]) for n in ("photos/a.png", "photos/b.jpg", "c.png")]
    batch = Batch(grid(photos, [str(images["starry.png"]), str(images["scream.png"])], str(tmp_path), "png"), config())
    outcome = run_batch(batch)
    assert [d.kind for d in outcome.done] == [WRITTEN] * 6
    assert len(calls) == 2  # once per painting (32 px: one scale), not six pictures' worth
    assert fake_bundled.calls == 1  # the network loaded once


class StopAt(BatchReporter):
    def __init__(self, picture: int) -> None:
        self.picture, self.started_pictures = picture, 0

    def picture_started(self, item: Item) -> None:
        self.started_pictures += 1

    def progress(self, item: Item, step: int, iterations: int) -> None:
        if self.started_pictures == self.picture:
            raise KeyboardInterrupt


@pytest.mark.usefixtures("fake_bundled")
def test_ctrl_c_ends_the_batch_and_says_what_was_done(images: dict[str, Path], tmp_path: Path) -> None:
    photos = [str(images[n]) for n in ("photos/a.png", "photos/b.jpg", "c.png")]
    batch = Batch(grid(photos, [str(images["starry.png"])], str(tmp_path / "out"), "png"), config())
    (tmp_path / "out").mkdir()
    outcome = run_batch(batch, StopAt(2))
    assert outcome.interrupted == "interrupted" and [d.kind for d in outcome.done] == [WRITTEN]
    stopped = read_metadata(tmp_path / "out" / "b__starry.png")  # the current picture, marked unfinished
    assert stopped is not None and "stopped_at" in stopped
    assert [d.kind for d in run_batch(batch).done] == [SKIPPED, WRITTEN, WRITTEN]  # made again


# --------------------------------------------------------------------------- #
# Ray
# --------------------------------------------------------------------------- #


@pytest.mark.ray
def test_the_ray_path_makes_the_same_pictures(
    images: dict[str, Path], tmp_path: Path, local_ray: Any, random_weights: str
) -> None:
    from artstyle.batch.cluster import RayExecutor

    photos = [str(images[n]) for n in ("photos/a.png", "c.png")]
    styles = [str(images["starry.png"]), str(images["scream.png"])]
    (tmp_path / "ray").mkdir()
    (tmp_path / "here").mkdir()
    on_ray = run_batch(Batch(grid(photos, styles, str(tmp_path / "ray"), "png"), config(weights=random_weights)),
                       executor=RayExecutor(cpus_per_job=1))  # fmt: skip
    assert sorted(d.kind for d in on_ray.done) == [WRITTEN] * 4
    torch.set_num_threads(1)
    here = run_batch(Batch(grid(photos, styles, str(tmp_path / "here"), "png"), config(weights=random_weights)))
    assert [d.kind for d in here.done] == [WRITTEN] * 4
    for path in (tmp_path / "here").iterdir():
        a, b = read_image(path), read_image(tmp_path / "ray" / path.name)
        assert a.tobytes() == b.tobytes(), path.name
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == sorted(p.name for p in (tmp_path / "here").iterdir())


@pytest.mark.ray
def test_a_bad_picture_on_ray_is_one_line_and_the_others_go_on(
    images: dict[str, Path], tmp_path: Path, local_ray: Any, random_weights: str
) -> None:
    from artstyle.batch.cluster import RayExecutor

    items = grid(
        [str(images["c.png"]), str(tmp_path / "missing.png")], [str(images["starry.png"])], str(tmp_path), "png"
    )
    outcome = run_batch(Batch(items, config(weights=random_weights)), executor=RayExecutor(cpus_per_job=1))
    kinds = {Path(d.item.output).name: (d.kind, d.error) for d in outcome.done}
    assert kinds["c__starry.png"] == (WRITTEN, None)
    assert kinds["missing__starry.png"][0] == FAILED and "no such file" in str(kinds["missing__starry.png"][1])


@pytest.mark.parametrize(("address", "problem"), [("127.0.0.2:1", "cannot connect to the Ray cluster at 127.0.0.2:1"),
                                                  ("nowhere", "--ray: expected HOST:PORT or auto")])  # fmt: skip
def test_a_cluster_that_is_not_there_is_one_line(
    images: dict[str, Path], tmp_path: Path, capsys: CaptureFixture, address: str, problem: str
) -> None:
    pytest.importorskip("ray")
    argv = ["batch", str(images["c.png"]), "--styles", str(images["starry.png"]), "-o", str(tmp_path / "out"),
            "--ray", address, *FAST]  # fmt: skip
    assert main(argv) in (1, 2)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and problem in err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.2", 0))
        return int(sock.getsockname()[1])


def ray_start(*arguments: str, temp: Path) -> subprocess.Popen[bytes]:
    """``ray start --block`` in a session of its own (ended by its pid's process group)."""
    ray = Path(sys.executable).with_name("ray")
    command = [str(ray), "start", "--block", "--node-ip-address=127.0.0.2", "--num-cpus=1",
               "--object-store-memory=80000000", *arguments]  # fmt: skip
    return subprocess.Popen(
        command,
        env={**ray_environment(), "RAY_TMPDIR": str(temp)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class KillWorkerNode(BatchReporter):
    """Kills the worker node when the first picture is done (its node is then still running one)."""

    def __init__(self, worker: subprocess.Popen[bytes]) -> None:
        self.worker, self.killed = worker, False

    def done(self, done: Done) -> None:
        if not self.killed:
            self.killed = True
            os.killpg(self.worker.pid, signal.SIGKILL)


@pytest.mark.ray
def test_a_killed_worker_node_costs_only_its_running_picture(
    images: dict[str, Path], tmp_path: Path, random_weights: str
) -> None:
    """A real two-node cluster (head and worker, one CPU each, on 127.0.0.2); the worker
    node is killed while it runs a picture; the batch still ends with every picture whole."""
    os.environ.update(RAY_TEST_ENVIRONMENT)
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()  # the session's local Ray, if a test started it, is not this cluster
    temp = Path("/tmp") / f"rc{os.getpid()}"
    port = free_port()
    head = ray_start("--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}", temp=temp)
    worker = None
    try:
        _wait_for_nodes(ray, f"127.0.0.2:{port}", 1)
        worker = ray_start(f"--address=127.0.0.2:{port}", temp=temp)
        _wait_for_nodes(ray, f"127.0.0.2:{port}", 2)
        from artstyle.batch.cluster import RayExecutor

        photos = [str(images[n]) for n in ("photos/a.png", "photos/b.jpg", "c.png")]
        styles = [str(images["starry.png"]), str(images["scream.png"])]
        out = tmp_path / "out"
        out.mkdir()
        picture = config(weights=random_weights, iterations=40)
        reporter = KillWorkerNode(worker)
        outcome = run_batch(Batch(grid(photos, styles, str(out), "png"), picture), reporter,
                            executor=RayExecutor(cpus_per_job=1))  # fmt: skip
        # The node's whole process group (its raylet and workers) was killed: Ray logs the
        # running task "failed because the node it was running on is dead" and retries it.
        assert reporter.killed and worker.wait(timeout=30) is not None
        assert sorted(d.kind for d in outcome.done) == [WRITTEN] * 6, [d.error for d in outcome.done]
        for path in out.iterdir():
            assert read_image(path).size == (32, 24)
            metadata = read_metadata(path)
            assert metadata is not None and "stopped_at" not in metadata
    finally:
        ray.shutdown()
        for process in (worker, head):
            if process is not None:
                end(process)
        shutil.rmtree(temp, ignore_errors=True)


def _wait_for_nodes(ray: Any, address: str, count: int, limit: float = 120.0) -> None:
    """Connect to the cluster and wait until ``count`` nodes are alive (a hang guard, not a timing)."""
    give_up = time.monotonic() + limit
    while True:
        try:
            if not ray.is_initialized():
                ray.init(address=address, log_to_driver=False, logging_level="ERROR")
            if sum(1 for node in ray.nodes() if node.get("Alive")) >= count:
                return
        except (ConnectionError, RuntimeError):
            pass
        assert time.monotonic() < give_up, f"the Ray cluster at {address} did not get {count} nodes"
        time.sleep(0.5)
