"""One root error; the CLI turns each into one line and an exit code."""


class VidclusterError(Exception):
    """Root of every error vidcluster raises on purpose."""

    exit_code = 1


class ConfigError(VidclusterError):
    """A configuration file, field or flag is invalid."""

    exit_code = 2


class InputError(VidclusterError):
    """An input path is missing or holds nothing to analyse."""

    exit_code = 2


class WindowError(VidclusterError):
    """The time window is malformed or matches no footage."""

    exit_code = 2


class VideoOpenError(VidclusterError):
    """A file cannot be opened or decoded as video or image."""


class StoreError(VidclusterError):
    """The SQLite store is unusable (locked by another run, wrong schema, unwritable)."""

    exit_code = 2
