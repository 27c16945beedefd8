"""The case on disk: the OUT folder and its lock (`outdir`), the SQLite store (`store`), the typed
rows read from it (`records`) and the examiner's corrections (`corrections`).

Imports only the base modules.
"""
