"""Executors: ways to run work units (file segments), all yielding results to one store writer.

Every executor takes picklable `Segment`s and yields `UnitResult`s in order of completion;
the caller (the main process) is the only one that writes the store. Same units, same
results, whichever executor runs them:

- `InlineExecutor`: one after the other in this process (tests, one worker).
- `LocalExecutor`: a pool of forked worker processes, at most two units in flight per worker.
- `BatchedExecutor`: all units in this process, the detector fed batches of frames drawn from
  several units at once (the CNN detector on a GPU).
- `RayExecutor`: actors on a Ray cluster that load the models once and run units; on GPU
  nodes they ask for a GPU and batch as `BatchedExecutor` does. Ray is an optional extra.
"""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ..config import Config
from ..errors import EngineError
from ..models.base import FaceModels
from ..models.registry import make_models, needs_detector_points
from ..procs import compute_on_one_core, one_core, process_pool
from .segments import Segment, UnitResult, process_batched, process_segment

IN_FLIGHT_PER_WORKER = 2  # units queued per worker: it never waits, results still stream back early
RAY_CONNECT_TIMEOUT_S = 5.0


class Executor(Protocol):
    """Runs work units; yields one result per unit, in order of completion."""

    def run(self, units: Sequence[Segment]) -> Iterator[UnitResult]: ...


@dataclass(frozen=True)
class InlineExecutor:
    """Units one after the other in this process."""

    cfg: Config
    models: FaceModels

    def run(self, units: Sequence[Segment]) -> Iterator[UnitResult]:
        for unit in units:
            with one_core():  # one worker: one core, as each of several workers keeps to one
                result = process_segment(unit, self.cfg, self.models)
            yield result


@dataclass(frozen=True)
class BatchedExecutor:
    """Units in this process, frames of up to `models.detector.batch_size` units detected together."""

    cfg: Config
    models: FaceModels

    def run(self, units: Sequence[Segment]) -> Iterator[UnitResult]:
        yield from process_batched(units, self.cfg, self.models)


@dataclass(frozen=True)
class LocalExecutor:
    """Units in `workers` forked processes (fork: workers start at once and need no importable
    __main__); one worker or one unit runs inline."""

    cfg: Config
    models: FaceModels
    workers: int

    def run(self, units: Sequence[Segment]) -> Iterator[UnitResult]:
        if self.workers <= 1 or len(units) <= 1:
            yield from InlineExecutor(self.cfg, self.models).run(units)
            return
        workers = min(self.workers, len(units))
        self.models.load()  # once here, shared by the forked workers
        with process_pool(workers) as pool:
            queue = deque(units)
            running: set = set()
            while queue or running:
                while queue and len(running) < IN_FLIGHT_PER_WORKER * workers:
                    running.add(pool.submit(process_segment, queue.popleft(), self.cfg, self.models))
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()


# -- Ray ----------------------------------------------------------------------------------------
def _ray() -> Any:  # the ray module (typed, but an optional extra)
    try:
        import ray
    except ImportError:
        raise EngineError("--engine ray needs Ray: pip install 'vidcluster[ray]'") from None
    return ray


def check_reachable(address: str, timeout_s: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """Raise EngineError unless something listens at HOST:PORT (fails fast where Ray would wait)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise EngineError(f"Ray address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise EngineError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc})") from None


class RayEngine:
    """A connection to a Ray cluster (joined at `address`, or a local instance when it is empty).

    Connect before anything is written: an unreachable cluster is an EngineError. Use as a
    context manager; leaving it disconnects (and stops a local instance it started).
    """

    def __init__(self, address: str = "", workers: int = 0):
        ray = _ray()
        if address:
            check_reachable(address)
        try:
            ray.init(
                address=address or None,
                num_cpus=(workers or None) if not address else None,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                ignore_reinit_error=True,
            )
        except (ConnectionError, RuntimeError, TimeoutError, ValueError) as exc:
            raise EngineError(f"cannot connect to the Ray cluster at {address or 'a local instance'} ({exc})") from None
        self.ray = ray
        self.workers = workers

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.ray.shutdown()

    def resources(self) -> dict[str, float]:
        return dict(self.ray.cluster_resources())

    def models(self, cfg: Config) -> FaceModels:
        """The models the actors run: detector 'auto' means the CNN when the cluster has GPUs and the
        encoder reads dlib's landmarks, else as on this machine (`models.registry.make_models`)."""
        if (
            cfg.faces.detector == "auto"
            and self.resources().get("GPU", 0) >= 1
            and not needs_detector_points(cfg.faces.encoder)
        ):
            return make_models(replace(cfg.faces, detector="cnn"))
        return make_models(cfg.faces)

    def executor(self, cfg: Config, models: FaceModels) -> RayExecutor:
        res = self.resources()
        gpus = int(res.get("GPU", 0)) if models.detector.batch_size > 1 else 0
        actors = gpus or self.workers or max(1, int(res.get("CPU", 1)))
        return RayExecutor(self.ray, cfg, models, actors, gpu=gpus > 0)


class _UnitActor:
    """Lives in a Ray worker process: loads the models on first use, keeps them for every unit."""

    def __init__(self, cfg: Config, models: FaceModels):
        self.cfg = cfg
        self.models = models
        if models.detector.batch_size <= 1:  # a CPU actor per CPU
            compute_on_one_core()

    def run(self, units: list[Segment]) -> list[UnitResult]:
        if self.models.detector.batch_size > 1:
            return list(process_batched(units, self.cfg, self.models))
        return [process_segment(u, self.cfg, self.models) for u in units]


class RayExecutor:
    """Units on Ray actors: one per CPU (HOG), or one per GPU taking batch-size units at a time (CNN)."""

    def __init__(self, ray: Any, cfg: Config, models: FaceModels, actors: int, gpu: bool = False) -> None:
        self.ray = ray
        self.cfg = cfg
        self.models = models
        self.n_actors = actors
        self.gpu = gpu

    def run(self, units: Sequence[Segment]) -> Iterator[UnitResult]:
        if not units:
            return
        ray = self.ray
        options = {"num_gpus": 1, "num_cpus": 1} if self.gpu else {"num_cpus": 1}
        actor_cls = ray.remote(**options)(_UnitActor)
        n = min(self.n_actors, len(units))
        per_call = self.models.detector.batch_size if self.gpu else 1
        actors = [actor_cls.remote(self.cfg, self.models) for _ in range(n)]
        queue = deque(units)
        idle = deque(actors * IN_FLIGHT_PER_WORKER)  # each actor has a slot per unit in flight
        running: dict = {}
        try:
            while queue or running:
                while queue and idle:
                    actor = idle.popleft()
                    chunk = [queue.popleft() for _ in range(min(per_call, len(queue)))]
                    running[actor.run.remote(chunk)] = actor
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    idle.append(running.pop(ref))
                    try:
                        results = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        raise EngineError(f"a Ray worker failed: {str(exc).splitlines()[0]}") from None
                    yield from results
        finally:
            for actor in actors:
                ray.kill(actor)
