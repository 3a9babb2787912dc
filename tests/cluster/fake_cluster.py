"""Start and stop the fake multi-node cluster of `fake_cluster.yaml`; shared by tests/cluster and bench/autoscale.py.

`ray.cluster_utils.AutoscalingCluster` would do this, but it reads an example.yaml that the pip wheel does not
ship, so this is the same few steps with our own config: `ray start --head --autoscaling-config=...` with
RAY_FAKE_CLUSTER=1 and a 1 s autoscaler loop. `ray stop` would end every Ray process on the machine (another
test session's too), so each cluster's processes carry a marker in their environment, which every process
`ray start` spawns inherits (the autoscaler's fake nodes and their workers too), and are ended by their ids.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("fake_cluster.yaml")
RAY = str(Path(sys.executable).with_name("ray"))  # the venv's CLI, whatever PATH says
MARKER = "VIDEO_TEST_CLUSTER"  # in the environment of every process of one test cluster
CURRENT_CLUSTER_FILE = Path("/tmp/ray/ray_current_cluster")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


@dataclass
class FakeCluster:
    """A running fake cluster. `env` is what every Ray process of it (and a driver or CLI) needs."""

    address: str
    env: dict[str, str]
    config: dict[str, Any]
    _config_file: Path = field(repr=False)

    def driver_env(self) -> dict[str, str]:
        """The variables a driver process must have to join: auth mode, import path, the address."""
        keys = ("RAY_AUTH_MODE", "PYTHONPATH", "RAY_ADDRESS")
        return {k: self.env[k] for k in keys}

    def stop(self) -> None:
        """Stop the head, the autoscaler and every fake node it launched, and nothing else."""
        end_cluster(self.env[MARKER])
        self._config_file.unlink(missing_ok=True)
        # `ray start` left its address for `ray.init()` to find; `ray stop` would have removed it.
        current = CURRENT_CLUSTER_FILE.read_text().strip() if CURRENT_CLUSTER_FILE.exists() else None
        if current == self.address:
            CURRENT_CLUSTER_FILE.unlink(missing_ok=True)


def cluster_pids(marker: str) -> list[int]:
    """Processes whose environment holds `MARKER=marker`: exactly those of one cluster."""
    needle = f"{MARKER}={marker}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:  # gone meanwhile, or not ours to read
                continue
    return pids


def end_cluster(marker: str, timeout_s: float = 30) -> None:
    """SIGTERM every process of the cluster, then SIGKILL whatever is left after `timeout_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in cluster_pids(marker):
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while cluster_pids(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not cluster_pids(marker):
            return
    raise AssertionError(f"cluster processes survived SIGKILL: {cluster_pids(marker)}")


def start_fake_cluster(extra_env: dict[str, str] | None = None, **config_overrides: Any) -> FakeCluster:
    """Start the head of `fake_cluster.yaml` (`config_overrides` merged in, `extra_env` added to every Ray process's
    environment); worker nodes come on demand."""
    config = yaml.safe_load(CONFIG.read_text())
    config.update(config_overrides)
    port = _free_port()
    # The fake provider connects each new raylet to this GCS; by default it assumes 6379.
    address = f"{_node_ip()}:{port}"
    config["provider"]["gcs_address"] = address
    fd, name = tempfile.mkstemp(prefix="fake-cluster-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(config, f)
    env = {
        **os.environ,
        **(extra_env or {}),
        "PATH": os.pathsep.join([str(Path(RAY).parent), os.environ.get("PATH", "")]),
        # Replicas import serve_app and tests.fakes from this checkout.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "RAY_FAKE_CLUSTER": "1",
        MARKER: uuid.uuid4().hex,
        "AUTOSCALER_UPDATE_INTERVAL_S": "1",
        # Explicitly off: `ray start` turns token auth on when ~/.ray/auth_token exists, and a driver reads
        # RAY_AUTH_MODE once, when it imports ray, so pytest could not switch to token mode in-process.
        # Token auth against a real head is covered by tests/cluster/test_cli.py and docs/cluster.md.
        "RAY_AUTH_MODE": "disabled",
        "RAY_ADDRESS": address,
    }
    head_cpus = config["available_node_types"][config["head_node_type"]]["resources"]["CPU"]
    command = [
        RAY,
        "start",
        "--head",
        f"--port={port}",
        f"--num-cpus={head_cpus}",
        "--num-gpus=0",
        f"--dashboard-port={_free_port()}",  # the state API (list_actors) goes through the dashboard
        f"--autoscaling-config={name}",
        "--disable-usage-stats",
    ]
    try:
        subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        Path(name).unlink(missing_ok=True)
        raise RuntimeError(f"ray start failed:\n{exc.stdout}\n{exc.stderr}") from None
    return FakeCluster(address=address, env=env, config=config, _config_file=Path(name))


def _node_ip() -> str:
    import ray.util

    return ray.util.get_node_ip_address()
