"""The run frame: one job from inputs to a written file, shared by every front end.

* :mod:`~artstyle.runs.job`: what a job is (inputs, output, options, how to stop);
* :mod:`~artstyle.runs.execute`: :func:`execute` runs a job and returns an :class:`Outcome`;
* :mod:`~artstyle.runs.signals`: SIGINT and SIGTERM, never in the middle of a write;
* :mod:`~artstyle.runs.checkpoint`: checkpoint files, and ``--resume``;
* :mod:`~artstyle.runs.writer`: the output, intermediate and stopped images;
* :mod:`~artstyle.runs.reproduce`: the job that makes a picture again from its metadata.

Nothing here prints or exits: front ends turn outcomes into lines, exit codes or pages.
"""

from artstyle.runs.execute import (
    DIVERGED,
    FAILED,
    INTERRUPTED,
    OUT_OF_MEMORY,
    STOPPED,
    TERMINATED,
    WRITTEN,
    Outcome,
    Reporter,
    execute,
)
from artstyle.runs.job import STOPPED_KEY, InputImage, Job
from artstyle.runs.signals import Signals, Terminated

__all__ = [
    "DIVERGED",
    "FAILED",
    "INTERRUPTED",
    "OUT_OF_MEMORY",
    "STOPPED",
    "STOPPED_KEY",
    "TERMINATED",
    "WRITTEN",
    "InputImage",
    "Job",
    "Outcome",
    "Reporter",
    "Signals",
    "Terminated",
    "execute",
]
