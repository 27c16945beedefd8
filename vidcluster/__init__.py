"""vidcluster: who appears in a folder of CCTV footage, on which camera, and when."""

__version__ = "0.1.0"

from .errors import ConfigError, InputError, StoreError, VideoOpenError, VidclusterError, WindowError  # noqa: E402

__all__ = [
    "__version__", "analyse", "ConfigError", "InputError", "StoreError", "VideoOpenError", "VidclusterError", "WindowError",
]


def analyse(*args, **kwargs):
    """Run the whole pipeline; see `vidcluster.pipeline.analyse`."""
    from .pipeline import analyse as _analyse

    return _analyse(*args, **kwargs)
