"""ONNX Runtime, shared by every model: which execution providers to use and one session factory.

The CPU provider is always there (and always last); the CUDA provider comes with the `[gpu]` extra
(`onnxruntime-gpu`). Sessions compute on `threads` threads (1 by default: a run has one worker per
core) and never spin idle threads on the cores other workers use.
"""

from __future__ import annotations

from typing import Sequence

import onnxruntime as ort

from ..errors import ConfigError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")


def cuda_available() -> bool:
    """True when this onnxruntime has the CUDA provider (the `[gpu]` extra is installed)."""
    return CUDA in ort.get_available_providers()


def providers_for(device: str) -> tuple[str, ...]:
    """Execution providers for `faces.device`: 'cpu', 'cuda' (an error without the CUDA provider) or
    'auto' (CUDA where this onnxruntime has it, else the CPU)."""
    if device not in DEVICES:
        raise ConfigError(f"faces.device: {device!r} is not one of {', '.join(DEVICES)}")
    if device == "cpu" or (device == "auto" and not cuda_available()):
        return (CPU,)
    if not cuda_available():
        raise ConfigError("faces.device: cuda needs onnxruntime's CUDA provider (pip install 'vidcluster[gpu]')")
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
