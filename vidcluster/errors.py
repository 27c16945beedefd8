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


class DiskFullError(StoreError):
    """The disk holding OUT is full; what was committed before stays, a re-run resumes."""

    exit_code = 4


class DamagedStoreError(StoreError):
    """The store is damaged or incomplete: a table or column it had is gone, or a descriptor or
    picture is not what was written. Nothing is changed; restore the store from a copy."""

    exit_code = 5


class WorkflowError(VidclusterError):
    """A correction or regrouping cannot be done: unknown output folder, identity, face or sighting."""

    exit_code = 2


class SearchError(VidclusterError):
    """A probe-photo search cannot be done: unreadable photo, no face in it, or no analysed footage."""

    exit_code = 2


class EngineError(VidclusterError):
    """The execution engine cannot be used: Ray missing, a cluster that cannot be reached, a worker lost."""

    exit_code = 2


class ServeError(VidclusterError):
    """`vidcluster serve` cannot start: a port that cannot be listened on, an OUT without a store."""

    exit_code = 2
