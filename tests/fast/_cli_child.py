"""Run ``artstyle.cli.main`` in a child process with random VGG19 weights (for signal tests).

``python tests/fast/_cli_child.py ARGS...`` behaves like ``artstyle ARGS...``, except that
``load_weights("bundled")`` returns random weights for the first four convolutions
(enough for layers up to relu2_2), so a run starts at once and needs no real weights.
"""

from __future__ import annotations

import sys

import torch
from _support import FakeBundled, random_canonical_state

from artstyle import cli
from artstyle.features import weights
from artstyle.features.weights import Preprocessing, VGGWeights

if __name__ == "__main__":
    torch.set_num_threads(1)
    fake = VGGWeights(random_canonical_state(seed=99, layers=4), Preprocessing.caffe(), "fake bundled VGG19 (tests)")
    weights.load_bundled = FakeBundled(fake)  # type: ignore[assignment]
    sys.exit(cli.main(sys.argv[1:]))
