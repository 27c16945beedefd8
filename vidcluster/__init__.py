"""vidcluster: who appears in a folder of CCTV footage, on which camera, and when.

Importing the package loads no model, video or clustering library: `analyse` is looked up on
first use (PEP 562), so `import vidcluster.types` stays light.
"""

from importlib import import_module
from typing import Any

from .errors import ConfigError, DiskFullError, InputError, StoreError, VidclusterError, VideoOpenError, WindowError
from .version import __version__

__all__ = [
    "ConfigError",
    "DiskFullError",
    "InputError",
    "StoreError",
    "VidclusterError",
    "VideoOpenError",
    "WindowError",
    "__version__",
    "analyse",
]


def __getattr__(name: str) -> Any:
    if name == "analyse":
        return import_module(".run.pipeline", __name__).analyse
    raise AttributeError(f"module 'vidcluster' has no attribute {name!r}")
