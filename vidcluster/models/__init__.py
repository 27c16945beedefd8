"""Face models: detectors, landmarks and encoders, and the runtime they share.

Each model loads its own weights lazily, once per process, from installed packages (never the
network). Imports only the base modules (`errors`, `types`, `config`).
"""
