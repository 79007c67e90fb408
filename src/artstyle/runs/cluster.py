"""Jobs on a Ray cluster (the ``[ray]`` extra): connecting to it, and what every front end
that sends tasks there shares (``artstyle batch --ray``, ``artstyle video --ray``).

Ray is imported only here and only when asked for, with its usage statistics off. An
address nobody listens on is one line at once (Ray itself retries for minutes).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from artstyle.api import Stylizer
from artstyle.choices import ray_host_port
from artstyle.config import Config
from artstyle.errors import ArtstyleError, ConfigError
from artstyle.runs.execute import stylizer_for

#: Retries of a task whose worker or node died (Ray's own failures, not a job's).
MAX_RETRIES = 3


def ray_module() -> ModuleType:
    """Ray, with its usage statistics off, or a clear error when the extra is missing."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs the [ray] extra: pip install 'artstyle[ray]'", option="ray") from None
    return ray


def connect(address: str | None) -> ModuleType:
    """Ray connected to the cluster at ``address`` (``auto``: the local one; None:
    ``RAY_ADDRESS``); an already connected Ray is used as it is."""
    ray = ray_module()
    check_reachable(address)
    if not ray.is_initialized():
        try:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ArtstyleError(f"cannot connect to the Ray cluster at {address or 'RAY_ADDRESS'}: {exc}") from None
    return ray


def check_reachable(address: str | None) -> None:
    """A one-line error at once for a HOST:PORT nobody listens on; a usage error for a
    malformed one."""
    host_port = ray_host_port(address)
    if host_port is None:
        return
    try:
        socket.create_connection(host_port, timeout=10).close()
    except OSError as exc:
        raise ArtstyleError(f"cannot connect to the Ray cluster at {address}: {exc.strerror or exc}") from None


def node_cpus(ray: ModuleType) -> int:
    """The CPUs of the smallest live node with any (a job of that many runs on every node)."""
    counts = [int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node.get("Alive")]
    counts = [count for count in counts if count > 0]
    if not counts:
        raise ArtstyleError("the Ray cluster has no CPUs")
    return min(counts)


@dataclass(frozen=True)
class Slots:
    """What each task asks Ray for: ``cpus`` CPUs (PyTorch's threads on the worker) and,
    with ``gpus`` 1, a GPU of its own (Ray hides every GPU from a task that asks for none)."""

    cpus: int
    gpus: int = 0

    def options(self) -> dict[str, Any]:
        """The keywords of ``ray.remote``."""
        return {"num_cpus": self.cpus, "num_gpus": self.gpus} if self.gpus else {"num_cpus": self.cpus}

    def device(self, device: str) -> str:
        """The device a task runs on: ``cuda`` for a task with a GPU (its one visible GPU,
        whatever ``cuda:N`` the driver was given), else ``device`` as given."""
        return "cuda" if self.gpus and device != "cpu" else device


def task_slots(ray: ModuleType, device: str, cpus_per_job: int | None) -> Slots:
    """The slots of one task for a run on ``device``: with ``cuda`` or ``cuda:N``, and with
    ``auto`` on a cluster with GPUs, one GPU and (unless ``cpus_per_job`` says) the CPUs
    that each GPU of the smallest GPU node has; otherwise :func:`node_cpus` CPUs."""
    gpu_nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive") and node["Resources"].get("GPU")]
    wants = device.startswith("cuda") or (device == "auto" and bool(gpu_nodes))
    if not wants:
        return Slots(cpus_per_job or node_cpus(ray))
    if not gpu_nodes:
        raise ArtstyleError(f"{device}: the Ray cluster has no GPUs (use --device cpu, or add GPU nodes)")
    per_gpu = min(max(1, int(node.get("CPU", 0) // node["GPU"])) for node in gpu_nodes)
    return Slots(cpus_per_job or per_gpu, 1)


def window_size(ray: ModuleType, slots: Slots) -> int:
    """How many tasks to keep in flight: two per slot in the cluster (its GPUs, for tasks
    with a GPU), so that every slot has its next task waiting while a result comes back."""
    resources = ray.cluster_resources()
    if slots.gpus:
        return max(2, 2 * int(resources.get("GPU", 1)))
    total = int(resources.get("CPU", slots.cpus))
    return max(2, 2 * max(1, total // slots.cpus))


_STYLIZERS: dict[tuple[str, str], Stylizer] = {}  # per worker process: the network loaded once


def worker_stylizer(config: Config) -> Stylizer:
    """On a worker: the stylizer for ``config``'s network and device, loaded once per
    process, its latest style targets kept for the next task with the same paintings."""
    return stylizer_for(config, _STYLIZERS)
