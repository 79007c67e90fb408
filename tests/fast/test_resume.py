"""Checkpoints and ``--resume`` (issue 5): a resumed run ends exactly where an uninterrupted one does.

The engine tests run two scales (16 then 32 px) on a shallow random network: the first
scale has the Adam warm-up and then L-BFGS, the second L-BFGS only, so a state can be
taken in the warm-up, at its end, in the middle of L-BFGS, at the boundary between
scales and in the second scale. Every state goes through ``torch.save`` and
``torch.load(weights_only=True)``, as a checkpoint file does. The CLI tests interrupt a
tiny run with a callback that raises ``KeyboardInterrupt`` (as Ctrl-C does) and resume it.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from _support import FakeBundled, random_rgb, smooth_rgb

from artstyle import __version__, api, cli
from artstyle.engine import Objective, Progress, RunState, Stage, optimize_stages
from artstyle.errors import CheckpointError
from artstyle.features.vgg import VGG19Features
from artstyle.imageio import read_metadata
from artstyle.runs import checkpoint as checkpoints
from artstyle.runs.checkpoint import FORMAT, checkpoint_path, read_checkpoint

STAGES = [Stage(16, 16, 13), Stage(32, 32, 3)]  # 10 warm-up steps, 3 of L-BFGS; then 3 more at 32 px
TOTAL = 16

CaptureFixture = pytest.CaptureFixture[str]


# --------------------------------------------------------------------------- #
# The engine
# --------------------------------------------------------------------------- #


def pair(channels: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(5)
    content, style = torch.rand(1, 3, 32, 32, generator=generator), torch.rand(1, 3, 32, 32, generator=generator)
    if channels == 1:
        return content.mean(dim=1, keepdim=True), style.mean(dim=1, keepdim=True)
    return content, style


def objective_at(
    net: VGG19Features,
    content: torch.Tensor,
    style: torch.Tensor,
    stage: Stage,
    style_weight: float = 100.0,
    **options: Any,
) -> Objective:
    """The engine tests' objective at ``stage``'s size (the content resized to it)."""
    scaled = torch.nn.functional.interpolate(content, size=(stage.height, stage.width), mode="area")
    return Objective(
        net,
        scaled,
        [style],
        content_layers=(("relu2_2", 1.0),),
        style_layers=(("relu1_1", 1.0), ("relu2_1", 1.0)),
        content_weight=5.0,
        style_weight=style_weight,
        tv_weight=1.0,
        **options,
    )


def objectives(net: VGG19Features, content: torch.Tensor, style: torch.Tensor) -> Callable[[int, Stage], Objective]:
    return lambda index, stage: objective_at(net, content, style, stage)


def saved(state: RunState) -> bytes:
    """A state as a checkpoint file holds it (the optimizer's tensors keep changing afterwards)."""
    buffer = io.BytesIO()
    payload = {
        "step": state.step,
        "scale": state.scale,
        "image": state.image,
        "optimizer": state.optimizer,
        "optimizer_state": state.optimizer_state,
    }
    torch.save(payload, buffer)
    return buffer.getvalue()


def loaded(data: bytes) -> RunState:
    payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    return RunState(**payload)


def run(
    net: VGG19Features, channels: int = 3, optimizer: str = "lbfgs", **options: Any
) -> tuple[torch.Tensor, list[Progress]]:
    content, style = pair(channels)
    seen: list[Progress] = []
    lr = 1.0 if optimizer == "lbfgs" else 0.05
    result = optimize_stages(
        STAGES,
        objectives(net, content, style),
        content,
        optimizer=optimizer,
        learning_rate=lr,
        callback=seen.append,
        **options,
    )
    return result, seen


@pytest.fixture(scope="module")
def uninterrupted(shallow_vgg: VGG19Features) -> tuple[torch.Tensor, list[Progress], dict[int, bytes]]:
    """One run with a checkpoint after every iteration: its result, progress and states."""
    states: dict[int, bytes] = {}
    result, seen = run(shallow_vgg, checkpoint=lambda s: states.update({s.step: saved(s)}), checkpoint_every=1)
    return result, seen, states


def test_checkpoints_come_every_n_iterations_and_change_nothing(
    shallow_vgg: VGG19Features, uninterrupted: tuple[torch.Tensor, list[Progress], dict[int, bytes]]
) -> None:
    result, seen, states = uninterrupted
    plain, plain_seen = run(shallow_vgg)
    assert torch.equal(result, plain)
    assert [p.losses for p in seen] == [p.losses for p in plain_seen]
    assert sorted(states) == list(range(1, TOTAL))  # never after the last iteration

    every_five: list[RunState] = []
    run(shallow_vgg, checkpoint=every_five.append, checkpoint_every=5)
    assert [s.step for s in every_five] == [5, 10, 15]
    assert [s.scale for s in every_five] == [1, 1, 2]


def test_a_state_holds_what_the_next_iteration_needs(
    uninterrupted: tuple[torch.Tensor, list[Progress], dict[int, bytes]],
) -> None:
    _, seen, states = uninterrupted
    warmup, lbfgs, boundary, second = (loaded(states[k]) for k in (5, 12, 13, 14))
    assert (warmup.optimizer, lbfgs.optimizer, second.optimizer) == ("adam", "lbfgs", "lbfgs")
    assert boundary.optimizer is None and boundary.optimizer_state is None  # the next scale starts afresh
    assert lbfgs.optimizer_state is not None and len(lbfgs.optimizer_state["state"][0]["steps"]) >= 1
    assert tuple(boundary.image.shape) == (1, 3, 16, 16) and tuple(second.image.shape) == (1, 3, 32, 32)
    assert torch.equal(second.image, seen[13].image)  # the image after iteration 14, as shown


@pytest.mark.parametrize("k", [5, 10, 12, 13, 14])
def test_resuming_ends_bit_identical_to_the_uninterrupted_run(
    shallow_vgg: VGG19Features, uninterrupted: tuple[torch.Tensor, list[Progress], dict[int, bytes]], k: int
) -> None:
    result, seen, states = uninterrupted
    resumed, resumed_seen = run(shallow_vgg, resume=loaded(states[k]))
    assert torch.equal(resumed, result)
    assert [p.step for p in resumed_seen] == list(range(k + 1, TOTAL + 1))
    assert [p.losses for p in resumed_seen] == [p.losses for p in seen[k:]]
    assert all(torch.equal(a.image, b.image) for a, b in zip(resumed_seen, seen[k:], strict=True))


@pytest.mark.parametrize("k", [8, 13])
def test_resuming_adam_on_a_luminance_image(shallow_vgg: VGG19Features, k: int) -> None:
    states: dict[int, bytes] = {}
    keep = lambda s: states.update({s.step: saved(s)})  # noqa: E731
    result, _ = run(shallow_vgg, channels=1, optimizer="adam", checkpoint=keep, checkpoint_every=1)
    state = loaded(states[k])
    assert state.image.shape[1] == 1 and state.optimizer == (None if k == 13 else "adam")
    resumed, _ = run(shallow_vgg, channels=1, optimizer="adam", resume=state)
    assert torch.equal(resumed, result)


def test_an_interrupted_run_resumes_from_its_last_checkpoint(shallow_vgg: VGG19Features) -> None:
    states: list[bytes] = []

    def stop_at_nine(progress: Progress) -> None:
        if progress.step == 9:
            raise KeyboardInterrupt

    content, style = pair()
    with pytest.raises(KeyboardInterrupt):
        optimize_stages(
            STAGES,
            objectives(shallow_vgg, content, style),
            content,
            callback=stop_at_nine,
            checkpoint=lambda s: states.append(saved(s)),
            checkpoint_every=4,
        )
    assert [loaded(s).step for s in states] == [4, 8]
    resumed, _ = run(shallow_vgg, resume=loaded(states[-1]))
    assert torch.equal(resumed, run(shallow_vgg)[0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"step": TOTAL}, "the checkpoint is of iteration 16 at scale 1, but this run has 16 iterations over 2"),
        ({"scale": 3}, "over 2 scales"),
        ({"scale": 2}, "the checkpoint's iteration 12 is not at scale 2 of this run (iterations 14 to 16)"),
        ({"image": torch.zeros(1, 3, 32, 32)}, "the checkpoint's image (1x3x32x32) does not fit scale 1"),
        ({"optimizer_state": None}, "the checkpoint of iteration 12 holds no optimizer state"),
        ({"optimizer": "adam"}, "holds the state of adam, but iteration 12 of this run was taken by lbfgs"),
    ],
)
def test_a_state_that_does_not_fit_is_refused(
    shallow_vgg: VGG19Features,
    uninterrupted: tuple[torch.Tensor, list[Progress], dict[int, bytes]],
    change: dict[str, Any],
    message: str,
) -> None:
    state = loaded(uninterrupted[2][12])
    fields = {name: getattr(state, name) for name in ("step", "scale", "image", "optimizer", "optimizer_state")}
    with pytest.raises(CheckpointError) as caught:
        run(shallow_vgg, resume=RunState(**{**fields, **change}))
    assert message in str(caught.value)


# --------------------------------------------------------------------------- #
# The command line
# --------------------------------------------------------------------------- #

FLAGS = ["--content-layers", "relu2_2", "--style-layers", "relu1_1,relu2_1", "--deterministic", "--device", "cpu"]


@pytest.fixture(autouse=True)
def _restore_global_torch_state() -> Iterator[None]:
    yield
    if torch.are_deterministic_algorithms_enabled():
        torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic = False


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    smooth_rgb(48, 40, seed=1).save(content)
    random_rgb(40, 40, seed=2).save(style)
    return {"content": content, "style": style}


def argv(files: dict[str, Path], output: Path, *extra: str, seed: bool = True) -> list[str]:
    """Two scales (16 and 32 px) of 4 iterations: 3 warm-up steps and one of L-BFGS, then 4 more."""
    options = ["--size", "32", "--min-size", "16", "--iterations", "4", "--coarse-iterations", "4", "-q", *FLAGS]
    return [str(files["content"]), str(files["style"]), "-o", str(output), *options, *(["--seed", "3"] * seed), *extra]


def run_cli(arguments: Sequence[str], capsys: CaptureFixture) -> tuple[int, str]:
    code = cli.main(list(arguments))
    return code, capsys.readouterr().err


def interrupt_at(k: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next run stops at iteration ``k`` as if Ctrl-C had been pressed then."""
    real = api.optimize_stages

    def interrupted(*args: Any, callback: Any = None, **kwargs: Any) -> torch.Tensor:
        def relay(progress: Progress) -> None:
            callback(progress)
            if progress.step == k:
                raise KeyboardInterrupt

        return real(*args, callback=relay, **kwargs)

    monkeypatch.setattr(api, "optimize_stages", interrupted)


@pytest.mark.parametrize(
    ("k", "extra"),
    [(2, []), (4, []), (6, []), (5, ["--preserve-color", "luminance", "--save-every", "3"])],
    ids=["warm-up", "scale boundary", "second scale", "luminance"],
)
def test_resume_from_the_command_line_is_byte_identical(
    fake_bundled: FakeBundled,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    k: int,
    extra: list[str],
) -> None:
    full, cut = tmp_path / "full.png", tmp_path / "cut.png"
    assert run_cli(argv(files, full, *extra), capsys)[0] == 0
    checkpoint = tmp_path / "cut.png.ckpt"
    with monkeypatch.context() as patch:
        interrupt_at(k, patch)
        code, err = run_cli(argv(files, cut, "--checkpoint-every", "1", *extra), capsys)
    assert code == 130
    assert err == (
        f"artstyle: interrupted at iteration {k}/8; wrote the current image to {cut}; "
        f"--resume continues from iteration {k}\n"
    )
    assert checkpoint.exists() and read_checkpoint(checkpoint).state.step == k

    # The seed comes from the checkpoint; the new run takes no more checkpoints and removes the old one.
    assert run_cli(argv(files, cut, "--resume", *extra, seed=False), capsys) == (0, "")
    assert cut.read_bytes() == full.read_bytes()
    assert not checkpoint.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if ".partial" in p.name) == []


def test_resume_from_an_earlier_checkpoint_and_keep_checkpointing(
    fake_bundled: FakeBundled,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    full, cut = tmp_path / "full.png", tmp_path / "cut.png"
    assert run_cli(argv(files, full), capsys)[0] == 0
    with monkeypatch.context() as patch:
        interrupt_at(5, patch)
        code, err = run_cli(argv(files, cut, "--checkpoint-every", "3"), capsys)
    assert code == 130 and err.endswith("--resume continues from iteration 3\n")
    with monkeypatch.context() as patch:  # interrupted again, after one more checkpoint
        interrupt_at(7, patch)
        code, err = run_cli(argv(files, cut, "--checkpoint-every", "3", "--resume"), capsys)
    assert code == 130 and err.endswith("--resume continues from iteration 6\n")
    assert run_cli(argv(files, cut, "--checkpoint-every", "3", "--resume"), capsys) == (0, "")
    assert cut.read_bytes() == full.read_bytes()
    assert not (tmp_path / "cut.png.ckpt").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_signal_during_a_checkpoint_write_waits_for_it(
    fake_bundled: FakeBundled,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = checkpoints.save_checkpoint

    def save_and_get_stopped(path: Any, state: RunState, expected: Any) -> None:
        if state.step == 3:
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN, None)  # artstyle's
            os.kill(os.getpid(), signal.SIGTERM)  # arrives while the file is being written
        real(path, state, expected)

    monkeypatch.setattr(checkpoints, "save_checkpoint", save_and_get_stopped)
    cut = tmp_path / "cut.png"
    code, err = run_cli(argv(files, cut, "--checkpoint-every", "1"), capsys)
    assert code == 143
    assert err == (
        f"artstyle: stopped by SIGTERM at iteration 3/8; wrote the current image to {cut}; "
        "--resume continues from iteration 3\n"
    )
    assert read_checkpoint(tmp_path / "cut.png.ckpt").state.step == 3
    assert read_metadata(cut)["interrupted_at"] == 3  # type: ignore[index]


def test_a_successful_run_removes_its_checkpoint_but_not_another(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path, capsys: CaptureFixture
) -> None:
    out = tmp_path / "out.png"
    assert run_cli(argv(files, out, "--checkpoint-every", "2"), capsys) == (0, "")
    assert not checkpoint_path(out).exists()
    checkpoint_path(out).write_bytes(b"an earlier run")
    assert run_cli(argv(files, out), capsys) == (0, "")  # no checkpoint options: not its business
    assert checkpoint_path(out).read_bytes() == b"an earlier run"


def test_a_checkpoint_file_is_plain_data_with_its_fingerprint(
    fake_bundled: FakeBundled,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cut = tmp_path / "cut.png"
    with monkeypatch.context() as patch:
        interrupt_at(6, patch)
        assert run_cli(argv(files, cut, "--checkpoint-every", "5"), capsys)[0] == 130
    payload = torch.load(tmp_path / "cut.png.ckpt", weights_only=True)
    assert payload["format"] == FORMAT and payload["artstyle"] == __version__
    assert (payload["step"], payload["scale"], payload["optimizer"]) == (5, 2, "lbfgs")
    parameters, inputs = payload["fingerprint"]["parameters"], payload["fingerprint"]["inputs"]
    assert parameters["seed"] == 3 and parameters["style_weight"] == 2.0
    assert "device" not in parameters and "deterministic" not in parameters
    meta = read_metadata(cut)
    assert meta is not None
    assert inputs == {"content": meta["inputs"]["content"]["sha256"], "styles": [meta["inputs"]["styles"][0]["sha256"]]}
    json.dumps(payload["fingerprint"])  # plain data


# What a resume refuses: one line, exit 1, the output and the checkpoint untouched.


def other_style_weight(s: dict[str, Path]) -> list[str]:
    return ["--style-weight", "200"]


def other_seed(s: dict[str, Path]) -> list[str]:
    return ["--seed", "4"]


def other_content(s: dict[str, Path]) -> list[str]:
    smooth_rgb(48, 40, seed=9).save(s["content"])
    return []


def renamed_inputs(s: dict[str, Path]) -> list[str]:
    """Not a refusal: the files are compared by their sha256, not their names."""
    for key in ("content", "style"):
        moved = s[key].with_name(f"moved-{s[key].name}")
        s[key].rename(moved)
        s[key] = moved
    return []


def other_device_options(s: dict[str, Path]) -> list[str]:
    """Not a refusal: --device and --deterministic do not change what is computed."""
    return ["--no-deterministic"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (other_style_weight, "it was made with --style-weight 2.0, not 200.0"),
        (other_seed, "it was made with --seed 3, not 4"),
        (other_content, "its content image is not the same as this run's (compared by sha256)"),
        (renamed_inputs, None),
        (other_device_options, None),
    ],
)
def test_a_checkpoint_of_other_inputs_or_options_is_refused(
    fake_bundled: FakeBundled,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[dict[str, Path]], list[str]],
    message: str | None,
) -> None:
    cut = tmp_path / "cut.png"
    with monkeypatch.context() as patch:
        interrupt_at(2, patch)
        assert run_cli(argv(files, cut, "--checkpoint-every", "1"), capsys)[0] == 130
    before, checkpoint = cut.read_bytes(), (tmp_path / "cut.png.ckpt").read_bytes()
    extra = change(files)
    arguments = argv(files, cut, "--resume", seed=False) + extra
    if "--no-deterministic" in extra:
        arguments.remove("--deterministic")
    code, err = run_cli(arguments, capsys)
    if message is None:
        assert (code, err) == (0, "")
        return
    assert code == 1
    assert err == (
        f"artstyle: error: cannot resume from '{tmp_path / 'cut.png.ckpt'}': {message}; "
        "resume with the same inputs and options, or start again without --resume\n"
    )
    assert cut.read_bytes() == before and (tmp_path / "cut.png.ckpt").read_bytes() == checkpoint


def test_an_unusable_checkpoint_is_refused(
    fake_bundled: FakeBundled, files: dict[str, Path], tmp_path: Path, capsys: CaptureFixture
) -> None:
    out = tmp_path / "out.png"
    checkpoint = checkpoint_path(out)
    torch.save({"format": FORMAT, "artstyle": "0.0.1"}, checkpoint)
    code, err = run_cli(argv(files, out, "--resume"), capsys)
    assert code == 1
    assert err == (
        f"artstyle: error: '{checkpoint}' is not a usable artstyle checkpoint "
        f"(made by artstyle 0.0.1, this is {__version__})\n"
    )
    torch.save({"format": FORMAT, "artstyle": __version__, "code": torch.nn.Linear(1, 1)}, checkpoint)
    code, err = run_cli(argv(files, out, "--resume"), capsys)
    assert (code, err) == (
        1,
        f"artstyle: error: '{checkpoint}' is not a readable artstyle checkpoint (truncated or corrupt)\n",
    )
    assert not out.exists()
