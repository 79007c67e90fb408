"""The optimizers of one image: L-BFGS in the box [0, 1] that keeps no step that made things worse, and Adam.

Both are written here rather than taken from ``torch.optim``: the first
``torch.optim.Optimizer`` a process makes imports ``torch._dynamo`` (1.8-2.4 s
measured on the development machine, some two passes of VGG19 at 512 px), a cost
every ``artstyle`` command paid before its first iteration. Each optimizer works on
one tensor, ``image``; ``step(closure)`` calls ``closure()``, which must fill
``image.grad`` and return the loss, once. ``state_dict()`` holds what the next step
needs (a run stopped and resumed from it ends exactly as an uninterrupted one), in
torch's layout: ``{"state": {0: {...}}, "param_groups": [{...}]}``.

**L-BFGS** (:class:`BoxLBFGS`). neural-style runs L-BFGS without a line search (a line
search costs evaluations, and an evaluation is a pass of VGG19), as artstyle did with
``torch.optim.LBFGS``. Two things went wrong with that on pictures (measured with
``benchmarks/quality.py``, Seated Nude with ``--preserve-color luminance``):

* the image is clamped to [0, 1] after every step, but the history recorded the step
  as proposed, not as taken, so clamped pixels (black outlines, white skies) taught
  it a wrong curvature; and
* a step that raised the loss was kept: the run climbed from a loss of 1.40 to 2.06 in
  the last three iterations of its first scale and handed that picture on, and the
  finished picture itself was the unchecked result of the last step.

:class:`BoxLBFGS` keeps the cost, one evaluation an iteration, and mends both.
Iteration ``k`` evaluates the point iteration ``k - 1`` proposed:

* the pair (``s``, the step as taken, after the clamp; ``y``, the change in the
  gradient) goes into the history whenever ``s . y > 0``, whatever the loss did:
  it is true curvature either way;
* the point is **accepted** when its loss is no higher than the last accepted point's;
  otherwise it is **rejected**: the image goes back to the accepted point, and the
  next step is shortened by the minimum of a quadratic fitted along the rejected one
  (to between :data:`MIN_SHRINK` and :data:`MAX_SHRINK` of it), growing back by 2x
  with every accepted step up to the full quasi-Newton step;
* after :data:`RESTART_AFTER` rejections in a row, the history is dropped and the next
  step is the first step's again (steepest descent): with bf16 arithmetic, the pairs of
  very short steps are mostly rounding, and a history of them gave directions that
  no length made downhill (a luminance-only run from a blurred start was rejected at
  every one of its last 25 iterations, the loss stuck at 2.5723; in fp32 the same run
  went on down to 1.04);
* then it proposes the next point: the two-loop recursion's step from the accepted
  point, clamped to the box. With no history yet (the first step) that is a
  steepest-descent step that moves the most-changed pixel by ``first_step`` (times
  ``lr``).

The last iteration of a run calls :meth:`BoxLBFGS.settle` instead of ``step``: it
evaluates, accepts or rejects, and proposes nothing, so the picture left is the best
one evaluated (unless it is the optimizer's first iteration, which has nothing to
settle on). Each rejected step costs one evaluation.

**Adam** (:class:`Adam`): Kingma and Ba's, with ``torch.optim.Adam``'s defaults and
arithmetic (betas 0.9 and 0.999, eps 1e-8, bias-corrected), for ``--optimizer adam``
and L-BFGS's warm-up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import torch

from artstyle.device import is_mps
from artstyle.engine.plan import LBFGS_HISTORY

#: The bounds of the shrink after a rejected step, as a fraction of that step.
MIN_SHRINK = 0.1
MAX_SHRINK = 0.5
#: The first step, without history: the most-changed pixel moves by this much.
FIRST_STEP = 0.02
#: Rejections in a row after which the history is dropped and L-BFGS starts afresh.
RESTART_AFTER = 3

#: Fills ``image.grad`` and returns the loss: a 0-dim tensor, or a float already read back.
Closure = Callable[[], "torch.Tensor | float"]


class ImageOptimizer(Protocol):
    """What the loop needs of an optimizer of one image."""

    image: torch.Tensor

    def step(self, closure: Closure) -> float: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


def _evaluate(image: torch.Tensor, closure: Closure) -> tuple[float, torch.Tensor]:
    """The loss at ``image`` (a float: the one value an iteration reads back) and its
    gradient, from a fresh backward pass."""
    image.grad = None
    with torch.enable_grad():
        value = closure()
    loss = value if isinstance(value, float) else float(value.detach())
    if image.grad is None:
        raise RuntimeError("the closure left no gradient on the image")
    return loss, image.grad.detach()


def _layout(state: dict[str, Any], group: dict[str, Any]) -> dict[str, Any]:
    return {"state": {0: dict(state)} if state else {}, "param_groups": [dict(group)]}


def _unpack(saved: Mapping[str, Any], group: dict[str, Any], image: torch.Tensor) -> dict[str, Any]:
    """A saved state's per-image part, its tensors on the image's device and dtype, after
    checking that its settings are this optimizer's (ValueError otherwise)."""
    groups = saved["param_groups"]
    if len(groups) != 1 or set(groups[0]) != set(group):
        raise ValueError(f"expected the settings {sorted(group)}, got {[sorted(g) for g in groups]}")
    group.update(groups[0])
    return {key: _to(value, image) for key, value in saved["state"].get(0, {}).items()}


def _to(value: Any, image: torch.Tensor) -> Any:
    """Saved tensors onto the image's device: vectors in its dtype, scalars (0-dim) in
    :func:`scalar_dtype`."""
    if isinstance(value, torch.Tensor):
        dtype = scalar_dtype(image.device) if value.dim() == 0 else image.dtype
        return value.to(device=image.device, dtype=dtype)
    if isinstance(value, list):
        return [_to(item, image) for item in value]
    return value


class Adam:
    """Adam on one image: ``lr``, betas (0.9, 0.999), eps 1e-8, as ``torch.optim.Adam``."""

    def __init__(self, image: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> None:
        self.image = image
        self.group: dict[str, Any] = {"lr": lr, "betas": betas, "eps": 1e-8}
        self.state: dict[str, Any] = {}

    @torch.no_grad()
    def step(self, closure: Closure) -> float:
        loss, gradient = _evaluate(self.image, closure)
        beta1, beta2 = self.group["betas"]
        state = self.state
        if not state:
            state.update(step=0, exp_avg=torch.zeros_like(gradient), exp_avg_sq=torch.zeros_like(gradient))
        state["step"] += 1
        state["exp_avg"].lerp_(gradient, 1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
        corrected = (1 - beta2 ** state["step"]) ** 0.5
        denominator = (state["exp_avg_sq"].sqrt() / corrected).add_(self.group["eps"])
        self.image.addcdiv_(state["exp_avg"], denominator, value=-self.group["lr"] / (1 - beta1 ** state["step"]))
        return loss

    def state_dict(self) -> dict[str, Any]:
        return _layout(self.state, self.group)

    def load_state_dict(self, saved: Mapping[str, Any]) -> None:
        state = _unpack(saved, self.group, self.image)
        if state and set(state) != {"step", "exp_avg", "exp_avg_sq"}:
            raise ValueError(f"not Adam's state: {sorted(state)}")
        self.group["betas"] = tuple(self.group["betas"])
        self.state = state


class BoxLBFGS:
    """L-BFGS for one image tensor with values in [0, 1] (see the module's notes).

    ``lr`` scales the quasi-Newton step (1: the full step); ``history_size`` pairs are
    kept. ``step(closure)`` and ``settle(closure)`` each call ``closure`` once. The state
    (history, the accepted point, its gradient and loss, the step's length) is in
    ``state_dict()``. Everything but the loss stays on the image's device: the
    accept-or-reject decision is the one value an iteration reads back (see
    :func:`_two_loop`).
    """

    def __init__(
        self, image: torch.Tensor, lr: float = 1.0, history_size: int = LBFGS_HISTORY, first_step: float = FIRST_STEP
    ) -> None:
        self.image = image
        self.group: dict[str, Any] = {"lr": lr, "history_size": history_size, "first_step": first_step}
        self.state: dict[str, Any] = {}

    @torch.no_grad()
    def step(self, closure: Closure) -> float:
        """Evaluate the current point, accept or reject it, and move to the next one."""
        loss = self._judge(closure)
        self._propose()
        return loss

    @torch.no_grad()
    def settle(self, closure: Closure) -> float:
        """Evaluate the current point and accept or reject it, proposing nothing: the
        image is left at the best point evaluated (the last iteration of a run). On the
        optimizer's first evaluation it is :meth:`step`: a run of one iteration moves."""
        if not self.state:
            return self.step(closure)
        return self._judge(closure)

    @property
    def rejected(self) -> int:
        """How many evaluated points were rejected so far."""
        return int(self.state.get("rejected", 0))

    def state_dict(self) -> dict[str, Any]:
        return _layout(self.state, self.group)

    def load_state_dict(self, saved: Mapping[str, Any]) -> None:
        state = _unpack(saved, self.group, self.image)
        keys = {"point", "gradient", "loss", "length", "rejected", "streak", "steps", "changes", "rho", "scale"}
        if state and "streak" not in state:  # saved before the restart rule: no rejection in a row counted
            state["streak"] = 0
        if state and set(state) != keys:
            raise ValueError(f"not BoxLBFGS's state: {sorted(state)}")
        if state:  # saved before the scalars moved onto the device: plain floats
            state.update(length=self._scalar(state["length"]), scale=self._scalar(state["scale"]))
            state["rho"] = [self._scalar(rho) for rho in state["rho"]]
        self.state = state

    def _scalar(self, value: float | torch.Tensor) -> torch.Tensor:
        """A 0-dim tensor on the image's device, in :func:`scalar_dtype`."""
        return torch.as_tensor(value).to(device=self.image.device, dtype=scalar_dtype(self.image.device))

    def _judge(self, closure: Closure) -> float:
        image, state = self.image, self.state
        loss, gradient = _evaluate(image, closure)
        point, gradient = image.detach().flatten().clone(), gradient.flatten().clone()
        if not state:  # the first evaluation
            state.update(point=point, gradient=gradient, loss=loss, length=self._scalar(1.0), rejected=0, streak=0)
            state.update(steps=[], changes=[], rho=[], scale=self._scalar(1.0))
            return loss
        self._remember(point - state["point"], gradient - state["gradient"])
        if loss <= state["loss"]:
            length = (2 * state["length"]).clamp(max=1.0)
            state.update(point=point, gradient=gradient, loss=loss, length=length, streak=0)
            return loss
        slope = _dot(state["gradient"], point - state["point"], state["length"].dtype)
        shrink = _quadratic_minimum(state["loss"], slope, loss)
        state.update(length=state["length"] * shrink, rejected=state["rejected"] + 1, streak=state["streak"] + 1)
        if state["streak"] >= RESTART_AFTER:  # the history no longer points downhill: start afresh
            state.update(steps=[], changes=[], rho=[], scale=self._scalar(1.0), length=self._scalar(1.0), streak=0)
        image.copy_(state["point"].view_as(image))
        return loss

    def _remember(self, step: torch.Tensor, change: torch.Tensor) -> None:
        """Add the pair (step taken, gradient change). A pair without positive curvature
        is kept as a no-op (``rho`` 0: the two-loop recursion passes over it), so that
        whether it counts is decided on the device, not read back."""
        state = self.state
        dtype = state["scale"].dtype
        curvature = _dot(step, change, dtype)
        positive = curvature > 1e-10 * (step.norm().to(dtype) * change.norm().to(dtype))
        if len(state["steps"]) == self.group["history_size"]:
            for key in ("steps", "changes", "rho"):
                state[key].pop(0)
        state["steps"].append(step)
        state["changes"].append(change)
        state["rho"].append(torch.where(positive, 1.0 / curvature, torch.zeros_like(curvature)))
        state["scale"] = torch.where(positive, curvature / _dot(change, change, dtype), state["scale"])

    def _propose(self) -> None:
        """Move the image from the accepted point by the next step, clamped to [0, 1]."""
        image, state, group = self.image, self.state, self.group
        gradient = state["gradient"]
        if state["steps"]:
            direction = _two_loop(gradient, state["steps"], state["changes"], state["rho"], state["scale"])
            downhill = _dot(direction, gradient, state["scale"].dtype) < 0  # else rounding: the scaled gradient
            direction = torch.where(downhill, direction, gradient.neg().mul(state["scale"].to(gradient.dtype)))
            length = state["length"] * group["lr"]
        else:
            direction = gradient.neg()
            largest = gradient.abs().max().to(state["length"].dtype).clamp_min(1e-30)
            length = state["length"] * group["lr"] * group["first_step"] / largest
        moved = state["point"] + length.to(direction.dtype) * direction
        # A step that is not finite is left unclamped, for the caller to see.
        image.copy_(torch.where(torch.isfinite(moved).all(), moved.clamp(0, 1), moved).view_as(image))


def scalar_dtype(device: torch.device) -> torch.dtype:
    """The dtype of the optimizer's scalars on ``device``: float64, as Python's floats,
    except on MPS, which has no float64."""
    return torch.float32 if is_mps(device) else torch.float64


def _dot(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``a . b`` as a 0-dim tensor of ``dtype`` (the product in the vectors' own dtype)."""
    return a.dot(b).to(dtype)


def _two_loop(
    gradient: torch.Tensor,
    steps: list[torch.Tensor],
    changes: list[torch.Tensor],
    rho: list[torch.Tensor],
    scale: torch.Tensor,
) -> torch.Tensor:
    """-H g, H the L-BFGS inverse Hessian of the pairs (oldest first) over ``scale`` * I.

    The coefficients stay 0-dim tensors on the vectors' device: the recursion reads
    nothing back, however long the history (on a GPU each read is a round trip that
    stalls the queue)."""
    q = gradient.neg()
    alphas: list[torch.Tensor] = [scale] * len(steps)
    for i in range(len(steps) - 1, -1, -1):
        alphas[i] = _dot(steps[i], q, scale.dtype) * rho[i]
        q.addcmul_(changes[i], alphas[i].neg().to(q.dtype))  # one rounding, as add_ with alpha
    r = q.mul_(scale.to(q.dtype))
    for i in range(len(steps)):
        beta = _dot(changes[i], r, scale.dtype) * rho[i]
        r.addcmul_(steps[i], (alphas[i] - beta).to(r.dtype))
    return r


def _quadratic_minimum(loss: float, slope: float | torch.Tensor, rejected: float) -> torch.Tensor:
    """Where the parabola through ``loss`` (slope ``slope``) at 0 and ``rejected`` at 1
    has its minimum, bounded to [:data:`MIN_SHRINK`, :data:`MAX_SHRINK`]; the upper
    bound when it has none (the slope is not downhill, or the curve is not convex). A
    0-dim tensor on ``slope``'s device: computed there, not read back."""
    slope = torch.as_tensor(slope, dtype=torch.float64) if not isinstance(slope, torch.Tensor) else slope
    curvature = rejected - loss - slope
    inside = (-slope / (2 * curvature)).clamp(MIN_SHRINK, MAX_SHRINK)
    return torch.where((slope >= 0) | (curvature <= 0), torch.full_like(slope, MAX_SHRINK), inside)


def make_optimizer(
    name: str, image: torch.Tensor, learning_rate: float, history_size: int = LBFGS_HISTORY
) -> ImageOptimizer:
    """``lbfgs`` (:class:`BoxLBFGS`: one evaluation an iteration, no line search, as in
    neural-style; ``history_size`` steps of history) or ``adam``."""
    if name == "lbfgs":
        return BoxLBFGS(image, lr=learning_rate, history_size=history_size)
    if name == "adam":
        return Adam(image, lr=learning_rate)
    raise ValueError(f"unknown optimizer {name!r}")
