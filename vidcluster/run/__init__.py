"""Running the analysis: work units of (file, time segment) (`segments`), executors that run them
inline, on local processes, batched or on Ray (`executors`), and the pipeline that plans a run,
writes the store and the report (`pipeline`).

Imports `report`, `analysis`, `case`, `models`, `video` and the base modules.
"""
