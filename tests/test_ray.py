"""`--engine ray` on a real Ray head on loopback gives the grouping `--engine local` gives.

Skipped when Ray is not installed (`pip install '.[ray]'`; CI installs it).
"""

from __future__ import annotations

import csv
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import data_path

pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(ray_tmp: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["RAY_TMPDIR"] = ray_tmp  # short: Ray's socket paths must stay under 108 bytes
    # Ray swaps 127.0.0.1 for the machine's network address unless clusters are switched off;
    # this keeps every process of the test cluster on loopback.
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    # A token of the test's own: the head and the driver must agree, whatever ~/.ray holds.
    env["RAY_AUTH_MODE"] = "token"
    env["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    return env


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head with 2 CPUs on 127.0.0.1 (a few seconds to start), stopped afterwards."""
    ray_bin = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    ray_tmp = tempfile.mkdtemp(prefix="vcray")
    env = _env(ray_tmp)
    port = _free_port()
    start = [
        ray_bin,
        "start",
        "--head",
        "--node-ip-address",
        "127.0.0.1",
        "--port",
        str(port),
        "--num-cpus",
        "2",
        "--include-dashboard",
        "false",
        "--disable-usage-stats",
    ]
    started = subprocess.run(start, env=env, capture_output=True, text=True, timeout=180)
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([ray_bin, "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _grouping(out: Path) -> set[frozenset]:
    """faces.csv as a partition: the set of faces (file, time, box) of each identity."""
    with open(out / "report" / "faces.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    groups: dict[str, set] = {}
    for r in rows:
        groups.setdefault(r["identity"], set()).add((r["file"], r["pts_s"], r["x1"], r["y1"], r["x2"], r["y2"]))
    return {frozenset(g) for g in groups.values()}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vidcluster", "run", *args, "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )


def test_ray_engine_groups_cctv_asl_as_local_does(ray_head, tmp_path):
    address, env = ray_head
    footage = str(data_path("cctv-asl"))
    on_ray = _run([footage, "--out", str(tmp_path / "ray"), "--engine", "ray", "--address", address], env)
    assert on_ray.returncode == 0, on_ray.stderr[-3000:]
    local = _run([footage, "--out", str(tmp_path / "local"), "--engine", "local"], env)
    assert local.returncode == 0, local.stderr[-3000:]
    assert on_ray.stdout.split(",")[:4] == local.stdout.split(",")[:4]  # identities, faces, files, cameras
    grouping = _grouping(tmp_path / "ray")
    assert len(grouping) == 5 and grouping == _grouping(tmp_path / "local")
