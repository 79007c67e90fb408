"""Batch throughput: ``artstyle batch`` against separate ``artstyle`` calls, and on Ray.

One invocation runs, one after the other (never in parallel: they share the cores):

  separate   six ``artstyle PHOTO PAINTING -o OUT`` processes (3 photos x 2 paintings at
             --size): each loads the network and computes the painting's style targets;
  batch      ``artstyle batch PHOTOS --styles PAINTINGS -o DIR``, one process: the network
             loaded once, each painting's style targets computed once;
  ray        the same batch with ``--ray`` on a real two-node Ray cluster on this machine
             (head and worker, one CPU each, started here on 127.0.0.2 and ended by their
             pids), ``--cpus-per-job 1``, against the in-process batch (2 threads);
  overhead   Ray's cost per job: the same tiny jobs (1 iteration at 64 px) on the cluster
             and in-process, the difference per job; and the cluster's start and connect.

Every figure is wall time, process start to the last file, with the seconds per picture.

    python benchmarks/batch.py [--size 256] [--only separate batch ray overhead]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = [ROOT / "examples/content" / name for name in ("chelsea.png", "astronaut.png", "rocket.jpg")]
PAINTINGS = [ROOT / "examples/styles" / name for name in ("starry_night.jpg", "the_scream.jpg")]
BIN = Path(sys.executable).parent
#: The benchmark's cluster listens on 127.0.0.2 only: Ray's token authentication is off for it.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    began = time.perf_counter()
    done = subprocess.run(command, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-2000:]}")
    return time.perf_counter() - began


def separate(out: Path, options: list[str]) -> float:
    total = 0.0
    for painting in PAINTINGS:
        for photo in PHOTOS:
            target = out / f"{photo.stem}__{painting.stem}.png"
            total += timed([str(BIN / "artstyle"), str(photo), str(painting), "-o", str(target), *options])
    return total


def batch(out: Path, options: list[str], *extra: str) -> float:
    command = [str(BIN / "artstyle"), "batch", *map(str, PHOTOS), "--styles", *map(str, PAINTINGS), "-o", str(out)]
    return timed([*command, "--force", *options, *extra], env=RAY_ENV)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.2", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """A head and a worker node (``ray start --block``, one CPU each) on 127.0.0.2."""

    def __init__(self) -> None:
        self.temp = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))
        self.port = free_port()
        self.address = f"127.0.0.2:{self.port}"
        began = time.perf_counter()
        self.head = self._start("--head", f"--port={self.port}", "--include-dashboard=false", f"--temp-dir={self.temp}")
        self._wait(1)
        self.worker = self._start(f"--address={self.address}")
        self._wait(2)
        self.start_seconds = time.perf_counter() - began

    def _start(self, *arguments: str) -> subprocess.Popen[bytes]:
        command = [str(BIN / "ray"), "start", "--block", "--node-ip-address=127.0.0.2", "--num-cpus=1",
                   "--object-store-memory=200000000", *arguments]  # fmt: skip
        return subprocess.Popen(
            command,
            env={**os.environ, **RAY_ENV, "RAY_TMPDIR": str(self.temp)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _wait(self, nodes: int) -> None:
        probe = (
            "import ray,sys;ray.init(address=sys.argv[1],log_to_driver=False,logging_level='ERROR');"
            "print(sum(1 for n in ray.nodes() if n['Alive']))"
        )
        for _ in range(240):
            done = subprocess.run(
                [sys.executable, "-c", probe, self.address],
                env={**os.environ, **RAY_ENV},
                capture_output=True,
                text=True,
            )
            if done.returncode == 0 and done.stdout.strip() and int(done.stdout.split()[-1]) >= nodes:
                return
            time.sleep(0.5)
        raise SystemExit(f"the cluster did not get {nodes} nodes")

    def close(self) -> None:
        for process in (self.worker, self.head):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(self.temp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--only", nargs="+", default=["separate", "batch", "ray", "overhead"])
    args = parser.parse_args(argv)
    options = ["--size", str(args.size), "--seed", "0", "-q"]
    count = len(PHOTOS) * len(PAINTINGS)
    out = Path(tempfile.mkdtemp(prefix="artstyle-batch-"))
    print(
        f"{count} pictures ({len(PHOTOS)} photos x {len(PAINTINGS)} paintings) at {args.size} px, {os.cpu_count()} CPUs"
    )
    results: dict[str, float] = {}
    try:
        if "separate" in args.only:
            results["separate"] = seconds = separate(out, options)
            print(f"  six artstyle calls:       {seconds:7.1f} s  {seconds / count:6.1f} s/picture")
        if "batch" in args.only or "ray" in args.only:
            results["batch"] = batch(out, options)
            print(
                f"  artstyle batch:           {results['batch']:7.1f} s  {results['batch'] / count:6.1f} s/picture",
                end="",
            )
            if "separate" in results:
                print(f"  ({results['separate'] / results['batch']:.2f}x faster than separate calls)", end="")
            print()
        if "ray" in args.only or "overhead" in args.only:
            ray_sections(args, out, options, results, count)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return 0


def ray_sections(
    args: argparse.Namespace, out: Path, options: list[str], results: dict[str, float], count: int
) -> None:
    cluster = Cluster()
    try:
        print(f"  Ray cluster (head + worker, 1 CPU each) up in {cluster.start_seconds:.1f} s")
        ray = ["--ray", cluster.address, "--cpus-per-job", "1"]
        if "ray" in args.only:
            results["ray"] = batch(out, options, *ray)
            ratio = results["batch"] / results["ray"]
            print(f"  artstyle batch --ray:     {results['ray']:7.1f} s  {results['ray'] / count:6.1f} s/picture"
                  f"  (throughput {ratio:.2f}x the in-process batch)")  # fmt: skip
        if "overhead" in args.only:
            tiny = ["--size", "64", "--iterations", "1", "--no-pyramid", "--seed", "0", "-q"]
            here = batch(out, tiny)
            there = batch(out, tiny, *ray)
            print(f"  tiny jobs: in-process {here:.1f} s, on Ray {there:.1f} s: "
                  f"Ray's overhead {(there - here) / count:.2f} s per job (connect included)")  # fmt: skip
    finally:
        cluster.close()


if __name__ == "__main__":
    sys.exit(main())
