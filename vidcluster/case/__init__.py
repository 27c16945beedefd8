"""The case on disk: the OUT folder and its lock (`outdir`), the SQLite store (`store`, with its
`schema`, column encodings in `blobs` and the per-file `results` it writes), the typed rows read
from it (`records`) and the examiner's corrections (`corrections`).

Imports only the base modules.
"""
