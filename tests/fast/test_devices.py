"""The device-portability tier: artstyle on CUDA and Apple's MPS, checked on a machine with neither.

Every path that can run without tensor values runs here on fake ``cuda`` and ``mps``
devices (``_fake_devices.fake_device``): preparing a run (targets, every start, every
colour mode, both style losses, masks, tiles), the objective's value, the video's
temporal term, a batch's shared targets. The paths with gradients (the objective's
gradient, both optimizers, whole runs and the picture's trip back to the CPU) run on
``meta`` standing in for each (``stand_in_device``). A tensor left on the CPU where the
device's is expected fails as it would on a GPU; on MPS, so do float64 tensors, the
eigendecomposition and adaptive pooling of sizes that do not divide.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from _fake_devices import (
    ALLOCATED,
    FREE,
    RESERVED,
    AutogradOnFakeDevice,
    MpsUnsupported,
    fake_device,
    stand_in_device,
)
from _support import smooth_rgb
from PIL import Image
from torch.nn import functional as F

import artstyle.api as api_module
from artstyle import Stylizer, device
from artstyle.api import Plan, make_config
from artstyle.batch.cluster import targets_task
from artstyle.color import color_stats, recolor
from artstyle.device import resolve_device, resolve_precision
from artstyle.engine.plan import available_memory
from artstyle.errors import FLAGS, DeviceError, spelled
from artstyle.linalg import sqrtm
from artstyle.resample import area_resize
from artstyle.runs import InputImage
from artstyle.runs.cluster import Slots, task_slots, window_size
from artstyle.video.run import TemporalTarget

pytestmark = pytest.mark.devices

KINDS = ("cuda", "mps")
#: A small run: two scales, so that the guided upsampling and the scale's own targets run too.
SMALL = {"size": 64, "min_size": 32, "coarse_iterations": 12, "iterations": 2, "seed": 0}
#: The options of each path through prepare and the start (the defaults: recoloured start, Gram).
PATHS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "init content": {"init": "content"},
    "init noise": {"init": "noise"},
    "luminance": {"preserve_color": "luminance"},
    "luminance matched": {"preserve_color": "luminance", "match_luminance": True},
    "histogram": {"preserve_color": "histogram"},
    "meancov": {"style_loss": "meancov"},
    "avg pooling, absolute": {"pooling": "avg", "normalization": "absolute"},
    "palette term": {"palette_weight": 1.0, "style_weights": None},
    "tiles": {"size": 256, "min_size": 128, "tile_size": 176},  # fake tensors: no size costs anything
}


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    """Every tensor inside a plan's parts (dataclasses, mappings, sequences)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)
    elif hasattr(value, "__dataclass_fields__"):
        for name in value.__dataclass_fields__:
            yield from _tensors(getattr(value, name))


def _devices(value: Any) -> set[str]:
    return {tensor.device.type for tensor in _tensors(value)}


def _inputs(styles: int = 1) -> tuple[Image.Image, list[Image.Image]]:
    return smooth_rgb(64, 48), [smooth_rgb(40, 40, seed=seed) for seed in range(1, styles + 1)]


def _evaluate(stylizer: Stylizer, plan: Plan) -> set[str]:
    """The devices of the start and of every scale's objective value at it (no gradient)."""
    net = stylizer.network(plan.config.layers, plan.config.pooling)
    start = stylizer._initial_image(None, plan)
    seen = _devices(start)
    for index, stage in enumerate(plan.stages):
        if not stage.iterations:
            continue
        objective = stylizer._objectives(plan, net, ())(index, stage)
        image = F.interpolate(start, size=(stage.height, stage.width), mode="nearest")
        with torch.no_grad():
            total, parts = objective(image)
        seen |= _devices(total) | _devices(parts)
    return seen


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_run_is_prepared_and_evaluated_on_the_device(kind: str, path: str, fake_bundled: object) -> None:
    content, styles = _inputs()
    with fake_device(kind) as fake:
        stylizer = Stylizer(device=kind)
        plan = stylizer.prepare(content, styles, **{**SMALL, **PATHS[path]})
        assert _devices(plan.scales) == {kind} and _devices(plan.style_targets) == {kind}
        assert _evaluate(stylizer, plan) == {kind}
    assert fake.refused == []


@pytest.mark.parametrize("kind", KINDS)
def test_blended_and_masked_styles_are_prepared_and_evaluated_on_the_device(kind: str, fake_bundled: object) -> None:
    content, styles = _inputs(styles=2)
    left = Image.new("L", (64, 48), 0)
    left.paste(255, (0, 0, 30, 48))
    right = Image.eval(left, lambda value: 255 - value)
    with fake_device(kind) as fake:
        stylizer = Stylizer(device=kind)
        blended = stylizer.prepare(content, styles, **SMALL, style_weights=(2.0, 1.0))
        masked = stylizer.prepare(content, styles, **SMALL, style_masks=[left, right], content_mask=right)
        for plan in (blended, masked):
            assert _devices(plan.scales) == {kind} and _evaluate(stylizer, plan) == {kind}
    assert fake.refused == []


@pytest.mark.parametrize("kind", KINDS)
def test_the_colour_statistics_follow_their_images(kind: str) -> None:
    image, style = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    with fake_device(kind) as fake:
        on_device = image.to(kind), style.to(kind)
        mean, cov = color_stats(on_device[1])
        # float64 where the device has it; on MPS, on the CPU (no float64 there)
        assert mean.device.type == cov.device.type == ("cpu" if kind == "mps" else kind)
        recoloured = recolor(on_device[0], [on_device[1]], [1.0])
        root = sqrtm(torch.eye(4, device=kind))
    assert (recoloured.device.type, recoloured.dtype) == (kind, torch.float32)
    assert (root.device.type, root.dtype) == (kind, torch.float32)
    assert fake.refused == []


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "options", [{}, {"optimizer": "adam"}, {"style_loss": "meancov"}, {"init": "noise"}, {"strength": 0.5}]
)
def test_a_whole_run_with_gradients_comes_back_to_the_cpu(
    kind: str, options: dict[str, Any], fake_bundled: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On ``meta`` standing in for the device: Adam's warm-up, L-BFGS, two scales, the result."""
    pictures: list[torch.Tensor] = []

    def to_image(tensor: torch.Tensor) -> Image.Image:
        pictures.append(tensor)
        return Image.new("RGB", (tensor.shape[3], tensor.shape[2]))

    monkeypatch.setattr(api_module, "tensor_to_image", to_image)
    content, styles = _inputs()
    with stand_in_device(kind) as stand_in:
        stylizer = Stylizer(device="cpu")
        stylizer.device = stand_in.device
        plan = stylizer.prepare(content, styles, **SMALL, **options)
        assert _devices(plan.scales) == {"meta"}
        result = stylizer.run(plan)
    assert stand_in.refused == [] and stand_in.reads > 0
    assert result.tensor is not None and result.tensor.device.type == "cpu" and pictures[0].device.type == "cpu"


@pytest.mark.parametrize("kind", KINDS)
def test_the_video_temporal_term_moves_its_target_to_the_device_once(kind: str) -> None:
    warped, trusted = torch.rand(1, 3, 8, 8), torch.rand(1, 1, 8, 8)
    term = TemporalTarget(warped, trusted)
    copies = []

    class Copies(torch.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            if func is torch.ops.aten._to_copy.default:
                copies.append(func)
            return func(*args, **(kwargs or {}))

    with fake_device(kind):
        image = torch.rand(1, 3, 8, 8, device=kind)
        first = term(image)
        with Copies():
            again = term(image)
    assert first.device.type == again.device.type == kind
    assert copies == []


def test_a_batch_s_shared_targets_come_back_on_the_cpu_and_go_onto_the_device(fake_bundled: object) -> None:
    content, styles = _inputs()
    config = make_config(**SMALL, device="cuda")
    with fake_device("cuda"):
        photo, painting = InputImage(content, "photo.png", "0" * 64), InputImage(styles[0], "painting.png", "1" * 64)
        targets = targets_task(photo, [painting], config, cpus=1)
        assert _devices(targets) == {"cpu"}  # what Ray carries back: no GPU's tensors
        plan = Stylizer(device="cuda").prepare(content, styles, config, style_targets=targets)
        assert _devices(plan.style_targets) == {"cuda"}


def test_autograd_on_a_fake_device_is_refused_before_it_can_abort_the_process() -> None:
    with fake_device("cuda"), pytest.raises(AutogradOnFakeDevice):
        torch.zeros(3, device="cuda").requires_grad_(True)


@pytest.mark.parametrize(
    ("operation", "problem"),
    [
        (lambda: torch.zeros(3, device="mps", dtype=torch.float64), "float64"),
        (lambda: torch.zeros(3, device="mps").double(), "float64"),
        (lambda: torch.linalg.eigh(torch.eye(3, device="mps")), "no MPS kernel"),
        (lambda: F.interpolate(torch.zeros(1, 1, 7, 7, device="mps"), size=(3, 3), mode="area"), "divide"),
        (lambda: torch.zeros(3, device="mps") + torch.zeros(3), "device"),
    ],
)
def test_the_fake_mps_refuses_what_mps_cannot_do(operation: Any, problem: str) -> None:
    with fake_device("mps"), pytest.raises(Exception, match=problem) as raised:
        operation()
    assert isinstance(raised.value, (MpsUnsupported, RuntimeError))


def test_area_resize_takes_adaptive_pooling_s_means_on_mps(monkeypatch: pytest.MonkeyPatch) -> None:
    image = torch.rand(2, 3, 37, 50, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(device, "MPS_TYPES", {"mps", "cpu"})  # the CPU takes the MPS path: real values
    for height, width in [(12, 17), (37, 25), (1, 1), (36, 49)]:
        expected = F.interpolate(image, size=(height, width), mode="area")
        torch.testing.assert_close(area_resize(image, height, width), expected, rtol=1e-5, atol=1e-6)
    with fake_device("mps") as fake:
        area_resize(torch.zeros(1, 3, 37, 50, device="mps"), 12, 17)
    assert fake.refused == []


def test_cuda_n_is_accepted_when_it_exists() -> None:
    with fake_device("cuda"):
        assert resolve_device("cuda:1") == torch.device("cuda", 1)
        assert make_config(device="cuda:1").device == "cuda:1"
        with pytest.raises(DeviceError, match="device='cuda:2': this machine has 2 CUDA devices"):
            resolve_device("cuda:2")
        with pytest.raises(DeviceError, match="unknown device 'mps:1'"):
            resolve_device("mps:1")


def test_bf16_is_refused_clearly_on_a_gpu_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_device("cuda"):
        assert resolve_precision("bf16", torch.device("cuda")) == torch.bfloat16
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
        with pytest.raises(
            DeviceError, match="precision='bf16': Fake CUDA device has no bf16 arithmetic; use precision='fp32'"
        ):
            resolve_precision("bf16", torch.device("cuda"))
        with spelled(FLAGS), pytest.raises(DeviceError, match=r"^--precision bf16: Fake CUDA .* use --precision fp32$"):
            resolve_precision("bf16", torch.device("cuda"))
        assert resolve_precision("auto", torch.device("cuda")) is None


def test_the_memory_plan_counts_what_pytorch_s_cache_holds_free() -> None:
    with fake_device("cuda"):
        assert available_memory(torch.device("cuda")) == FREE + RESERVED - ALLOCATED


class _Cluster:
    """A Ray stand-in: nodes with the resources given."""

    def __init__(self, *nodes: dict[str, float]) -> None:
        self._nodes = [{"Alive": True, "Resources": node} for node in nodes]

    def nodes(self) -> list[dict[str, Any]]:
        return self._nodes

    def cluster_resources(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for node in self._nodes:
            for key, value in node["Resources"].items():
                total[key] = total.get(key, 0) + value
        return total


def test_ray_tasks_ask_for_a_gpu_when_the_run_is_on_cuda() -> None:
    gpus = _Cluster({"CPU": 16, "GPU": 4}, {"CPU": 8, "GPU": 1}, {"CPU": 4})
    slots = task_slots(gpus, "cuda:1", None)  # type: ignore[arg-type]
    assert slots == Slots(cpus=4, gpus=1)  # the CPUs of each GPU on the smallest GPU node
    assert slots.options() == {"num_cpus": 4, "num_gpus": 1} and slots.device("cuda:1") == "cuda"
    assert window_size(gpus, slots) == 10  # type: ignore[arg-type]
    assert task_slots(gpus, "auto", 2) == Slots(cpus=2, gpus=1)  # type: ignore[arg-type]
    assert task_slots(gpus, "cpu", None) == Slots(cpus=4)  # type: ignore[arg-type]
    cpus_only = _Cluster({"CPU": 8})
    assert task_slots(cpus_only, "auto", None).options() == {"num_cpus": 8}  # type: ignore[arg-type]
    with pytest.raises(Exception, match="the Ray cluster has no GPUs"):
        task_slots(cpus_only, "cuda", None)  # type: ignore[arg-type]
