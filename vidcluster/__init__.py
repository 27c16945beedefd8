"""vidcluster: who appears in a folder of CCTV footage, on which camera, and when."""

from .version import __version__
from .errors import ConfigError, DiskFullError, InputError, StoreError, VideoOpenError, VidclusterError, WindowError  # noqa: E402
from .pipeline import analyse  # noqa: E402

__all__ = [
    "__version__", "analyse", "ConfigError", "DiskFullError", "InputError", "StoreError", "VideoOpenError", "VidclusterError", "WindowError",
]

