"""The engine: the objective of named terms, the optimisation loop and the pyramid of scales.

It knows nothing of files, front ends or options: :mod:`artstyle.api` builds its inputs,
and it reports through callbacks (:class:`Progress`, :class:`RunState`).

* :mod:`~artstyle.engine.objective`: the named terms and their sum, on the whole image;
* :mod:`~artstyle.engine.tiled`: the same objective, tile by tile, for large images;
* :mod:`~artstyle.engine.targets`: the style images' statistics as a value, computed once;
* :mod:`~artstyle.engine.loop`: L-BFGS or Adam at one scale, divergence, checkpoints;
* :mod:`~artstyle.engine.optimizers`: L-BFGS in the box [0, 1] that keeps no worse step, and Adam;
* :mod:`~artstyle.engine.pyramid`: coarse to fine over the scales;
* :mod:`~artstyle.engine.plan`: the scales, their iterations and the memory plan;
* :mod:`~artstyle.engine.images`: resizing and RGB views of image tensors, and the
  upsampling along the content's edges between scales.
"""

from artstyle.engine.images import as_rgb, guided_upsample, resize_image
from artstyle.engine.loop import (
    LBFGS_WARMUP_LR,
    LBFGS_WARMUP_STEPS,
    ObjectiveFunction,
    Progress,
    ProgressCallback,
    Render,
    RunState,
    SelfDifferentiating,
    StateCallback,
    optimize,
)
from artstyle.engine.objective import (
    Objective,
    ObjectiveOptions,
    StyleStats,
    Term,
    WeightedTerms,
    check_styles,
    normalised_masks,
    style_targets,
)
from artstyle.engine.optimizers import make_optimizer
from artstyle.engine.plan import LBFGS_HISTORY, Stage, plan_stages, stage_sizes
from artstyle.engine.pyramid import optimize_stages
from artstyle.engine.targets import StyleTargets
from artstyle.engine.tiled import TiledObjective

__all__ = [
    "LBFGS_HISTORY",
    "LBFGS_WARMUP_LR",
    "LBFGS_WARMUP_STEPS",
    "Objective",
    "ObjectiveFunction",
    "ObjectiveOptions",
    "Progress",
    "ProgressCallback",
    "Render",
    "RunState",
    "SelfDifferentiating",
    "Stage",
    "StateCallback",
    "StyleStats",
    "StyleTargets",
    "Term",
    "TiledObjective",
    "WeightedTerms",
    "as_rgb",
    "check_styles",
    "guided_upsample",
    "make_optimizer",
    "normalised_masks",
    "optimize",
    "optimize_stages",
    "plan_stages",
    "resize_image",
    "stage_sizes",
    "style_targets",
]
