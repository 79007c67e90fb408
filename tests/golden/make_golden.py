"""Regenerate the golden pictures of the real tier (``tests/real/test_real_golden.py``).

    python tests/golden/make_golden.py

Each golden is a small picture made by one fixed, deterministic command (``COMMANDS``),
run as its own process with one CPU thread. The checked-in ``deterministic-chelsea.png``
was first made by the commit before the code moved into layers (bb99685) and remade when
the defaults changed (relative normalisation, the recoloured start, the new weights and
schedule), then for the L-BFGS that keeps no worse step with the defaults after it
(relu5_1 at a quarter, style weight 2, TV by the painting's mean neighbour difference,
the principal-axis recolouring), for the upsampling along the photo's edges between
scales (``--upsample guided``), and for the start that takes the painting's whole colour
distribution (``--palette distribution``) and the palette term (``--palette-weight 0.5``),
then for that term's ranks read from a histogram instead of a sort (the same picture, at
most 20 levels apart on a pixel, 2.3 on average): the test holds every later commit to
the same pixels. Regenerate only for a change that is meant to move them, and say so in
the commit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

#: Golden file name -> the arguments of the ``artstyle`` command that makes it.
COMMANDS: dict[str, list[str]] = {
    "deterministic-chelsea.png": [
        str(ROOT / "examples" / "content" / "chelsea.png"),
        str(ROOT / "examples" / "styles" / "starry_night.jpg"),
        *("--size", "128", "--min-size", "64", "--coarse-iterations", "15", "--iterations", "10"),
        *("--seed", "7", "--deterministic", "--precision", "fp32", "--quiet"),
    ],
}


def environment() -> dict[str, str]:
    """One CPU thread (results are bit-identical for the same thread count and machine)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def machine() -> str:
    """What the pixels of a deterministic run depend on beyond the code: PyTorch's version,
    the CPU kernels it picks and whether the CPU has AMX tiles (oneDNN uses them; seen here:
    the same run differs by 1.3 grey levels on average between CPUs with and without)."""
    import torch

    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    amx = "amx" if "amx_tile" in flags else "no-amx"
    return f"torch {torch.__version__} {torch.backends.cpu.get_cpu_capability()} {amx}"


def make(name: str, output: Path) -> subprocess.CompletedProcess[str]:
    """Run the command of golden ``name``, writing ``output``."""
    command = [sys.executable, "-m", "artstyle", *COMMANDS[name], "-o", str(output)]
    return subprocess.run(command, env=environment(), capture_output=True, text=True, check=False)


def main() -> int:
    for name in COMMANDS:
        done = make(name, HERE / name)
        if done.returncode:
            print(done.stderr, file=sys.stderr)
            return done.returncode
        (HERE / f"{name}.machine").write_text(machine() + "\n")
        print(f"wrote {HERE / name} on {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
