"""The version of vidcluster (its own module, so that any module can import it without the package)."""

__version__ = "0.1.0"
