"""The files of one run: the output, intermediate and stopped images, with their metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image

from artstyle.api import Result
from artstyle.files.write import save_image
from artstyle.runs.job import Job
from artstyle.runs.signals import Signals


class Writer:
    """Writes the images of one run: same format options and metadata, shielded from signals.

    An image written before the run has finished (an intermediate or stopped one) gets the
    metadata of ``provisional``, a Result of the same options, seed and device.
    """

    def __init__(self, job: Job, signals: Signals, provisional: Result, inputs: dict[str, Any]) -> None:
        self.job, self.signals, self.provisional, self.inputs = job, signals, provisional, inputs

    def metadata(self, result: Result, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        metadata = result.metadata(self.inputs)
        metadata["output"] = {"bit_depth": self.job.bit_depth, "jpeg_quality": self.job.jpeg_quality}
        metadata["threads"] = torch.get_num_threads()
        return {**metadata, **(extra or {})}

    def write(self, image: torch.Tensor | Result, path: str | Path, extra: dict[str, Any] | None = None) -> None:
        if isinstance(image, Result):
            pixels: torch.Tensor | Image.Image = image.tensor if image.tensor is not None else image.image
            metadata = self.metadata(image, extra)
        else:
            pixels, metadata = image, self.metadata(self.provisional, extra)
        with self.signals.shielded():
            save_image(
                pixels,
                path,
                metadata,
                jpeg_quality=self.job.jpeg_quality,
                bit_depth=self.job.bit_depth,
                overwrite=self.job.overwrite,
            )

    def write_stopped(self, image: torch.Tensor, step: int, extra: dict[str, Any] | None = None) -> str:
        """Write the image of a run stopped after iteration ``step`` to the output; its path."""
        self.write(image, self.job.output, {**dict.fromkeys(self.job.stop_keys, step), **(extra or {})})
        return self.job.output
