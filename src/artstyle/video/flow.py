"""Optical flow between frames, where it can be trusted, and warping along it.

Ruder, Dosovitskiy & Brox, "Artistic style transfer for videos" (GCPR 2016): the previous
stylized frame, warped onto the current one by the backward flow, is both the start of
the current frame and the target of its temporal loss, wherever a certainty mask trusts
the flow. Flow is OpenCV's (the ``[video]`` extra): DIS (Kroeger et al. 2016) in its fast
or medium preset, or Farneback's; the certainty follows their ``consistencyChecker``.

Flows are (H, W, 2) float32 arrays of (dx, dy) pixel offsets: ``flow(a, b)`` at a pixel
x of frame a says where it is in frame b, ``b(x + flow(x)) ~ a(x)``.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from artstyle.errors import ConfigError
from artstyle.video.job import FLOWS

Flow = npt.NDArray[np.float32]
Grey = npt.NDArray[np.uint8]


def _cv2() -> ModuleType:
    try:
        import cv2
    except ImportError:  # pragma: no cover - the extra is installed wherever video is tested
        raise ConfigError("video needs the [video] extra: pip install 'artstyle[video]'") from None
    return cv2


def grey(pixels: npt.NDArray[np.uint8]) -> Grey:
    """An (H, W, 3) RGB frame as the 8-bit grey image the flow is computed on."""
    cv2 = _cv2()
    return np.ascontiguousarray(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY))


def optical_flow(first: Grey, second: Grey, method: str = "dis-medium") -> Flow:
    """The flow from ``first`` to ``second`` (grey frames of one size) by ``method`` (:data:`FLOWS`)."""
    cv2 = _cv2()
    if method == "farneback":
        flow = cv2.calcOpticalFlowFarneback(first, second, None, 0.5, 4, 15, 3, 5, 1.2, 0)
    elif method in ("dis-fast", "dis-medium"):
        preset = cv2.DISOPTICAL_FLOW_PRESET_FAST if method == "dis-fast" else cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
        flow = cv2.DISOpticalFlow_create(preset).calc(first, second, None)
    else:
        raise ConfigError(f"unknown flow method {method!r} (choose from {', '.join(FLOWS)})", option="flow")
    return np.ascontiguousarray(flow, dtype=np.float32)


def sample(field: npt.NDArray[np.float32], flow: Flow) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """``field`` (H, W[, C]) read at x + flow(x), bilinearly, and where x + flow(x) lies in the frame."""
    cv2 = _cv2()
    height, width = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x, map_y = xs + flow[..., 0], ys + flow[..., 1]
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    sampled = cv2.remap(field, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(sampled, dtype=np.float32), inside


#: The largest grey-level difference (of 1) between a frame and the previous one warped
#: onto it at which the flow is still trusted (see :func:`certainty`).
PHOTOMETRIC_TOLERANCE = 0.05


def certainty(
    backward: Flow,
    forward: Flow,
    smoothing: float = 0.8,
    frames: tuple[Grey, Grey] | None = None,
) -> npt.NDArray[np.float32]:
    """Where the backward flow (current -> previous frame) can be trusted, (H, W) in [0, 1].

    As Ruder et al.'s consistencyChecker: 0 where the forward flow (previous -> current),
    read where the backward flow points, does not lead back (a disocclusion:
    ``|f + b|^2 > 0.01 (|f|^2 + |b|^2) + 0.5``), at motion boundaries
    (``|grad b_x|^2 + |grad b_y|^2 > 0.01 |b|^2 + 0.002``) and where the flow leaves the
    frame; 1 elsewhere; then a Gaussian blur of ``smoothing`` pixels softens the edges.
    Given the ``frames`` (current, previous) in grey, also 0 where the previous frame
    warped by the flow differs from the current one by more than
    :data:`PHOTOMETRIC_TOLERANCE`: a flow that passes the round trip but is wrong (fast,
    deforming motion) would otherwise drag the previous frame's paint onto the wrong
    place (measured on Big Buck Bunny: 1-3% of the pixels the round trip trusts).
    """
    cv2 = _cv2()
    ahead, inside = sample(forward, backward)
    round_trip = np.square(ahead + backward).sum(-1)
    disoccluded = round_trip > 0.01 * (np.square(ahead).sum(-1) + np.square(backward).sum(-1)) + 0.5
    du_dy, du_dx = np.gradient(backward[..., 0])
    dv_dy, dv_dx = np.gradient(backward[..., 1])
    steepness = du_dx**2 + du_dy**2 + dv_dx**2 + dv_dy**2
    boundary = steepness > 0.01 * np.square(backward).sum(-1) + 0.002
    trusted = ~disoccluded & ~boundary & inside
    if frames is not None:
        current, previous = (frame.astype(np.float32) / 255.0 for frame in frames)
        warped, _ = sample(previous, backward)
        trusted &= np.abs(current - warped) <= PHOTOMETRIC_TOLERANCE
    mask = trusted.astype(np.float32)
    if smoothing > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), smoothing)
    return np.asarray(np.clip(mask, 0.0, 1.0), dtype=np.float32)


def link(current: Grey, previous: Grey, method: str = "dis-medium") -> tuple[Flow, npt.NDArray[np.float32]]:
    """How frame ``current`` follows ``previous``: the backward flow (current -> previous)
    and its :func:`certainty`, the photometric check included."""
    backward = optical_flow(current, previous, method)
    forward = optical_flow(previous, current, method)
    return backward, certainty(backward, forward, frames=(current, previous))


def warp(image: torch.Tensor, flow: Flow) -> torch.Tensor:
    """A (1, C, H, W) image (the previous frame's) warped onto the current frame by the
    backward ``flow``: ``out(x) = image(x + flow(x))``, bilinear, in float (never rounded),
    the border repeated where the flow leaves the frame."""
    _, _, height, width = image.shape
    offsets = torch.from_numpy(flow).to(image.device, image.dtype)  # (H, W, 2)
    ys, xs = torch.meshgrid(
        torch.arange(height, device=image.device, dtype=image.dtype),
        torch.arange(width, device=image.device, dtype=image.dtype),
        indexing="ij",
    )
    x = (xs + offsets[..., 0]) * (2.0 / max(width - 1, 1)) - 1.0
    y = (ys + offsets[..., 1]) * (2.0 / max(height - 1, 1)) - 1.0
    grid = torch.stack((x, y), dim=-1)[None]  # (1, H, W, 2), in [-1, 1]
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def warping_error(current: torch.Tensor, warped: torch.Tensor, mask: npt.NDArray[np.float32]) -> float:
    """Lai et al.'s (2018) warping error of one frame pair: ``sum(M |O_t - W(O_t-1)|^2) / sum(M)``,
    the squared difference summed over channels (pixels in [0, 1]) and averaged over the
    pixels the (H, W) occlusion mask ``M`` trusts; 0 when it trusts none."""
    weights = torch.from_numpy(mask).to(current.device, current.dtype)[None, None]
    total = float(weights.sum())
    if total <= 0:
        return 0.0
    return float((weights * (current - warped).pow(2).sum(1, keepdim=True)).sum()) / total
