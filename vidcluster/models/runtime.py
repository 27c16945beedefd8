"""ONNX Runtime, shared by every model: which execution providers to use and one session factory.

The CPU provider is always there (and always last); the CUDA provider comes with the `[gpu]` extra
(`onnxruntime-gpu`). Sessions compute on `threads` threads (1 by default: a run has one worker per
core) and never spin idle threads on the cores other workers use.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import onnxruntime as ort

from ..errors import ConfigError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")
# At most this many inputs (face chips) go through a network in one call: bounds the memory of a crowded frame.
MAX_BATCH = 64


# A graph of one Identity node (y = x, float[1]), serialised: enough to ask the runtime whether
# its CUDA provider really starts (it is listed wherever onnxruntime-gpu is installed, also on a
# machine without a GPU or without the CUDA libraries, where it falls back to the CPU).
_PROBE_GRAPH = bytes.fromhex(
    "08073a3b0a100a017812017922084964656e74697479120570726f62655a0f0a0178120a0a08080112040a020801"
    "620f0a0179120a0a08080112040a02080142040a00100d"
)


@lru_cache(maxsize=1)
def cuda_available() -> bool:
    """True when onnxruntime's CUDA provider starts here: the `[gpu]` extra, a GPU, CUDA and cuDNN."""
    if CUDA not in ort.get_available_providers():
        return False
    options = ort.SessionOptions()
    options.log_severity_level = 4  # a missing CUDA library is the answer here, not an error to print
    ort.set_default_logger_severity(4)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "provider not available": the answer, not a warning
            session = ort.InferenceSession(_PROBE_GRAPH, options, providers=[CUDA, CPU])
        return CUDA in session.get_providers()
    except Exception:  # any failure to start the provider means: no CUDA here
        return False
    finally:
        ort.set_default_logger_severity(2)  # onnxruntime's default (warnings)


def providers_for(device: str) -> tuple[str, ...]:
    """Execution providers for `faces.device`: 'cpu', 'cuda' (an error without the CUDA provider) or
    'auto' (CUDA where this onnxruntime has it, else the CPU)."""
    if device not in DEVICES:
        raise ConfigError(f"faces.device: {device!r} is not one of {', '.join(DEVICES)}")
    if device == "cpu" or (device == "auto" and not cuda_available()):
        return (CPU,)
    if not cuda_available():
        raise ConfigError(
            "faces.device: cuda, but onnxruntime's CUDA provider does not start here (needs the [gpu] "
            "extra, an NVIDIA GPU, CUDA and cuDNN; see the README's GPU section)"
        )
    return (CUDA, CPU)


def resolve_providers(wanted: Sequence[str] | None) -> tuple[str, ...]:
    """The wanted providers that this onnxruntime has, in order, with the CPU always last."""
    have = set(ort.get_available_providers())
    chosen = [p for p in (wanted or ()) if p in have and p != CPU]
    return (*chosen, CPU)


def make_session(model: bytes, threads: int = 1, providers: Sequence[str] | None = None) -> ort.InferenceSession:
    """An inference session over a serialised ONNX graph."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=list(resolve_providers(providers)))


def run_batched(session: ort.InferenceSession, inputs: np.ndarray, batch: int = MAX_BATCH) -> np.ndarray:
    """The session's first output for (N, ...) `inputs` fed to its first input `batch` rows at a time,
    concatenated; inputs must already have the dtype and layout the graph takes."""
    name = session.get_inputs()[0].name
    step = max(1, int(batch))
    parts = [
        session.run(None, {name: np.ascontiguousarray(inputs[i : i + step])})[0] for i in range(0, len(inputs), step)
    ]
    return np.concatenate(parts)
